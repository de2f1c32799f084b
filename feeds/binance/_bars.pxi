# The compiled 1-minute bar builder (core.bars.BarBuilder's rules and arithmetic).
# Included by _fast.pyx (one extension module); cimports and constants are there.

# ------------------------------------------------------------------------------------- bars
cdef int64_t MINUTE_MS = 60_000
cdef int64_t DAY_MS = 86_400_000
cdef int64_t NO_BAR = -(1 << 62)
cdef int64_t TS_MAX = 1 << 62


cdef inline int64_t floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef class Bars:
    """:class:`core.bars.BarBuilder` compiled: same rules, same arithmetic, same :class:`Bar` objects."""

    cdef public str symbol
    cdef public int64_t late
    cdef int64_t _ts, _end, _floor, _n, _day
    cdef double _o, _h, _l, _c, _buy, _sell, _pq, _day_cvd, _day_pq, _day_vol

    def __init__(self, str symbol):
        self.symbol = symbol
        self.late = 0
        self._ts = self._end = self._floor = self._day = NO_BAR
        self._n = 0

    def add(self, int64_t ts_ms, double price, double qty, bint is_sell):
        """Add one trade; the just-closed bar when this trade opens a new minute (``|ts_ms| < 2**62``:
        the pipeline drops trades outside that)."""
        if not (-TS_MAX < ts_ms < TS_MAX):
            raise OverflowError(f"trade time out of range: {ts_ms}")
        return self.add_c(ts_ms, price, qty, is_sell)

    cdef object add_c(self, int64_t ts_ms, double price, double qty, bint is_sell):
        if ts_ms >= self._end:
            return self._open(ts_ms - (ts_ms - floordiv(ts_ms, MINUTE_MS) * MINUTE_MS), price, qty, is_sell)
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

    cdef object _open(self, int64_t minute, double price, double qty, bint is_sell):
        closed = None
        if self._n:
            closed = self._close()
        if minute < self._floor:
            self.late += 1
            minute = self._floor
        cdef int64_t day = floordiv(minute, DAY_MS)
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

    cdef object _snapshot(self, bint closed):
        cdef double vol = self._day_vol + self._buy + self._sell
        cdef double pq = self._day_pq + self._pq
        return Bar(symbol=self.symbol, timestamp=self._ts, open=self._o, high=self._h, low=self._l,
                   close=self._c, buy_vol=self._buy, sell_vol=self._sell,
                   cvd=self._day_cvd + (self._buy - self._sell), vwap=pq / vol if vol > 0.0 else self._c,
                   trades=self._n, closed=closed)

    cdef object _close(self):
        bar = self._snapshot(True)
        self._day_cvd = bar.cvd
        self._day_pq += self._pq
        self._day_vol += self._buy + self._sell
        self._n = 0
        self._ts = self._end = NO_BAR
        return bar

    def current(self):
        return self._snapshot(False) if self._n else None

    def flush(self):
        return self._close() if self._n else None

    def resume(self, list day_bars):
        """:meth:`core.bars.BarBuilder.resume`: continue the day's CVD/VWAP sums (and a bar left
        open at shutdown) from stored bars of one UTC day; only on a fresh builder. (The module is
        compiled with wraparound off: no negative indexes here.)"""
        cdef Py_ssize_t n = len(day_bars)
        if self._n or n == 0:
            return
        last = day_bars[n - 1]
        cdef list closed = day_bars if last.closed else day_bars[:n - 1]
        cdef Py_ssize_t k = len(closed)
        cdef double vol = 0.0
        for b in closed:
            vol += b.buy_vol + b.sell_vol
        self._day = floordiv(last.timestamp, DAY_MS)
        self._day_cvd = closed[k - 1].cvd if k else 0.0
        self._day_vol = vol
        self._day_pq = closed[k - 1].vwap * vol if k else 0.0
        self._floor = last.timestamp
        if not last.closed:
            total = vol + last.buy_vol + last.sell_vol
            self._ts = last.timestamp
            self._end = last.timestamp + MINUTE_MS
            self._n = last.trades
            self._o, self._h, self._l, self._c = last.open, last.high, last.low, last.close
            self._buy, self._sell = last.buy_vol, last.sell_vol
            self._pq = last.vwap * total - self._day_pq
