"""Market history and the windows built from it (pure).

:class:`MarketHistory` is what the store held at start (``storage.market_history`` reads it): the
last 24 h of 1-minute bars of the primary symbol (the day's bars carry CVD/VWAP; the rest is the
indicators' lookback), the last 6 h of liquidations of every venue, 24 h of open interest and the
latest funding of every instrument. The runtime applies it to every window before any live data
(bar builder, market state, signal, :class:`MarketWindows`, the UI through :data:`HISTORY`), so a
restart looks like nothing happened.

:class:`MarketWindows` holds the UI's and the status windows, all bounded and all independent of
the order values arrive in (a restart replays history sorted by time, live data arrives as it
arrives): closed bars by open time, liquidations of the last ``liq_window_ms``, open interest per
instrument and minute, from which the aggregated 24 h series is computed on demand (each
instrument's latest value, while at most ``oi_max_age_s`` old, summed per minute).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import msgspec

from core.bus import Topic
from core.derivatives import Derivatives, Key
from core.models import Bar, Funding, Liquidation, OpenInterest

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
BARS_LOOKBACK_MS = 24 * HOUR_MS
LIQ_WINDOW_MS = 6 * HOUR_MS
OI_WINDOW_MS = 24 * HOUR_MS
MAX_LIQS = 20_000


class MarketHistory(msgspec.Struct, frozen=True, kw_only=True):
    """Stored market data up to ``now_ms`` (each list oldest first)."""

    now_ms: int
    bars: list[Bar] = msgspec.field(default_factory=list)
    liquidations: list[Liquidation] = msgspec.field(default_factory=list)
    open_interest: list[OpenInterest] = msgspec.field(default_factory=list)
    funding: list[Funding] = msgspec.field(default_factory=list)

    def day_bars(self) -> list[Bar]:
        """The bars of the UTC day of the last bar (the CVD/VWAP anchor)."""
        if not self.bars:
            return []
        day = self.bars[-1].timestamp // 86_400_000
        return [b for b in self.bars if b.timestamp // 86_400_000 == day]


HISTORY: Topic[MarketHistory] = Topic("market:solusdt:history", MarketHistory)


def dedupe_bars(bars: Iterable[Bar]) -> list[Bar]:
    """One bar per minute, oldest first: a closed bar wins over a partial one of the same minute
    (a partial bar is stored at shutdown), else the later one."""
    by_ts: dict[int, Bar] = {}
    for b in bars:
        cur = by_ts.get(b.timestamp)
        if cur is None or b.closed or not cur.closed:
            by_ts[b.timestamp] = b
    return [by_ts[k] for k in sorted(by_ts)]


class MarketWindows:
    """Bounded windows of bars, liquidations and open interest (see the module docstring)."""

    def __init__(self, *, max_bars: int = 1440, liq_window_ms: int = LIQ_WINDOW_MS,
                 oi_window_ms: int = OI_WINDOW_MS, oi_max_age_s: float = 300.0) -> None:
        self.max_bars = max_bars
        self.liq_window_ms = liq_window_ms
        self.oi_window_ms = oi_window_ms
        self.oi_max_age_s = oi_max_age_s
        self.bars: dict[int, Bar] = {}
        self.liqs: deque[Liquidation] = deque(maxlen=MAX_LIQS)
        self.derivs = Derivatives()
        self.oi_minutes: dict[Key, dict[int, tuple[int, float]]] = {}  # minute -> (ts, USD)
        self.now_ms = 0

    def _t(self, ts: int) -> None:
        if ts > self.now_ms:
            self.now_ms = ts

    # ------------------------------------------------------------------ ingest
    def on_bar(self, b: Bar) -> None:
        cur = self.bars.get(b.timestamp)
        if cur is not None and cur.closed and not b.closed:
            return
        self.bars[b.timestamp] = b
        if len(self.bars) > self.max_bars:
            for k in sorted(self.bars)[: len(self.bars) - self.max_bars]:
                del self.bars[k]

    def on_liquidation(self, m: Liquidation) -> None:
        self._t(m.ts)
        horizon = self.now_ms - self.liq_window_ms
        if m.ts < horizon:
            return
        self.liqs.append(m)
        while self.liqs and self.liqs[0].ts < horizon:
            self.liqs.popleft()

    def on_open_interest(self, m: OpenInterest) -> None:
        self.derivs.on_open_interest(m)
        self._t(m.ts)
        per = self.oi_minutes.setdefault((m.venue, m.symbol), {})
        minute = m.ts // MINUTE_MS
        cur = per.get(minute)
        if cur is None or m.ts >= cur[0]:  # a minute keeps the value of its latest timestamp
            per[minute] = (m.ts, m.oi_notional)
        if len(per) > self.oi_window_ms // MINUTE_MS + 10:
            horizon = (self.now_ms - self.oi_window_ms) // MINUTE_MS
            for k in [k for k in per if k < horizon]:
                del per[k]

    def on_funding(self, m: Funding) -> None:
        self._t(m.ts)
        self.derivs.on_funding(m)

    def load(self, h: MarketHistory) -> None:
        for b in h.bars:
            self.on_bar(b)
        for x in h.liquidations:
            self.on_liquidation(x)
        for o in h.open_interest:
            self.on_open_interest(o)
        for f in h.funding:
            self.on_funding(f)

    # ------------------------------------------------------------------ queries
    def oi_series(self) -> list[tuple[int, float]]:
        """``(minute open ms, total USD)`` over the last ``oi_window_ms``, oldest first: per minute
        the sum of every instrument's latest value that is at most ``oi_max_age_s`` old."""
        minutes = sorted({k for per in self.oi_minutes.values() for k in per})
        if not minutes:
            return []
        horizon = minutes[-1] - self.oi_window_ms // MINUTE_MS
        max_age_min = self.oi_max_age_s / 60.0
        latest: dict[Key, tuple[int, float]] = {}
        out: list[tuple[int, float]] = []
        for minute in minutes:
            for key, per in self.oi_minutes.items():
                v = per.get(minute)
                if v is not None:
                    latest[key] = (minute, v[1])
            if minute <= horizon:
                continue
            out.append((minute * MINUTE_MS, sum(v for m, v in latest.values() if minute - m <= max_age_min)))
        return out

    def liq_window(self, now_ms: int, window_ms: int) -> tuple[int, float]:
        """Count and notional of liquidations with ``ts > now_ms - window_ms``."""
        horizon = now_ms - window_ms
        n, notional = 0, 0.0
        for liq in self.liqs:
            if horizon < liq.ts <= now_ms:
                n += 1
                notional += liq.notional
        return n, notional

    def to_json(self) -> dict[str, Any]:
        """The windows as JSON-ready builtins (the control socket's ``windows`` answer)."""
        return {
            "bars": [msgspec.to_builtins(self.bars[k]) for k in sorted(self.bars)],
            "liquidations": sorted((msgspec.to_builtins(x) for x in self.liqs
                                    if x.ts >= self.now_ms - self.liq_window_ms),
                                   key=lambda d: (d["ts"], d["venue"], d["symbol"], d["price"], d["qty"])),
            "oi_series": [[t, v] for t, v in self.oi_series()],
            "funding": {f"{v}:{s}": msgspec.to_builtins(f)
                        for (v, s), f in sorted(self.derivs.funding.items())},
            "open_interest": {f"{v}:{s}": msgspec.to_builtins(o)
                              for (v, s), o in sorted(self.derivs.oi.items())},
        }
