"""Pre-trade guards: a :class:`GuardReport` from a :class:`MarketSnapshot` (pure).

Levels are ordered ``passing < warning < breach < stale``; the report's status is the worst level
of its checks, so a stale or missing input always makes it ``stale`` (fail closed; there is no
fallback value). A check *blocks* a new entry when it is not passing and either its guard is listed
in ``GuardsConfig.blocking`` or its level is ``stale`` (staleness always blocks).

Checks (name → level when violated):

* ``input.<name>`` for every input of :data:`INPUT_NAMES` → ``stale`` when missing, older than
  its max age, or its feed reports itself not live (the book: while it resyncs);
* ``spread`` (spread_bps > max) → warning; a crossed or locked book (best bid >= best ask) →
  ``stale`` ("book crossed"), so it blocks whatever ``blocking`` says;
  ``depth`` (min(bid_usd, ask_usd) < min) → warning; ``funding`` (|APR| > max) → warning;
  ``basis`` (|bps| > max) → warning;
  ``liquidations`` (events in the window > max) → breach;
* ``leverage`` (> max_leverage) → breach, evaluated only when a leverage is given;
* toggleable: ``rsi_gate`` → warning, ``obv_cliff`` → warning, ``liq_gap`` → warning,
  ``daily_stop`` → breach (only when the day's PnL is given). An enabled guard whose indicator is
  still warming up is ``stale``. Without a liq-map ``liq_gap`` says "liq-map unavailable" and why
  (``liq_map_note``): ``skipped`` and listed in ``notes``, or ``stale`` when
  ``liq_gap.when_unavailable = "block"``.

A value that is not a finite number is treated as unusable: its check is ``stale``.
Checks not evaluated (no leverage, no PnL, no liq-map) are ``skipped`` and do not count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from core.bus import Topic
from core.guard_config import INPUT_NAMES, GuardsConfig
from core.market_state import MarketSnapshot

Status = Literal["passing", "warning", "breach", "stale"]
Level = Literal["passing", "warning", "breach", "stale", "skipped"]
DataSource = Literal["live", "replay"]
EntrySide = Literal["buy", "sell"]

RANK: dict[str, int] = {"skipped": -1, "passing": 0, "warning": 1, "breach": 2, "stale": 3}


class GuardCheck(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    value: float | None
    threshold: float | None
    level: Level
    blocking: bool
    reason: str


class Depth(msgspec.Struct, frozen=True, kw_only=True):
    bid_usd: float | None
    ask_usd: float | None


class GuardReport(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    spread_bps: float | None
    depth_10bps: Depth
    funding_apr: float | None
    basis_bps: float | None
    oi_notional: float | None
    liq_events_5m: int
    status: Status
    warnings: list[str]
    blocks: list[str]
    ages_s: dict[str, float | None]
    data_source: DataSource
    checks: list[GuardCheck] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)  # checks skipped for a missing input


GUARDS = Topic("guards", GuardReport)
SCHEMA_KEYS = (
    "ts", "spread_bps", "depth_10bps", "funding_apr", "basis_bps", "oi_notional", "liq_events_5m",
    "status", "warnings", "blocks", "ages_s", "data_source", "notes",
)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _fmt(x: float) -> str:
    return f"{x:,.6g}" if abs(x) < 1e6 else f"{x:,.0f}"


class _Builder:
    def __init__(self, cfg: GuardsConfig) -> None:
        self.cfg = cfg
        self.checks: list[GuardCheck] = []
        self.notes: list[str] = []

    def add(self, name: str, value: float | None, threshold: float | None, level: Level, reason: str) -> None:
        blocking = level == "stale" or (level in ("warning", "breach") and self.cfg.blocks(name))
        self.checks.append(GuardCheck(name=name, value=value, threshold=threshold, level=level,
                                      blocking=blocking, reason=reason))

    def limit(self, name: str, label: str, value: float | None, threshold: float, bad: Level,
              above: bool, unit: str, missing: str) -> None:
        """``value`` must be <= threshold (``above=True`` means exceeding is bad) or >= threshold."""
        if value is None:
            self.add(name, None, threshold, "stale", f"{label} unknown: {missing}")
            return
        if not math.isfinite(value):
            self.add(name, value, threshold, "stale", f"{label} is not a number")
            return
        ok = value <= threshold if above else value >= threshold
        op = ">" if above else "<"
        if ok:
            self.add(name, value, threshold, "passing", f"{label} {_fmt(value)}{unit}")
        else:
            self.add(name, value, threshold, bad, f"{label} {_fmt(value)}{unit} {op} {_fmt(threshold)}{unit}")


def _abs(x: float | None) -> float | None:
    return None if x is None else abs(x)


def _inputs(b: _Builder, snap: MarketSnapshot, extra_s: float) -> dict[str, float | None]:
    ages: dict[str, float | None] = {}
    for name in INPUT_NAMES:
        raw = snap.ages_s.get(name)
        age = None if raw is None else raw + extra_s
        ages[name] = None if age is None else round(age, 3)
        max_age = b.cfg.max_age.of(name)
        why = snap.not_live.get(name)
        if age is None:
            b.add(f"input.{name}", None, max_age, "stale", f"{name} missing" + (f" ({why})" if why else ""))
        elif why:
            b.add(f"input.{name}", age, max_age, "stale", f"{name} not live: {why}")
        elif not age <= max_age:
            b.add(f"input.{name}", age, max_age, "stale", f"{name} stale: {age:.1f} s old > {max_age:g} s")
        else:
            b.add(f"input.{name}", age, max_age, "passing", f"{name} {age:.1f} s old")
    return ages


def _optional_guards(b: _Builder, snap: MarketSnapshot, leverage: float | None, daily_pnl_pct: float | None,
                     liq_clusters: Sequence[float] | None, side: EntrySide | None, liq_map_note: str) -> None:
    cfg = b.cfg
    if leverage is None:
        b.add("leverage", None, cfg.max_leverage, "skipped", "leverage not given")
    else:
        b.limit("leverage", "leverage", leverage, cfg.max_leverage, "breach", True, "x", "")
    rg = cfg.rsi_gate
    if rg.enabled:
        rsi = snap.rsi
        if not _finite(rsi):
            b.add("rsi_gate", rsi, None, "stale", f"rsi_gate: RSI({rg.period}) not available (warming up)")
        else:
            assert rsi is not None
            hot = rsi > rg.overbought and side != "sell"
            cold = rsi < rg.oversold and side != "buy"
            if hot or cold:
                thr = rg.overbought if hot else rg.oversold
                b.add("rsi_gate", rsi, thr, "warning",
                      f"rsi_gate: RSI {rsi:.1f} {'>' if hot else '<'} {thr:g}")
            else:
                b.add("rsi_gate", rsi, None, "passing", f"rsi_gate: RSI {rsi:.1f}")
    oc = cfg.obv_cliff
    if oc.enabled:
        if snap.bars_seen <= oc.lookback_bars:
            b.add("obv_cliff", None, oc.mult, "stale",
                  f"obv_cliff: warming up ({snap.bars_seen}/{oc.lookback_bars + 1} bars)")
        else:
            d = snap.obv_cliff
            vetoed = (d < 0 and side != "sell") or (d > 0 and side != "buy")
            level: Level = "warning" if vetoed else "passing"
            what = {-1: "OBV cliff (drop)", 1: "OBV surge", 0: "no OBV cliff"}[max(-1, min(1, d))]
            b.add("obv_cliff", float(d), oc.mult, level, f"obv_cliff: {what}")
    lg = cfg.liq_gap
    if lg.enabled:
        if liq_clusters is None:
            why = f"liq_gap: liq-map unavailable ({liq_map_note or 'no liq-map'})"
            if lg.when_unavailable == "block":
                b.add("liq_gap", None, None, "stale", why)
            else:
                b.add("liq_gap", None, None, "skipped", why)
                b.notes.append(why)
        else:
            mid, atr = snap.mid, snap.atr_5m
            if not _finite(mid) or not _finite(atr):
                b.add("liq_gap", None, None, "stale", "liq_gap: mid or ATR(5m) not available")
            else:
                assert mid is not None and atr is not None
                need = lg.atr_mult * atr
                gaps = [abs(px - mid) for px in liq_clusters if math.isfinite(px)]
                if not gaps:
                    b.add("liq_gap", None, need, "passing", "liq_gap: no liquidation clusters")
                else:
                    gap = min(gaps)
                    ok = gap >= need
                    b.add("liq_gap", gap, need, "passing" if ok else "warning",
                          f"liq_gap: nearest cluster {_fmt(gap)} away {'>=' if ok else '<'} "
                          f"{lg.atr_mult:g}xATR {_fmt(need)}")
    ds = cfg.daily_stop
    if ds.enabled:
        if daily_pnl_pct is None:
            b.add("daily_stop", None, -ds.max_loss_pct, "skipped", "daily_stop: PnL not given")
        else:
            stop = -ds.max_loss_pct
            if not math.isfinite(daily_pnl_pct):
                b.add("daily_stop", daily_pnl_pct, stop, "stale", "daily_stop: day PnL is not a number")
            elif daily_pnl_pct > stop:
                b.add("daily_stop", daily_pnl_pct, stop, "passing",
                      f"daily_stop: day PnL {daily_pnl_pct:.2f}%")
            else:
                b.add("daily_stop", daily_pnl_pct, stop, "breach",
                      f"daily_stop: day PnL {daily_pnl_pct:.2f}% <= {stop:g}%")


def evaluate(
    snapshot: MarketSnapshot,
    cfg: GuardsConfig,
    now_ms: int,
    data_source: DataSource,
    leverage: float | None = None,
    daily_pnl_pct: float | None = None,
    liq_clusters: Sequence[float] | None = None,
    side: EntrySide | None = None,
    liq_map_note: str = "",
) -> GuardReport:
    """Evaluate every guard at ``now_ms`` (ages are advanced if the snapshot is older than that).

    ``side`` narrows the RSI gate and the OBV-cliff veto to one entry direction; without it either
    extreme counts. ``liq_clusters`` are the prices of on-chain liquidation clusters (None: no
    usable liq-map, ``liq_map_note`` saying why).
    """
    b = _Builder(cfg)
    ages = _inputs(b, snapshot, max(0, now_ms - snapshot.ts) / 1000.0)
    s = snapshot
    bid, ask = s.best_bid, s.best_ask
    if bid is not None and ask is not None and not bid < ask:  # crossed or locked: unusable
        why = (f"book crossed: best bid {_fmt(bid)} >= best ask {_fmt(ask)}"
               if math.isfinite(bid) and math.isfinite(ask) else "book top is not a number")
        b.add("spread", s.spread_bps, cfg.spread_bps_max, "stale", why)
    else:
        b.limit("spread", "spread", s.spread_bps, cfg.spread_bps_max, "warning", True, " bps", "no book")
    depth = None if s.bid_usd is None or s.ask_usd is None else min(s.bid_usd, s.ask_usd)
    b.limit("depth", "depth(10bps) min side", depth, cfg.depth_usd_min, "warning", False, " USD", "no book")
    b.limit("funding", "|funding APR|", _abs(s.funding_apr), cfg.funding_apr_abs_max_pct, "warning", True,
            "%", "no funding")
    b.limit("basis", "|basis|", _abs(s.basis_bps), cfg.basis_bps_abs_max, "warning", True, " bps", "no basis")
    venues = ", ".join(f"{v} {n}" for v, n in sorted(s.liq_by_venue.items()))
    b.limit("liquidations", f"liquidations in {cfg.liq_window_s:g}s" + (f" ({venues})" if venues else ""),
            float(s.liq_events_5m), float(cfg.liq_events_max), "breach", True, "", "")
    _optional_guards(b, s, leverage, daily_pnl_pct, liq_clusters, side, liq_map_note)
    counted = [c for c in b.checks if c.level != "skipped"]
    worst = max((RANK[c.level] for c in counted), default=0)
    status: Status = ("passing", "warning", "breach", "stale")[worst]
    return GuardReport(
        ts=now_ms,
        spread_bps=s.spread_bps,
        depth_10bps=Depth(bid_usd=s.bid_usd, ask_usd=s.ask_usd),
        funding_apr=s.funding_apr,
        basis_bps=s.basis_bps,
        oi_notional=s.oi_notional,
        liq_events_5m=s.liq_events_5m,
        status=status,
        warnings=[c.reason for c in counted if c.level != "passing"],
        blocks=[c.reason for c in counted if c.blocking],
        ages_s=ages,
        data_source=data_source,
        checks=b.checks,
        notes=b.notes,
    )


def allows_entry(report: GuardReport) -> bool:
    """True when nothing blocks a new entry (a warning on a non-blocking guard does not)."""
    return report.status != "stale" and not report.blocks


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def to_json(report: GuardReport, detailed: bool = False) -> dict[str, Any]:
    """The report as JSON-ready builtins with exactly the schema keys (plus ``checks`` when
    ``detailed``); missing or non-finite numbers become None (JSON null)."""
    raw: dict[str, Any] = msgspec.to_builtins(report)
    out = {k: raw[k] for k in SCHEMA_KEYS}
    if detailed:
        out["checks"] = raw["checks"]
    result: dict[str, Any] = _clean(out)
    return result
