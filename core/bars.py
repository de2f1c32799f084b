"""1-minute trade bars with UTC-day-anchored CVD and VWAP (pure, no I/O).

Definitions (the ``bars`` contract of the architecture page):

* ``timestamp`` is the bar open in ms, ``ts_ms // 60000 * 60000``; bars exist only for minutes
  that had trades.
* ``open``/``high``/``low``/``close`` are trade prices; ``trades`` counts the trades.
* ``buy_vol``/``sell_vol`` are base units by aggressor side (``is_sell=True`` = the aggressor
  sold; for Binance that is ``m: true``).
* ``cvd`` = cumulative (buy - sell) and ``vwap`` = sum(p*q) / sum(q), both anchored at 00:00 UTC
  and taken through the END of the bar. The anchor resets when a trade of a new UTC day opens a
  bar, so the first bar of a day carries that bar's own cvd/vwap only. If every trade of the day
  so far had zero quantity, ``vwap`` is the last price.

Out-of-order rule: a trade whose minute is EARLIER than the current bar's (a late print) is folded
into the current bar as if it had happened at the current bar's open: it updates high/low/close,
the volumes, the trade count and the day's cvd/vwap of the current day, and never re-opens a
closed bar or resets the day anchor. Late trades are counted in :attr:`BarBuilder.late`. The same
floor applies after :meth:`BarBuilder.flush`: a later trade of an already-emitted minute opens a
fresh bar with that minute's timestamp (cvd/vwap continue from the day's running totals).

Hot path: :meth:`BarBuilder.add` does a handful of slot reads/writes and allocates nothing except
the :class:`~core.models.Bar` it returns once per minute.
"""

from __future__ import annotations

from core.models import Bar

MINUTE_MS = 60_000
DAY_MS = 86_400_000

_NO_BAR = -(1 << 62)


class BarBuilder:
    """Build closed 1-minute :class:`Bar` objects from a time-ordered trade stream."""

    __slots__ = (
        "_buy",
        "_c",
        "_day",
        "_day_cvd",
        "_day_pq",
        "_day_vol",
        "_end",
        "_floor",
        "_h",
        "_l",
        "_n",
        "_o",
        "_pq",
        "_sell",
        "_ts",
        "late",
        "symbol",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.late = 0
        self._ts = _NO_BAR  # open (ms) of the bar being built; _NO_BAR when there is none
        self._end = _NO_BAR  # its end (open + 1 min); _NO_BAR when there is none
        self._floor = _NO_BAR  # open of the last bar opened: earlier trades are clamped to it
        self._n = 0  # trades in the current bar; 0 = no current bar
        self._o = self._h = self._l = self._c = 0.0
        self._buy = self._sell = self._pq = 0.0
        self._day = _NO_BAR  # UTC day index (ts // DAY_MS) of the running anchor
        self._day_cvd = self._day_pq = self._day_vol = 0.0  # through the end of the last closed bar

    # ------------------------------------------------------------------ hot path
    def add(self, ts_ms: int, price: float, qty: float, is_sell: bool) -> Bar | None:
        """Add one trade; return the just-closed bar when this trade opens a new minute."""
        if ts_ms >= self._end:
            return self._open(ts_ms - ts_ms % MINUTE_MS, price, qty, is_sell)
        if ts_ms < self._ts:
            self.late += 1
        if price > self._h:
            self._h = price
        elif price < self._l:
            self._l = price
        self._c = price
        if is_sell:
            self._sell += qty
        else:
            self._buy += qty
        self._pq += price * qty
        self._n += 1
        return None

    def _open(self, minute: int, price: float, qty: float, is_sell: bool) -> Bar | None:
        """Close the current bar (if any) and open one at ``minute`` with this trade."""
        closed: Bar | None = None
        if self._n:
            closed = self._close()
        if minute < self._floor:  # after flush(): a late trade opens a bar at the floor
            self.late += 1
            minute = self._floor
        day = minute // DAY_MS
        if day != self._day:
            self._day = day
            self._day_cvd = self._day_pq = self._day_vol = 0.0
        self._ts = self._floor = minute
        self._end = minute + MINUTE_MS
        self._n = 1
        self._o = self._h = self._l = self._c = price
        if is_sell:
            self._buy = 0.0
            self._sell = qty
        else:
            self._buy = qty
            self._sell = 0.0
        self._pq = price * qty
        return closed

    def _snapshot(self, closed: bool) -> Bar:
        vol = self._day_vol + self._buy + self._sell
        pq = self._day_pq + self._pq
        return Bar(
            symbol=self.symbol,
            timestamp=self._ts,
            open=self._o,
            high=self._h,
            low=self._l,
            close=self._c,
            buy_vol=self._buy,
            sell_vol=self._sell,
            cvd=self._day_cvd + (self._buy - self._sell),
            vwap=pq / vol if vol > 0.0 else self._c,
            trades=self._n,
            closed=closed,
        )

    def _close(self) -> Bar:
        bar = self._snapshot(True)
        self._day_cvd = bar.cvd
        self._day_pq += self._pq
        self._day_vol += self._buy + self._sell
        self._n = 0
        self._ts = self._end = _NO_BAR
        return bar

    # ------------------------------------------------------------------ queries
    def current(self) -> Bar | None:
        """The partial bar being built (``closed=False``), or None if there is none."""
        return self._snapshot(False) if self._n else None

    def flush(self) -> Bar | None:
        """Close and return the partial bar (``closed=True``), e.g. at the end of a replay.

        The day anchor and the out-of-order floor are kept, so bars emitted after a flush stay
        consistent with the ones before it.
        """
        return self._close() if self._n else None

    def resume(self, day_bars: list[Bar]) -> None:
        """Continue from stored bars of one UTC day (time-ordered, one per minute) after a restart:
        the day's CVD and VWAP sums carry on from the last closed bar, and a last bar that was not
        closed (stored at shutdown) becomes the current bar again. Only on a fresh builder.

        The sums are recovered from the stored values (Σq from the volumes, Σp·q = VWAP × Σq), so
        they equal an uninterrupted run's up to float rounding."""
        if self._n or not day_bars:
            return
        last = day_bars[-1]
        closed = day_bars if last.closed else day_bars[:-1]
        vol = sum(b.buy_vol + b.sell_vol for b in closed)
        self._day = last.timestamp // DAY_MS
        self._day_cvd = closed[-1].cvd if closed else 0.0
        self._day_vol = vol
        self._day_pq = closed[-1].vwap * vol if closed else 0.0
        self._floor = last.timestamp
        if not last.closed:
            total = vol + last.buy_vol + last.sell_vol
            self._ts, self._end, self._n = last.timestamp, last.timestamp + MINUTE_MS, last.trades
            self._o, self._h, self._l, self._c = last.open, last.high, last.low, last.close
            self._buy, self._sell = last.buy_vol, last.sell_vol
            self._pq = last.vwap * total - self._day_pq
