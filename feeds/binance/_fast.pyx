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


include "_json.pxi"
include "_book.pxi"
include "_bars.pxi"

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
    cdef object fold_sanity  # core.sanity.MarketSanity: only trades its fast check accepts are folded
    cdef public object last_frame_ns  # hft_block routing: the pipeline's stats.last_frame_ns
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

    def set_fold(self, bars, str symbol, last_event_ms, flush, advance=None, publish=None, topic=None,
                 sanity=None):
        """Trades of ``symbol`` go straight into ``bars`` (compiled :class:`Bars`), doing what
        ``MarketPipeline._on_trade`` does: ``last_event_ms``, the counters via ``flush(n,
        last_price)`` before Python reads them; only closed bars come back. Silent (nobody listens
        to trades, no event clock), or routed (``advance``: the clock's, ``publish(topic, trade)``:
        the bus's; only while :meth:`hft_block` routes events and checks its gate after each
        frame). Only trades that pass ``sanity``'s fast check (``lo < price < hi``, ``ts <=
        ref_until``, ``0 < qty < inf``, as ``_on_trade``) are folded; the others take the Python
        path. ``set_fold(None, "", None, None)`` stops it."""
        self.fold_bars = bars
        self.fold_symbol = symbol
        self.fold_last_event = last_event_ms
        self.fold_flush = flush
        self.fold_advance = advance
        self.fold_publish = publish
        self.fold_topic = topic
        self.fold_sanity = sanity

    cdef bint fold_sane(self, double px, double qty, int64_t ts) except -1:
        """``MarketPipeline._on_trade``'s fast acceptance test; False: the Python path decides."""
        san = self.fold_sanity
        if san is None:
            return False
        cdef double lo = san.lo, hi = san.hi, until = san.ref_until
        return lo < px < hi and <double>ts <= until and 0.0 < qty < INFINITY

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
        cdef uchar* ss = NULL
        cdef Py_ssize_t sn = 0
        cdef int64_t U, u, pu, E, T, tid
        cdef double b, B, a, A
        cdef Levels lb
        cdef Levels la
        cdef uchar* xs
        cdef Py_ssize_t xn = 0
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
            if (self.fold_bars is not None and sym == self.fold_symbol
                    and self.fold_sane(b, B, T)):
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
                if out:
                    self.last_frame_ns["binance"] = ns  # the pipeline's burst logging reads it
                for ev in out:
                    routes[type(ev)]("binance", ev)
                if self.clock_now() >= self.wake_ms or self.gate():
                    self.flush()
                    return pos, lines, ()
        self.flush()
        return pos, lines, None
