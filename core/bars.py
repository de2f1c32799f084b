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
the :class:`~core.models.Bar` it returns once per minute; :meth:`BarBuilder.add_many` (columns) and
:meth:`BarBuilder.add_rows` (objects with ``ts``/``price``/``qty``/``sell``, e.g. decoded structs) run
the same arithmetic with all state in local variables (the fastest entry points).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from core.models import Bar

MINUTE_MS = 60_000
DAY_MS = 86_400_000

_NO_BAR = -(1 << 62)


class TradeRow(Protocol):
    """What :meth:`BarBuilder.add_rows` reads from each row (e.g. a decoded msgspec Struct)."""

    @property
    def ts(self) -> int: ...
    @property
    def price(self) -> float: ...
    @property
    def qty(self) -> float: ...
    @property
    def sell(self) -> bool:
        """True when the aggressor sold."""
        ...


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

    def add_many(
        self,
        ts: Sequence[int],
        prices: Sequence[float],
        qtys: Sequence[float],
        sells: Sequence[bool],
    ) -> list[Bar]:
        """Add trades given as columns (equal lengths); return the bars closed meanwhile, in order."""
        n = len(ts)
        if not (len(prices) == len(qtys) == len(sells) == n):
            raise ValueError("add_many: columns differ in length")
        out: list[Bar] = []
        if not n:
            return out
        cur = self._ts
        end = self._end
        cnt = self._n
        h = self._h
        lo = self._l
        c = self._c
        buy = self._buy
        sell = self._sell
        pq = self._pq
        late = 0
        for t, p, q, s in zip(ts, prices, qtys, sells, strict=True):
            if t >= end:
                # write the locals back, let the slow path roll the bar, reload
                self._n = cnt
                self._h = h
                self._l = lo
                self._c = c
                self._buy = buy
                self._sell = sell
                self._pq = pq
                bar = self._open(t - t % MINUTE_MS, p, q, s)
                if bar is not None:
                    out.append(bar)
                cur = self._ts
                end = self._end
                cnt = 1
                h = lo = c = p
                buy = self._buy
                sell = self._sell
                pq = self._pq
                continue
            if t < cur:
                late += 1
            if p > h:
                h = p
            elif p < lo:
                lo = p
            c = p
            if s:
                sell += q
            else:
                buy += q
            pq += p * q
            cnt += 1
        self._n = cnt
        self._h = h
        self._l = lo
        self._c = c
        self._buy = buy
        self._sell = sell
        self._pq = pq
        self.late += late
        return out

    def add_rows(self, rows: Iterable[TradeRow]) -> list[Bar]:
        """Add trades given as objects with ``ts``/``price``/``qty``/``sell``; return the closed bars.

        Same arithmetic as :meth:`add_many`; this is the fastest entry point for decoded frames
        (no column lists to build).
        """
        out: list[Bar] = []
        cur = self._ts
        end = self._end
        cnt = self._n
        h = self._h
        lo = self._l
        c = self._c
        buy = self._buy
        sell = self._sell
        pq = self._pq
        late = 0
        for r in rows:
            t = r.ts
            p = r.price
            q = r.qty
            if t >= end:
                self._n = cnt
                self._h = h
                self._l = lo
                self._c = c
                self._buy = buy
                self._sell = sell
                self._pq = pq
                bar = self._open(t - t % MINUTE_MS, p, q, r.sell)
                if bar is not None:
                    out.append(bar)
                cur = self._ts
                end = self._end
                cnt = 1
                h = lo = c = p
                buy = self._buy
                sell = self._sell
                pq = self._pq
                continue
            if t < cur:
                late += 1
            if p > h:
                h = p
            elif p < lo:
                lo = p
            c = p
            if r.sell:
                sell += q
            else:
                buy += q
            pq += p * q
            cnt += 1
        self._n = cnt
        self._h = h
        self._l = lo
        self._c = c
        self._buy = buy
        self._sell = sell
        self._pq = pq
        self.late += late
        return out

    # ------------------------------------------------------------------ slow path
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
