# Canonical-JSON scanning and exact decimal parsing for the compiled Binance path.
# Included by _fast.pyx (one extension module); cimports and constants are there.

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
        if p == NULL or px == 0.0:  # a price must be > 0 (core.sanity.SaneLevel): the Python path decides
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
