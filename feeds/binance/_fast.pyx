# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled Binance hot path: frame scanner, depth levels, local book (see ``feeds/binance/fast.py``).

Exactness by construction: the scanner accepts only canonical frames (well-formed JSON, no string
escapes, ASCII only, integers as plain JSON integers, prices and quantities as plain decimal
strings ``digits[.digits]``) and for those produces exactly what the msgspec path produces;
anything else returns ``None`` and takes the Python path. Decimal strings become doubles with
Clinger's exact fast path (an integer mantissa below 2**53 divided by an exact power of ten <=
1e22: one correctly rounded IEEE division) or Python's own ``PyOS_string_to_double``, so every
value equals ``float(text)``. The book repeats :class:`core.book.OrderBook`'s arithmetic
operation for operation (same running sums, same order of additions; built with
``-ffp-contract=off``), on sorted arrays updated in place instead of a dict and a key list.
"""

from cpython.ref cimport PyObject
from libc.math cimport INFINITY, NAN
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memmove

from core.models import Bar, BookTicker, BookTop, Side, Trade


cdef extern from "Python.h":
    double PyOS_string_to_double(const char *s, char **endptr, PyObject *overflow_exception) except? -1.0
    object PyUnicode_DecodeASCII(const char *s, Py_ssize_t size, const char *errors)
    object PyBytes_FromStringAndSize(const char *v, Py_ssize_t len)
    char* PyBytes_AS_STRING(object o)
    Py_ssize_t PyBytes_GET_SIZE(object o)


ctypedef const unsigned char uchar

cdef object _SELL = Side.SELL
cdef object _BUY = Side.BUY
cdef str VENUE = "binance"

cdef double[23] POW10
POW10[0] = 1.0
for _i in range(1, 23):
    POW10[_i] = POW10[_i - 1] * 10.0  # exact up to 1e22

cdef uint64_t TWO53 = 1 << 53


# ------------------------------------------------------------------------------------- JSON scan
cdef inline uchar* ws(uchar* p, uchar* e) noexcept nogil:
    while p < e and (p[0] == 32 or p[0] == 10 or p[0] == 13 or p[0] == 9):
        p += 1
    return p


cdef inline uchar* skip_string(uchar* p, uchar* e) noexcept nogil:
    """``p`` at the opening quote; the end of the string, or NULL (escape, control, non-ASCII)."""
    p += 1
    while p < e:
        if p[0] == 34:
            return p + 1
        if p[0] == 92 or p[0] < 32 or p[0] >= 128:
            return NULL
        p += 1
    return NULL


cdef inline uchar* skip_digits(uchar* p, uchar* e) noexcept nogil:
    while p < e and 48 <= p[0] <= 57:
        p += 1
    return p


cdef uchar* skip_number(uchar* p, uchar* e) noexcept nogil:
    """A JSON number (strict grammar), or NULL."""
    cdef uchar* q
    if p < e and p[0] == 45:
        p += 1
    if p >= e:
        return NULL
    if p[0] == 48:
        p += 1
    elif 49 <= p[0] <= 57:
        p = skip_digits(p, e)
    else:
        return NULL
    if p < e and p[0] == 46:
        q = skip_digits(p + 1, e)
        if q == p + 1:
            return NULL
        p = q
    if p < e and (p[0] == 101 or p[0] == 69):
        p += 1
        if p < e and (p[0] == 43 or p[0] == 45):
            p += 1
        q = skip_digits(p, e)
        if q == p:
            return NULL
        p = q
    return p


cdef uchar* skip_value(uchar* p, uchar* e, int depth) noexcept nogil:
    """Any JSON value (validated, not built), or NULL."""
    if p >= e or depth > 32:
        return NULL
    cdef unsigned char c = p[0]
    if c == 34:
        return skip_string(p, e)
    if c == 123 or c == 91:
        return skip_container(p, e, depth)
    if c == 116:
        return p + 4 if e - p >= 4 and memcmp(p, b"true", 4) == 0 else NULL
    if c == 102:
        return p + 5 if e - p >= 5 and memcmp(p, b"false", 5) == 0 else NULL
    if c == 110:
        return p + 4 if e - p >= 4 and memcmp(p, b"null", 4) == 0 else NULL
    return skip_number(p, e)


cdef uchar* skip_container(uchar* p, uchar* e, int depth) noexcept nogil:
    cdef bint obj = p[0] == 123
    cdef unsigned char close = 125 if obj else 93
    p = ws(p + 1, e)
    if p < e and p[0] == close:
        return p + 1
    while p < e:
        if obj:
            if p[0] != 34:
                return NULL
            p = skip_string(p, e)
            if p == NULL:
                return NULL
            p = ws(p, e)
            if p >= e or p[0] != 58:
                return NULL
            p = ws(p + 1, e)
        p = skip_value(p, e, depth + 1)
        if p == NULL:
            return NULL
        p = ws(p, e)
        if p >= e:
            return NULL
        if p[0] == close:
            return p + 1
        if p[0] != 44:
            return NULL
        p = ws(p + 1, e)
    return NULL


cdef inline uchar* parse_uint(uchar* p, uchar* e, int64_t* out) noexcept nogil:
    """A non-negative JSON integer below 1e18, or NULL (the Python path decides the rest)."""
    cdef uchar* s = p
    cdef int64_t v = 0
    if p >= e or not (48 <= p[0] <= 57):
        return NULL
    if p[0] == 48:
        out[0] = 0
        p += 1
        if p < e and (48 <= p[0] <= 57 or p[0] == 46 or p[0] == 101 or p[0] == 69):
            return NULL
        return p
    while p < e and 48 <= p[0] <= 57:
        v = v * 10 + (p[0] - 48)
        p += 1
        if p - s > 18:
            return NULL
    if p < e and (p[0] == 46 or p[0] == 101 or p[0] == 69):
        return NULL  # a float where an int is expected: the Python path classifies it
    out[0] = v
    return p


cdef uchar* parse_decstr(uchar* p, uchar* e, double* out) noexcept:
    """``"digits[.digits]"`` (``p`` at the quote) -> ``float(text)`` exactly, or NULL."""
    cdef uchar* s
    cdef uint64_t m = 0
    cdef int nd = 0, frac = 0
    cdef bint dot = False
    cdef char buf[72]
    cdef Py_ssize_t n
    if p >= e or p[0] != 34:
        return NULL
    p += 1
    s = p
    while p < e:
        if 48 <= p[0] <= 57:
            if nd < 19:
                m = m * 10 + (p[0] - 48)
            nd += 1
            if dot:
                frac += 1
        elif p[0] == 46 and not dot:
            if p == s:
                return NULL
            dot = True
        else:
            break
        p += 1
    if p >= e or p[0] != 34 or p == s or (p - 1)[0] == 46:
        return NULL
    n = p - s
    if nd <= 19 and m <= TWO53 and frac <= 22:
        out[0] = <double>m / POW10[frac]
        return p + 1
    if n > 64:
        return NULL
    memcpy(buf, s, n)
    buf[n] = 0
    try:
        out[0] = PyOS_string_to_double(buf, NULL, NULL)
    except Exception:
        return NULL
    return p + 1


cdef inline uchar* parse_str(uchar* p, uchar* e, uchar** s, Py_ssize_t* n) noexcept nogil:
    cdef uchar* q
    if p >= e or p[0] != 34:
        return NULL
    q = skip_string(p, e)
    if q == NULL:
        return NULL
    s[0] = p + 1
    n[0] = q - p - 2
    return q


# ------------------------------------------------------------------------------------- levels
cdef class Levels:
    """Depth levels parsed to doubles: ``(price, qty)`` pairs, iterable like a list of tuples."""

    cdef double* v
    cdef Py_ssize_t n
    cdef Py_ssize_t cap

    def __dealloc__(self):
        free(self.v)

    cdef int push(self, double p, double q) except -1:
        cdef double* nv
        if self.n == self.cap:
            self.cap = 64 if self.cap == 0 else self.cap * 2
            nv = <double*>realloc(self.v, self.cap * 2 * sizeof(double))
            if nv == NULL:
                raise MemoryError()
            self.v = nv
        self.v[2 * self.n] = p
        self.v[2 * self.n + 1] = q
        self.n += 1
        return 0

    def __len__(self):
        return self.n

    def __iter__(self):
        cdef Py_ssize_t i
        return iter([(self.v[2 * i], self.v[2 * i + 1]) for i in range(self.n)])


cdef uchar* parse_levels(uchar* p, uchar* e, Levels lv) except? NULL:
    """``[["p","q"], ...]`` into ``lv``; NULL if not canonical."""
    cdef double px, qty
    if p >= e or p[0] != 91:
        return NULL
    p = ws(p + 1, e)
    if p < e and p[0] == 93:
        return p + 1
    while p < e:
        if p[0] != 91:
            return NULL
        p = ws(p + 1, e)
        p = parse_decstr(p, e, &px)
        if p == NULL:
            return NULL
        p = ws(p, e)
        if p >= e or p[0] != 44:
            return NULL
        p = ws(p + 1, e)
        p = parse_decstr(p, e, &qty)
        if p == NULL:
            return NULL
        p = ws(p, e)
        if p >= e or p[0] != 93:
            return NULL
        lv.push(px, qty)
        p = ws(p + 1, e)
        if p >= e:
            return NULL
        if p[0] == 93:
            return p + 1
        if p[0] != 44:
            return NULL
        p = ws(p + 1, e)
    return NULL


# ------------------------------------------------------------------------------------- book
# One side of the book: its levels in ascending key order (bids: px, asks: -px; the best level is
# the last), kept in blocks of at most BLK levels, so an insert or a delete moves at most BLK
# levels (a flat array of 5,000 levels moved ~40 KB per far-from-touch change).
cdef enum:
    BLK = 64


cdef struct Blk:
    double k[BLK]
    double q[BLK]
    Py_ssize_t n


cdef struct BookSide:
    Blk** b
    Py_ssize_t nb
    Py_ssize_t cap
    Py_ssize_t n


cdef struct Pos:
    Py_ssize_t bi  # block
    Py_ssize_t i   # index in the block (bi == nb: the end)


cdef inline Py_ssize_t block_bisect(Blk* blk, double x) noexcept nogil:
    """bisect_left in one block, branch-free (the comparisons are unpredictable)."""
    cdef Py_ssize_t base = 0, n = blk.n, half
    while n > 1:
        half = n >> 1
        base = base + half if blk.k[base + half - 1] < x else base
        n -= half
    if n == 1 and blk.k[base] < x:
        base += 1
    return base


cdef inline Pos locate(BookSide* s, double x) noexcept nogil:
    """bisect_left over the whole side: the first level whose key is not < x. Galloping from the
    best end: most changes are near the touch, which is the end of the side."""
    cdef Py_ssize_t lo, hi = s.nb, step = 1, mid
    cdef Blk* blk
    cdef Pos p
    # the first block whose last key >= x lies in [lo, hi)
    while True:
        mid = hi - step
        if mid < 0:
            lo = 0
            break
        blk = s.b[mid]
        if blk.k[blk.n - 1] < x:
            lo = mid + 1
            break
        hi = mid + 1
        step <<= 1
    hi = min(hi, s.nb)
    while lo < hi:
        mid = (lo + hi) >> 1
        blk = s.b[mid]
        if blk.k[blk.n - 1] < x:
            lo = mid + 1
        else:
            hi = mid
    p.bi = lo
    p.i = 0
    if lo < s.nb:
        p.i = block_bisect(s.b[lo], x)
    return p


cdef int side_add_block(BookSide* s, Py_ssize_t at) except -1:
    cdef Blk** nb
    cdef Blk* blk
    if s.nb == s.cap:
        s.cap = 16 if s.cap == 0 else s.cap * 2
        nb = <Blk**>realloc(s.b, s.cap * sizeof(Blk*))
        if nb == NULL:
            raise MemoryError()
        s.b = nb
    blk = <Blk*>malloc(sizeof(Blk))
    if blk == NULL:
        raise MemoryError()
    blk.n = 0
    memmove(&s.b[at + 1], &s.b[at], (s.nb - at) * sizeof(Blk*))
    s.b[at] = blk
    s.nb += 1
    return 0


cdef void side_clear(BookSide* s) noexcept:
    cdef Py_ssize_t j
    for j in range(s.nb):
        free(s.b[j])
    s.nb = 0
    s.n = 0


cdef void side_free(BookSide* s) noexcept:
    side_clear(s)
    free(s.b)
    s.b = NULL
    s.cap = 0


cdef inline int level(BookSide* s, double k, double qty, double thr, double* delta) except -1:
    """One level, as ``core.book._apply_bids`` does it (``delta``: change of the band sum)."""
    cdef Pos p
    cdef Blk* blk
    cdef Blk* nxt
    cdef bint found
    cdef double old
    cdef Py_ssize_t half
    if k - k != 0.0 or qty - qty != 0.0:
        raise ValueError("non-finite depth level")
    p = locate(s, k)
    found = p.bi < s.nb and s.b[p.bi].k[p.i] == k
    if qty == 0.0:
        if found:
            blk = s.b[p.bi]
            old = blk.q[p.i]
            memmove(&blk.k[p.i], &blk.k[p.i + 1], (blk.n - p.i - 1) * sizeof(double))
            memmove(&blk.q[p.i], &blk.q[p.i + 1], (blk.n - p.i - 1) * sizeof(double))
            blk.n -= 1
            s.n -= 1
            if blk.n == 0:
                free(blk)
                memmove(&s.b[p.bi], &s.b[p.bi + 1], (s.nb - p.bi - 1) * sizeof(Blk*))
                s.nb -= 1
            if k >= thr:
                delta[0] -= k * old
    elif not found:
        if s.nb == 0:
            side_add_block(s, 0)
            p.bi = 0
            p.i = 0
        elif p.bi == s.nb:  # beyond the last key: append to the last block
            p.bi = s.nb - 1
            p.i = s.b[p.bi].n
        blk = s.b[p.bi]
        if blk.n == BLK:  # split the full block in two halves
            side_add_block(s, p.bi + 1)
            blk = s.b[p.bi]
            nxt = s.b[p.bi + 1]
            half = BLK // 2
            memcpy(nxt.k, &blk.k[half], (BLK - half) * sizeof(double))
            memcpy(nxt.q, &blk.q[half], (BLK - half) * sizeof(double))
            nxt.n = BLK - half
            blk.n = half
            if p.i > half:
                p.bi += 1
                p.i -= half
                blk = nxt
        memmove(&blk.k[p.i + 1], &blk.k[p.i], (blk.n - p.i) * sizeof(double))
        memmove(&blk.q[p.i + 1], &blk.q[p.i], (blk.n - p.i) * sizeof(double))
        blk.k[p.i] = k
        blk.q[p.i] = qty
        blk.n += 1
        s.n += 1
        if k >= thr:
            delta[0] += k * qty
    else:
        blk = s.b[p.bi]
        old = blk.q[p.i]
        blk.q[p.i] = qty
        if k >= thr:
            delta[0] += k * (qty - old)
    return 0


cdef inline double range_sum(BookSide* s, Pos a, Pos b) noexcept nogil:
    """Σ key*qty from position a (included) to b (excluded), in key order, from 0.0."""
    cdef double t = 0.0
    cdef Py_ssize_t bi = a.bi, i = a.i, stop
    cdef Blk* blk
    while bi < b.bi or (bi == b.bi and i < b.i):
        blk = s.b[bi]
        stop = b.i if bi == b.bi else blk.n
        while i < stop:
            t += blk.k[i] * blk.q[i]
            i += 1
        bi += 1
        i = 0
    return t


cdef inline Pos end_pos(BookSide* s) noexcept nogil:
    cdef Pos p
    p.bi = s.nb
    p.i = 0
    return p


cdef inline double band_sum(BookSide* s, double thr) noexcept nogil:
    return range_sum(s, locate(s, thr), end_pos(s))


cdef inline double band_shift(BookSide* s, double old, double new) noexcept nogil:
    if new > old:
        return -range_sum(s, locate(s, old), locate(s, new))
    return range_sum(s, locate(s, new), locate(s, old))


cdef inline double best_k(BookSide* s) noexcept nogil:
    cdef Blk* blk = s.b[s.nb - 1]
    return blk.k[blk.n - 1]


cdef inline double best_q(BookSide* s) noexcept nogil:
    cdef Blk* blk = s.b[s.nb - 1]
    return blk.q[blk.n - 1]


cdef list side_levels(BookSide* s, object limit, double sign):
    """Levels best first (at most ``limit``), as ``(px, qty)``."""
    cdef list out = []
    cdef Py_ssize_t bi, i, left = s.n if limit is None else max(0, <Py_ssize_t>limit)
    bi = s.nb - 1
    while bi >= 0 and left > 0:
        i = s.b[bi].n - 1
        while i >= 0 and left > 0:
            out.append((sign * s.b[bi].k[i], s.b[bi].q[i]))
            i -= 1
            left -= 1
        bi -= 1
    return out


cdef double LO = 1 - 0.001
cdef double HI = 1 + 0.001
cdef int REFRESH_EVERY = 256


cdef class Book:
    """:class:`core.book.OrderBook` on sorted arrays (same API, same results bit for bit)."""

    cdef BookSide b
    cdef BookSide a
    cdef double _mid, _bthr, _athr, _bid_sum, _ask_sum
    cdef int _since

    def __cinit__(self):
        self.clear()

    def __dealloc__(self):
        side_free(&self.b)
        side_free(&self.a)

    cpdef clear(self):
        side_clear(&self.b)
        side_clear(&self.a)
        self._mid = NAN
        self._bthr = INFINITY
        self._athr = INFINITY
        self._bid_sum = 0.0
        self._ask_sum = 0.0
        self._since = 0

    def load(self, bids, asks):
        self.clear()
        self.apply(bids, asks)

    cdef double _side(self, BookSide* s, object levels, double sign, double thr) except? -1.0:
        cdef double delta = 0.0
        cdef Levels lv
        cdef Py_ssize_t i
        if type(levels) is Levels:
            lv = <Levels>levels
            for i in range(lv.n):
                level(s, sign * lv.v[2 * i], lv.v[2 * i + 1], thr, &delta)
        else:
            for p, q in levels:
                level(s, sign * float(p), float(q), thr, &delta)
        return delta

    def apply(self, bids, asks):
        self._bid_sum += self._side(&self.b, bids, 1.0, self._bthr)
        self._ask_sum += self._side(&self.a, asks, -1.0, self._athr)
        self._since += 1

    cdef void _refresh(self, double mid) noexcept:
        cdef double bthr = mid * LO
        cdef double athr = -(mid * HI)
        if self._since >= REFRESH_EVERY or self._mid != self._mid:
            self._bid_sum = band_sum(&self.b, bthr)
            self._ask_sum = band_sum(&self.a, athr)
            self._since = 0
        else:
            self._bid_sum += band_shift(&self.b, self._bthr, bthr)
            self._ask_sum += band_shift(&self.a, self._athr, athr)
        self._mid = mid
        self._bthr = bthr
        self._athr = athr

    def __len__(self):
        return self.b.n + self.a.n

    @property
    def bid_count(self):
        return self.b.n

    @property
    def ask_count(self):
        return self.a.n

    def best_bid(self):
        if self.b.n == 0:
            return None
        return best_k(&self.b), best_q(&self.b)

    def best_ask(self):
        if self.a.n == 0:
            return None
        return -best_k(&self.a), best_q(&self.a)

    def mid(self):
        if self.b.n == 0 or self.a.n == 0:
            return None
        return (best_k(&self.b) + -best_k(&self.a)) / 2

    def spread_bps(self):
        if self.b.n == 0 or self.a.n == 0:
            return None
        cdef double bid = best_k(&self.b), ask = -best_k(&self.a)
        cdef double mid = (bid + ask) / 2
        return (ask - bid) / mid * 1e4

    def depth_usd(self, double bps=10.0):
        m = self.mid()
        if m is None:
            return None
        cdef double mid = m, band = bps / 1e4
        return band_sum(&self.b, mid * (1 - band)), 0.0 - band_sum(&self.a, -(mid * (1 + band)))

    def bids(self, n=None):
        """Bid levels best first (at most ``n``)."""
        return side_levels(&self.b, n, 1.0)

    def asks(self, n=None):
        """Ask levels best first (at most ``n``)."""
        return side_levels(&self.a, n, -1.0)

    def top(self, str venue, str symbol, int64_t timestamp, int64_t update_id):
        if self.b.n == 0 or self.a.n == 0:
            return None
        cdef double bid = best_k(&self.b)
        cdef double nask = best_k(&self.a)
        cdef double ask = -nask
        cdef double mid = (bid + ask) / 2
        if mid != self._mid or self._since >= REFRESH_EVERY:
            self._refresh(mid)
        return BookTop(venue, symbol, timestamp, update_id, bid, best_q(&self.b), ask,
                       best_q(&self.a), (ask - bid) / mid * 1e4, self._bid_sum, 0.0 - self._ask_sum)


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


# ------------------------------------------------------------------------------------- frames
# keys of a Binance event payload the hot path reads
cdef enum:
    K_E_TYPE = 0   # "e"
    K_S = 1        # "s"
    K_U_LO = 2     # "u"
    K_U_HI = 3     # "U"
    K_PU = 4       # "pu"
    K_B_LO = 5     # "b"
    K_B_HI = 6     # "B"
    K_A_LO = 7     # "a"
    K_A_HI = 8     # "A"
    K_E = 9        # "E"
    K_T = 10       # "T"
    K_T_LO = 11    # "t"
    K_P = 12       # "p"
    K_Q = 13       # "q"
    K_M = 14       # "m"
    K_X = 15       # "X"
    NKEYS = 16

cdef enum:
    EV_BOOK_TICKER = 1
    EV_TRADE = 2
    EV_AGG_TRADE = 3
    EV_DEPTH = 4


cdef inline int key_id(uchar* s, Py_ssize_t n) noexcept nogil:
    cdef unsigned char c
    if n == 1:
        c = s[0]
        if c == 101: return K_E_TYPE
        if c == 115: return K_S
        if c == 117: return K_U_LO
        if c == 85: return K_U_HI
        if c == 98: return K_B_LO
        if c == 66: return K_B_HI
        if c == 97: return K_A_LO
        if c == 65: return K_A_HI
        if c == 69: return K_E
        if c == 84: return K_T
        if c == 116: return K_T_LO
        if c == 112: return K_P
        if c == 113: return K_Q
        if c == 109: return K_M
        if c == 88: return K_X
        return -1
    if n == 2 and s[0] == 112 and s[1] == 117:
        return K_PU
    return -1


cdef class FrameDecoder:
    """The hot frames of one :class:`~feeds.binance.codec.BinanceCodec` (bookTicker, trade, aggTrade,
    depthUpdate in combined-stream envelopes), counting on the codec's stats as the Python path does.

    :meth:`frame` returns the events, or ``None`` for a frame the Python path must handle.
    """

    cdef object codec
    cdef object stats
    cdef object symbols
    cdef object on_depth
    cdef public bint drop_book_ticker
    cdef public int64_t last_ns
    cdef public int64_t start_ns  # hft_block: lines received before this are skipped (counted)
    cdef public int64_t end_ns  # hft_block: a line received at or after this goes to Python
    cdef public int64_t skipped
    # hft_block routes events itself while nothing needs the caller (see feeds/feeder.py)
    cdef public object routes  # model class -> route(venue, event), or None: return every event
    cdef public object clock_now  # () -> event time (ms)
    cdef public object gate  # () -> True when the caller must get control now
    cdef public int64_t wake_ms  # the caller must get control once the event time reaches this
    cdef int64_t c_frames, c_decoded, c_ignored
    cdef bytes _sym_b
    cdef str _sym
    cdef uchar* v[NKEYS]
    cdef uchar* ve[NKEYS]
    cdef Levels lb, la
    cdef bint bad_levels
    # trade folding (see set_fold): primary-symbol trades straight into the bar builder
    cdef Bars fold_bars
    cdef str fold_symbol
    cdef object fold_last_event
    cdef object fold_flush
    cdef int64_t fold_n
    cdef double fold_px
    cdef object fold_advance  # routed folding: the event clock's advance(ts)
    cdef object fold_publish  # routed folding: publish(topic, trade)
    cdef object fold_topic
    cdef bint touched  # a routed fold happened in this frame (the clock moved)

    def __init__(self, codec):
        self.codec = codec
        self.stats = codec.stats
        self.symbols = codec.symbols
        self.on_depth = codec._depth_levels
        self.drop_book_ticker = False
        self._sym_b = b""
        self._sym = ""
        self.lb = Levels()
        self.la = Levels()
        self.start_ns = -(1 << 62)
        self.end_ns = 1 << 62

    def set_fold(self, bars, str symbol, last_event_ms, flush, advance=None, publish=None, topic=None):
        """Trades of ``symbol`` go straight into ``bars`` (compiled :class:`Bars`), doing what
        ``MarketPipeline._on_trade`` does: ``last_event_ms``, the counters via ``flush(n,
        last_price)`` before Python reads them; only closed bars come back. Silent (nobody listens
        to trades, no event clock), or routed (``advance``: the clock's, ``publish(topic, trade)``:
        the bus's; only while :meth:`hft_block` routes events and checks its gate after each
        frame). ``set_fold(None, "", None, None)`` stops it."""
        self.fold_bars = bars
        self.fold_symbol = symbol
        self.fold_last_event = last_event_ms
        self.fold_flush = flush
        self.fold_advance = advance
        self.fold_publish = publish
        self.fold_topic = topic

    cdef void flush(self) noexcept:
        st = self.stats
        if self.fold_n:
            try:
                self.fold_flush(self.fold_n, self.fold_px)
            except Exception:
                pass
            self.fold_n = 0
        try:
            if self.c_frames:
                st.frames += self.c_frames
            if self.c_decoded:
                st.decoded += self.c_decoded
            if self.c_ignored:
                st.ignored += self.c_ignored
        except Exception:
            pass
        self.c_frames = self.c_decoded = self.c_ignored = 0

    cdef str symbol(self, uchar* s, Py_ssize_t n):
        cdef str sym
        if n == len(self._sym_b) and memcmp(PyBytes_AS_STRING(self._sym_b), s, n) == 0:
            return self._sym
        sym = PyUnicode_DecodeASCII(<const char*>s, n, NULL)
        self._sym_b = PyBytes_FromStringAndSize(<const char*>s, n)
        self._sym = sym
        return sym

    cdef uchar* payload(self, uchar* p, uchar* e) noexcept:
        """The ``data`` object at ``p``: record where each known key's value starts and ends (values
        validated), parsing ``b``/``a`` arrays straight into levels; its end, or NULL."""
        cdef uchar* ks
        cdef Py_ssize_t kn
        cdef int i
        p = ws(p + 1, e)
        if p < e and p[0] == 125:
            return NULL
        while p < e:
            p = parse_str(p, e, &ks, &kn)
            if p == NULL:
                return NULL
            p = ws(p, e)
            if p >= e or p[0] != 58:
                return NULL
            p = ws(p + 1, e)
            i = key_id(ks, kn)
            if i >= 0:
                if self.v[i] != NULL:
                    return NULL  # a duplicate key: the Python path decides
                self.v[i] = p
            if (i == K_B_LO or i == K_A_LO) and p < e and p[0] == 91:
                lv = self.lb if i == K_B_LO else self.la
                lv.n = 0
                try:
                    p = parse_levels(p, e, lv)
                except MemoryError:
                    return NULL
                if p == NULL:  # valid JSON perhaps, but not canonical levels: never for depth
                    self.bad_levels = True
                    p = skip_value(self.v[i], e, 1)
            else:
                p = skip_value(p, e, 1)
            if p == NULL:
                return NULL
            if i >= 0:
                self.ve[i] = p
            p = ws(p, e)
            if p >= e:
                return NULL
            if p[0] == 125:
                return p + 1
            if p[0] != 44:
                return NULL
            p = ws(p + 1, e)
        return NULL

    cdef int envelope(self, uchar* p, uchar* e) noexcept:
        """Parse ``{"stream": .., "data": {..}}`` (one pass); the event kind, or 0."""
        cdef uchar* ks
        cdef Py_ssize_t kn
        cdef bint seen = False
        cdef int i
        for i in range(NKEYS):
            self.v[i] = NULL
        self.bad_levels = False
        p = ws(p, e)
        if p >= e or p[0] != 123:
            return 0
        p = ws(p + 1, e)
        while True:
            p = parse_str(p, e, &ks, &kn)
            if p == NULL:
                return 0
            p = ws(p, e)
            if p >= e or p[0] != 58:
                return 0
            p = ws(p + 1, e)
            if kn == 4 and memcmp(ks, b"data", 4) == 0:
                if seen or p >= e or p[0] != 123:
                    return 0
                seen = True
                p = self.payload(p, e)
            else:
                p = skip_value(p, e, 0)
            if p == NULL:
                return 0
            p = ws(p, e)
            if p >= e:
                return 0
            if p[0] == 125:
                break
            if p[0] != 44:
                return 0
            p = ws(p + 1, e)
        if not seen or ws(p + 1, e) != e or self.v[K_E_TYPE] == NULL:
            return 0
        ks = self.v[K_E_TYPE]
        kn = self.ve[K_E_TYPE] - ks
        if kn == 12 and memcmp(ks, b'"bookTicker"', 12) == 0:
            return EV_BOOK_TICKER
        if kn == 7 and memcmp(ks, b'"trade"', 7) == 0:
            return EV_TRADE
        if kn == 10 and memcmp(ks, b'"aggTrade"', 10) == 0:
            return EV_AGG_TRADE
        if kn == 13 and memcmp(ks, b'"depthUpdate"', 13) == 0:
            return EV_DEPTH
        return 0

    cdef inline bint has_int(self, int k, int64_t* out, int64_t dflt) noexcept:
        """Optional int field: absent -> ``dflt``; present -> must be a plain integer."""
        if self.v[k] == NULL:
            out[0] = dflt
            return True
        return parse_uint(self.v[k], self.ve[k], out) == self.ve[k]

    cdef inline bint get_int(self, int k, int64_t* out) noexcept:
        return self.v[k] != NULL and parse_uint(self.v[k], self.ve[k], out) == self.ve[k]

    cdef inline bint get_dec(self, int k, double* out) noexcept:
        return self.v[k] != NULL and parse_decstr(self.v[k], self.ve[k], out) == self.ve[k]

    cdef inline bint get_str(self, int k, uchar** s, Py_ssize_t* n) noexcept:
        return self.v[k] != NULL and parse_str(self.v[k], self.ve[k], s, n) == self.ve[k]

    cdef object decode(self, uchar* p, Py_ssize_t n, int64_t recv_ns):
        """One frame -> a list of events (counted), or None (not counted: the Python path's)."""
        cdef uchar* e = p + n
        cdef int kind = self.envelope(p, e)
        cdef uchar* ss
        cdef Py_ssize_t sn
        cdef int64_t U, u, pu, E, T, tid
        cdef double b, B, a, A
        cdef Levels lb
        cdef Levels la
        cdef uchar* xs
        cdef Py_ssize_t xn
        cdef bint m
        if kind == 0 or not self.get_str(K_S, &ss, &sn):
            return None
        if kind == EV_BOOK_TICKER:
            if not (self.get_int(K_U_LO, &u) and self.get_dec(K_B_LO, &b) and self.get_dec(K_B_HI, &B)
                    and self.get_dec(K_A_LO, &a) and self.get_dec(K_A_HI, &A) and self.has_int(K_E, &E, 0)
                    and self.has_int(K_T, &T, 0)):
                return None
            self.c_frames += 1
            if self.symbols is not None and self.symbol(ss, sn) not in self.symbols:
                self.c_ignored += 1
                return []
            self.c_decoded += 1
            if self.drop_book_ticker:
                return []
            return [BookTicker(VENUE, self.symbol(ss, sn), T or E, u, b, B, a, A)]
        if kind == EV_TRADE or kind == EV_AGG_TRADE:
            if not (self.get_int(K_T_LO if kind == EV_TRADE else K_A_LO, &tid) and self.get_dec(K_P, &b)
                    and self.get_dec(K_Q, &B) and self.get_int(K_T, &T) and self.has_int(K_E, &E, 0)):
                return None
            xs = self.v[K_M]
            if xs == NULL:
                return None
            if self.ve[K_M] - xs == 4 and memcmp(xs, b"true", 4) == 0:
                m = True
            elif self.ve[K_M] - xs == 5 and memcmp(xs, b"false", 5) == 0:
                m = False
            else:
                return None
            market = True
            if kind == EV_TRADE and self.v[K_X] != NULL:
                if not self.get_str(K_X, &xs, &xn):
                    return None
                market = xn == 6 and memcmp(xs, b"MARKET", 6) == 0
            self.c_frames += 1
            sym = self.symbol(ss, sn)
            if not market or (self.symbols is not None and sym not in self.symbols):
                self.c_ignored += 1
                return []
            self.c_decoded += 1
            if self.fold_bars is not None and sym == self.fold_symbol:
                self.fold_last_event["binance"] = T
                self.fold_n += 1
                if self.fold_advance is not None:
                    self.fold_advance(T)
                    self.touched = True
                    xs = self.v[K_T_LO if kind == EV_TRADE else K_A_LO]
                    self.fold_publish(self.fold_topic, Trade(
                        VENUE, sym, T, b, B, _SELL if m else _BUY,
                        PyUnicode_DecodeASCII(<const char*>xs, self.ve[K_T_LO if kind == EV_TRADE else K_A_LO] - xs,
                                              NULL), recv_ns))
                self.fold_px = b
                closed = self.fold_bars.add_c(T, b, B, m)
                return [] if closed is None else [closed]
            xs = self.v[K_T_LO if kind == EV_TRADE else K_A_LO]
            return [Trade(VENUE, sym, T, b, B, _SELL if m else _BUY,
                          PyUnicode_DecodeASCII(<const char*>xs, self.ve[K_T_LO if kind == EV_TRADE else K_A_LO] - xs,
                                                NULL), recv_ns)]
        # depthUpdate
        if not (self.get_int(K_U_HI, &U) and self.get_int(K_U_LO, &u) and self.get_int(K_PU, &pu)
                and self.has_int(K_E, &E, 0) and self.has_int(K_T, &T, 0)):
            return None
        if (self.bad_levels or self.v[K_B_LO] == NULL or self.v[K_A_LO] == NULL
                or self.v[K_B_LO][0] != 91 or self.v[K_A_LO][0] != 91):
            return None
        lb, la = self.lb, self.la  # handed over (a sync may buffer them): fresh ones for the next frame
        self.lb = Levels()
        self.la = Levels()
        self.c_frames += 1
        self.flush()  # the book sync may count on the same stats
        return self.on_depth(self.symbol(ss, sn), U, u, pu, T or E, lb, la)

    def frame(self, raw, int64_t recv_ns):
        """One websocket frame (``bytes`` or ``str``): its events, or ``None`` for the Python path."""
        cdef bytes b
        if type(raw) is bytes:
            b = <bytes>raw
        elif type(raw) is str:
            try:
                b = (<str>raw).encode("ascii")
            except UnicodeEncodeError:
                return None
        else:
            return None
        out = self.decode(<uchar*>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), recv_ns)
        self.flush()
        return out

    def hft_block(self, bytes buf, Py_ssize_t pos, bint every):
        """Feed hftbacktest lines ``<ns> <frame>\\n`` of ``buf`` from ``pos``.

        Returns ``(pos, lines, out)``: ``lines`` canonical frame lines were fed (lines received before
        ``start_ns`` are consumed and counted in ``skipped``; one at or after ``end_ns`` stops the
        scan for the Python path); ``out`` is the
        events of the last one when it produced some (or always with ``every``), ``None`` when the
        block is done (``pos == len(buf)``) or the line at ``pos`` is for the Python path. With
        :attr:`routes` set, events are routed here and the scan goes on until the event time reaches
        :attr:`wake_ms` or :attr:`gate` says so; then ``out`` is ``()`` (routed already).
        """
        cdef uchar* base = <uchar*>PyBytes_AS_STRING(buf)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(buf)
        cdef uchar* p
        cdef uchar* e
        cdef uchar* nl
        cdef uchar* q
        cdef int64_t ns
        cdef Py_ssize_t lines = 0, nxt
        while pos < size:
            p = base + pos
            nl = <uchar*>memchr(p, 10, size - pos)
            if nl == NULL:
                e = base + size
                nxt = size
            else:
                e = nl
                nxt = nl - base + 1
            if e > p and (e - 1)[0] == 13:
                e -= 1
            # "<digits> {"stream"..."
            q = p
            ns = 0
            while q < e and 48 <= q[0] <= 57 and q - p < 19:
                ns = ns * 10 + (q[0] - 48)
                q += 1
            if q == p or q >= e or q[0] != 32 or e - q < 10 or memcmp(q + 1, b'{"stream"', 9) != 0:
                break
            if ns < self.start_ns:  # before the range: read, not fed
                self.skipped += 1
                pos = nxt
                continue
            if ns >= self.end_ns:
                break
            self.touched = False
            out = self.decode(q + 1, e - q - 1, ns)
            if out is None:
                break
            lines += 1
            pos = nxt
            self.last_ns = ns
            if every:
                self.flush()
                return pos, lines, out
            if out or self.touched:
                if self.routes is None:
                    self.flush()
                    return pos, lines, out
                routes = self.routes
                for ev in out:
                    routes[type(ev)]("binance", ev)
                if self.clock_now() >= self.wake_ms or self.gate():
                    self.flush()
                    return pos, lines, ()
        self.flush()
        return pos, lines, None
