# The compiled local book: sorted blocks of levels, OrderBook's arithmetic.
# Included by _fast.pyx (one extension module); cimports and constants are there.

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
