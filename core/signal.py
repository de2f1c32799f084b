"""1-minute CVD + VWAP reclaim signal (pure; no bus, no clock).

Rule (see :class:`core.guard_config.SignalConfig`): on each closed 1-minute bar,

* **long** when the previous bar closed below its session VWAP and this bar closes above its VWAP by
  at least ``min_reclaim_bps``, and the aggressor flow over the last ``cvd_lookback_bars`` bars
  (Σ buy_vol − sell_vol, which equals the change of the day-anchored CVD within a day and ignores
  its 00:00 UTC reset) is greater than ``min_cvd_delta``;
* **short** symmetrically (close back below VWAP after closing above, flow below −min_cvd_delta).

An :class:`~core.intents.Intent` is produced only while the signal is enabled, the guard report is
``passing`` and :func:`~core.guards.allows_entry`, the report and book are at most
``max_input_age_s`` older than the bar's end, ATR(5m) is known and the book is not crossed.

Intent (see :class:`~core.guard_config.RiskConfig`): post-only at the touch (best bid for a buy,
best ask for a sell); stop distance ``sl_atr_mult × ATR``; ``size = risk_usd / stop distance`` with
``risk_usd = equity × risk_per_trade_pct / 100``, capped so that ``size × price <= equity ×
leverage`` and rounded down to ``size_step`` when set; TPs at ``entry ± tp_atr_mult[i] × ATR`` with
``tp_split[i] / 100`` of the size each.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from core.guard_config import RiskConfig, SignalConfig
from core.guards import GuardReport, allows_entry
from core.intents import Intent, IntentSide, Regime, SignalVeto, Veto
from core.models import Bar, BookTop

MINUTE_MS = 60_000
DAY_MS = 86_400_000


def detect(bars: Sequence[Bar], cfg: SignalConfig) -> tuple[IntentSide, float] | None:
    """The reclaim on the last of ``bars`` (time-ordered closed 1m bars): ``(side, cvd change)``."""
    n = cfg.cvd_lookback_bars
    if len(bars) < max(2, n):
        return None
    prev, cur = bars[-2], bars[-1]
    if cfg.skip_session_open and prev.timestamp // DAY_MS != cur.timestamp // DAY_MS:
        return None
    if not (cur.vwap > 0 and prev.vwap > 0):
        return None
    flow = sum(bars[i].buy_vol - bars[i].sell_vol for i in range(len(bars) - n, len(bars)))
    edge = (cur.close - cur.vwap) / cur.vwap * 1e4
    min_bps, min_flow = cfg.min_reclaim_bps, cfg.min_cvd_delta
    if prev.close < prev.vwap and cur.close > cur.vwap and edge >= min_bps and flow > min_flow:
        return "buy", flow
    if prev.close > prev.vwap and cur.close < cur.vwap and -edge >= min_bps and flow < -min_flow:
        return "sell", flow
    return None


Ladder = tuple[tuple[float, float], ...]


def ladder(side: IntentSide, entry: float, atr: float, risk: RiskConfig) -> tuple[float, Ladder]:
    """Stop-loss price and ``(price, fraction)`` take-profits for an entry."""
    sign = 1.0 if side == "buy" else -1.0
    sl = entry - sign * risk.sl_atr_mult * atr
    pairs = zip(risk.tp_atr_mult, risk.tp_split, strict=True)
    tps = tuple((entry + sign * m * atr, pct / 100.0) for m, pct in pairs)
    return sl, tps


def position_size(
    equity_usd: float, price: float, stop_distance: float, risk: RiskConfig
) -> tuple[float, bool]:
    """``(size in base units, capped by leverage)`` for a trade risking ``risk_per_trade_pct``."""
    size = equity_usd * risk.risk_per_trade_pct / 100.0 / stop_distance
    cap = equity_usd * risk.leverage / price
    capped = size > cap
    if capped:
        size = cap
    if risk.size_step > 0:
        size = math.floor(size / risk.size_step + 1e-9) * risk.size_step
    return size, capped


class VwapReclaimSignal:
    """Streaming signal: feed closed 1m bars with :meth:`on_bar`; read :attr:`regime`."""

    def __init__(self, cfg: SignalConfig | None = None, risk: RiskConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else SignalConfig()
        self.risk = risk if risk is not None else RiskConfig()
        self._need = max(2, self.cfg.cvd_lookback_bars)
        self.bars: deque[Bar] = deque(maxlen=self._need)
        self.regime = Regime(ts=0, on=False, reason="no data yet")
        self.last_skip = ""  # why the last detected reclaim produced no intent
        self.last_veto: SignalVeto | None = None  # the same, structured (guard, value, threshold)
        self._published: tuple[bool, str] | None = None
        self._atr: float | None = None

    # ------------------------------------------------------------------ regime
    def _off_reason(self, report: GuardReport | None, atr_5m: float | None) -> str:
        if not self.cfg.enabled:
            return "signal disabled"
        if report is None:
            return "no guard report"
        if report.status != "passing" or not allows_entry(report):
            names = sorted({c.name for c in report.checks if c.level not in ("passing", "skipped")})
            return f"guards {report.status}" + (f": {', '.join(names)}" if names else "")
        if atr_5m is None or not math.isfinite(atr_5m) or atr_5m <= 0:
            return "ATR(5m) warming up"
        if len(self.bars) < self._need:
            return f"warming up ({len(self.bars)}/{self._need} bars)"
        return ""

    def _set_regime(self, ts: int, reason: str) -> None:
        self.regime = Regime(ts=ts, on=not reason, reason=reason or "armed")

    def on_report(self, report: GuardReport, atr_5m: float | None = None) -> Regime:
        """Update the regime from a new guard report (ATR defaults to the last one seen)."""
        if atr_5m is not None:
            self._atr = atr_5m
        self._set_regime(report.ts, self._off_reason(report, self._atr))
        return self.regime

    def regime_update(self) -> Regime | None:
        """The regime if its on/off state or reason changed since the last call (to publish)."""
        key = (self.regime.on, self.regime.reason)
        if key == self._published:
            return None
        self._published = key
        return self.regime

    # ------------------------------------------------------------------ bars
    def warm(self, bars: Sequence[Bar]) -> None:
        """Stored closed bars at start (time-ordered): the lookback of the next bar's detection,
        never an intent."""
        for b in bars:
            if b.closed and (not self.bars or b.timestamp > self.bars[-1].timestamp):
                self.bars.append(b)

    def on_bar(self, bar: Bar, report: GuardReport | None, book: BookTop | None, atr_5m: float | None,
               equity_usd: float) -> Intent | None:
        if not bar.closed or (self.bars and bar.timestamp <= self.bars[-1].timestamp):
            return None
        self.bars.append(bar)
        self._atr = atr_5m
        end = bar.timestamp + MINUTE_MS
        reason = self._off_reason(report, atr_5m)
        max_age_ms = self.cfg.max_input_age_s * 1000.0
        if not reason and report is not None and report.ts < end - max_age_ms:
            reason = "guard report too old"
        self._set_regime(max(end, report.ts if report is not None else 0), reason)
        hit = detect(self.bars, self.cfg)
        if hit is None:
            return None
        side, flow = hit
        self.last_skip = ""
        self.last_veto = None
        iid = f"vwap-{self.cfg.market}-{side}-{bar.timestamp}"

        def veto(word: str, *why: Veto) -> None:
            self.last_skip = f"{side} reclaim at {bar.timestamp} {word}: " + "; ".join(v.reason for v in why)
            self.last_veto = SignalVeto(id=iid, ts=end, side=side, bar_ts=bar.timestamp, vetoes=why)

        if reason:
            veto("suppressed", *self._vetoes(reason, report, end))
            return None
        assert atr_5m is not None
        skip = self._book_problem(book, end - max_age_ms)
        if skip or book is None:
            veto("skipped", Veto(guard="book", reason=skip))
            return None
        if not (math.isfinite(equity_usd) and equity_usd > 0):
            veto("skipped", Veto(guard="equity", value=equity_usd if math.isfinite(equity_usd) else None,
                                 reason=f"equity {equity_usd!r}"))
            return None
        price = book.bid_px if side == "buy" else book.ask_px
        stop = self.risk.sl_atr_mult * atr_5m
        size, capped = position_size(equity_usd, price, stop, self.risk)
        if not size > 0:
            veto("skipped", Veto(guard="size", value=size, reason="size rounds to 0"))
            return None
        sl, tps = ladder(side, price, atr_5m, self.risk)
        above = "above" if side == "buy" else "below"
        why = (f"vwap reclaim {'long' if side == 'buy' else 'short'}: close {bar.close:g} back {above} "
               f"vwap {bar.vwap:.6g}, flow {flow:+.6g} over {self.cfg.cvd_lookback_bars} bars, "
               f"ATR(5m) {atr_5m:.6g}" + (", size capped by leverage" if capped else ""))
        return Intent(
            id=iid,
            ts=end,
            symbol=self.cfg.market,
            side=side,
            price=price,
            size=size,
            sl=sl,
            tps=tps,
            leverage=self.risk.leverage,
            reason=why,
            atr=atr_5m,
            risk_usd=equity_usd * self.risk.risk_per_trade_pct / 100.0,
        )

    def _vetoes(self, reason: str, report: GuardReport | None, end_ms: int) -> list[Veto]:
        """What the off-reason ``reason`` means: every guard check that is not passing, with its value
        and threshold, or the signal's own condition."""
        if report is not None and reason.startswith("guards "):
            bad = [c for c in report.checks if c.level not in ("passing", "skipped")]
            if bad:
                return [Veto(guard=c.name, value=c.value, threshold=c.threshold, level=c.level,
                             reason=c.reason) for c in bad]
            return [Veto(guard="guards", level=report.status, reason=reason)]
        if reason == "guard report too old" and report is not None:
            return [Veto(guard="report age", value=(end_ms - report.ts) / 1000.0,
                         threshold=self.cfg.max_input_age_s, reason=reason)]
        word = {"signal disabled": "disabled", "no guard report": "no report"}.get(reason, "warm-up")
        return [Veto(guard=word, reason=reason)]

    @staticmethod
    def _book_problem(book: BookTop | None, oldest_ms: float) -> str:
        if book is None:
            return "no book"
        if book.timestamp < oldest_ms:
            return "book too old"
        if not (book.bid_px > 0 and book.ask_px > book.bid_px):
            return f"book not usable (bid {book.bid_px}, ask {book.ask_px})"
        return ""
