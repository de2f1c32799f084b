"""The guard status straight from the market state, without building a report (pure).

:func:`core.guards.evaluate` builds a full :class:`~core.guards.GuardReport` (every check with its
reason text); the :class:`~core.guard_monitor.GuardMonitor` needs, after each input, only whether
the *status* changed, to publish at once when it did. :func:`status_now` computes exactly
``evaluate(state.snapshot(now_ms), cfg, now_ms, ...).status`` (the same comparisons on the same
numbers, in a few microseconds instead of tens) and stops at the first stale check, since nothing
ranks above stale. The property tests (tests/test_guard_status.py) hold the two equal on random
market states; keep them in step when a guard changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.guard_config import GuardsConfig
from core.guards import EntrySide, Status
from core.market_state import MINUTE_MS, MarketState, _pick

_STATUS: tuple[Status, ...] = ("passing", "warning", "breach", "stale")
_STALE = 3


def _fin(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def status_now(
    state: MarketState,
    now_ms: int,
    leverage: float | None = None,
    daily_pnl_pct: float | None = None,
    liq_clusters: Sequence[float] | None = None,
    side: EntrySide | None = None,
) -> Status:
    """``evaluate(state.snapshot(now_ms), state.cfg, now_ms, ..., leverage, daily_pnl_pct,
    liq_clusters, side).status``, computed without the snapshot or the report."""
    cfg: GuardsConfig = state.cfg
    ma = cfg.max_age
    # -- inputs: missing, not live or too old is stale (and nothing ranks above stale). The
    # report's age is max(0, (now - ts)/1000) and an input is stale unless age <= its max age m:
    # max(0, a) <= m  <=>  a <= m and 0 <= m  (also for a NaN m), written without the calls.
    book = state.book
    if book is None:
        return "stale"
    m = ma.book_s
    if not ((now_ms - book.timestamp) / 1000.0 <= m and m >= 0.0):
        return "stale"
    f = _pick(state.funding, cfg.funding_venue)
    if f is None:
        return "stale"
    m = ma.funding_s
    if not ((now_ms - f.ts) / 1000.0 <= m and m >= 0.0):
        return "stale"
    o = _pick(state.oi, cfg.oi_venue)
    if o is None:
        return "stale"
    m = ma.oi_s
    if not ((now_ms - o.ts) / 1000.0 <= m and m >= 0.0):
        return "stale"
    ba = state.basis
    if ba is None:
        return "stale"
    m = ma.basis_s
    if not ((now_ms - ba.ts) / 1000.0 <= m and m >= 0.0):
        return "stale"
    bars = state.bars
    if not bars:
        return "stale"
    m = ma.bars_s
    if not ((now_ms - (bars[-1].timestamp + MINUTE_MS)) / 1000.0 <= m and m >= 0.0):
        return "stale"
    liq_age, why = state._liq_input(now_ms)
    if liq_age is None or why or not liq_age <= ma.liquidations_s:
        return "stale"
    worst = 0
    # -- market limits (a value that is not a finite number is stale)
    spread = book.spread_bps
    if not math.isfinite(spread):
        return "stale"
    if not spread <= cfg.spread_bps_max:
        worst = 1
    depth = min(book.bid_usd, book.ask_usd)
    if not math.isfinite(depth):
        return "stale"
    if not depth >= cfg.depth_usd_min:
        worst = 1
    apr = abs(f.apr_pct)
    if not math.isfinite(apr):
        return "stale"
    if not apr <= cfg.funding_apr_abs_max_pct:
        worst = 1
    bps = abs(ba.basis_bps)
    if not math.isfinite(bps):
        return "stale"
    if not bps <= cfg.basis_bps_abs_max:
        worst = 1
    if not float(state.liq_count(now_ms)) <= float(cfg.liq_events_max):
        worst = 2
    # -- optional guards
    if leverage is not None:
        if not math.isfinite(leverage):
            return "stale"
        if not leverage <= cfg.max_leverage:
            worst = 2
    rg = cfg.rsi_gate
    if rg.enabled:
        rsi = state.rsi
        if rsi is None or not math.isfinite(rsi):
            return "stale"
        if (rsi > rg.overbought and side != "sell") or (rsi < rg.oversold and side != "buy"):
            worst = max(worst, 1)
    oc = cfg.obv_cliff
    if oc.enabled:
        if state.bars_seen <= oc.lookback_bars:
            return "stale"
        d = state.obv_cliff()
        if (d < 0 and side != "sell") or (d > 0 and side != "buy"):
            worst = max(worst, 1)
    if cfg.liq_gap.enabled and liq_clusters is not None:
        mid = (book.bid_px + book.ask_px) / 2.0
        atr = state.atr_5m
        if not _fin(mid) or atr is None or not math.isfinite(atr):
            return "stale"
        gaps = [abs(px - mid) for px in liq_clusters if math.isfinite(px)]
        if gaps and not min(gaps) >= cfg.liq_gap.atr_mult * atr:
            worst = max(worst, 1)
    ds = cfg.daily_stop
    if ds.enabled and daily_pnl_pct is not None:
        if not math.isfinite(daily_pnl_pct):
            return "stale"
        if not daily_pnl_pct > -ds.max_loss_pct:
            worst = 2
    return _STATUS[worst]
