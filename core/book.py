"""Local L2 order book and the Binance USDⓈ-M futures book-sync state machine (pure, no I/O).

:class:`OrderBook` keeps, per side, a ``dict`` key→qty and an ascending ``list`` of keys maintained
incrementally with :mod:`bisect`. Bids are keyed by ``px`` and asks by ``-px``, so on both sides the
best level is the *last* element (inserts and deletes near the touch move few pointers) and "inside
the 10 bps band" is ``key >= threshold`` on both sides. The USD depth within the band is kept as a
running sum: an applied level inside the current band adjusts it, and when mid moves only the levels
between the old and the new band edge are added or removed (``bisect`` + a C-level ``sum``). The sums
are recomputed from scratch every ``_REFRESH_EVERY`` diffs so float drift cannot accumulate; they
match a fresh Σ px*qty to ~1e-12 relative, not bit for bit.

Definitions (ARCHITECTURE.md, ``book`` contract): ``mid = (bid_px + ask_px)/2``,
``spread_bps = (ask_px - bid_px)/mid*1e4``, ``bid_usd = Σ px*qty`` over bid levels with
``px >= mid*(1-0.001)``, ``ask_usd = Σ px*qty`` over ask levels with ``px <= mid*(1+0.001)``.

:class:`BinanceBookSync` implements Binance's documented futures procedure ("How to manage a local
order book correctly"): buffer diffs and ask for a snapshot; on the snapshot drop buffered diffs
with ``u < lastUpdateId``; the first applied diff must satisfy ``U <= lastUpdateId <= u``; after
that every diff's ``pu`` must equal the previous diff's ``u``, otherwise the book is dropped, a gap
is counted, :class:`~core.models.ResyncNeeded` is emitted and diffs are buffered again until a new
snapshot arrives.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Sequence
from enum import StrEnum
from functools import reduce
from operator import add, mul
from typing import Final, Protocol

from core.models import BookTop, DepthDiff, DepthSnapshot, MarketEvent, ResyncNeeded

Level = tuple[str, str] | tuple[float, float]
"""One ``(price, qty)`` level; wire strings or floats (``float()`` accepts both)."""
Levels = Sequence[Level]


class BookImpl(Protocol):
    """What :class:`BinanceBookSync` needs of a book: :class:`OrderBook`, or the compiled one
    (``feeds/binance/_fast.pyx``) that gives the same results bit for bit."""

    def clear(self) -> None: ...

    def load(self, bids: Levels, asks: Levels) -> None: ...

    def apply(self, bids: Levels, asks: Levels) -> None: ...

    def top(self, venue: str, symbol: str, timestamp: int, update_id: int) -> BookTop | None: ...


BAND: Final = 0.001  # 10 bps
_LO: Final = 1 - BAND
_HI: Final = 1 + BAND
_REFRESH_EVERY: Final = 256


def _apply_bids(levels: Iterable[Level], qmap: dict[float, float], keys: list[float], thr: float) -> float:
    """Apply bid levels (key = px); return the change of the band sum Σ key*qty over key >= thr."""
    delta = 0.0
    get = qmap.get
    for p, q in levels:
        k = float(p)
        qty = float(q)
        if k - k or qty - qty:  # nan or inf: never a level (the compiled book agrees)
            raise ValueError(f"non-finite depth level {p!r} {q!r}")
        old = get(k)
        if qty == 0.0:
            if old is not None:
                del qmap[k]
                del keys[bisect_left(keys, k)]
                if k >= thr:
                    delta -= k * old
        elif old is None:
            qmap[k] = qty
            insort(keys, k)
            if k >= thr:
                delta += k * qty
        else:
            qmap[k] = qty
            if k >= thr:
                delta += k * (qty - old)
    return delta


def _apply_asks(levels: Iterable[Level], qmap: dict[float, float], keys: list[float], thr: float) -> float:
    """Same as :func:`_apply_bids` with key = -px (kept as a copy: this is the hot loop)."""
    delta = 0.0
    get = qmap.get
    for p, q in levels:
        k = -float(p)
        qty = float(q)
        if k - k or qty - qty:  # nan or inf: never a level (the compiled book agrees)
            raise ValueError(f"non-finite depth level {p!r} {q!r}")
        old = get(k)
        if qty == 0.0:
            if old is not None:
                del qmap[k]
                del keys[bisect_left(keys, k)]
                if k >= thr:
                    delta -= k * old
        elif old is None:
            qmap[k] = qty
            insort(keys, k)
            if k >= thr:
                delta += k * qty
        else:
            qmap[k] = qty
            if k >= thr:
                delta += k * (qty - old)
    return delta


def _psum(keys: list[float], qmap: dict[float, float]) -> float:
    """Σ key*qty in key order, plain left-to-right additions from 0.0 (as the compiled book does;
    ``sum()`` would compensate the rounding on Python 3.12+)."""
    return reduce(add, map(mul, keys, map(qmap.__getitem__, keys)), 0.0)


def _band_sum(qmap: dict[float, float], keys: list[float], thr: float) -> float:
    return _psum(keys[bisect_left(keys, thr):], qmap)


def _band_shift(qmap: dict[float, float], keys: list[float], old: float, new: float) -> float:
    """Change of the band sum when its threshold moves from ``old`` to ``new``."""
    if new > old:
        return -_psum(keys[bisect_left(keys, old):bisect_left(keys, new)], qmap)
    return _psum(keys[bisect_left(keys, new):bisect_left(keys, old)], qmap)


class OrderBook:
    """Price→qty per side with best bid/ask, spread and USD depth within 10 bps of mid."""

    __slots__ = ("_ak", "_aq", "_ask_sum", "_athr", "_bid_sum", "_bk", "_bq", "_bthr", "_mid", "_since")

    def __init__(self) -> None:
        self._bq: dict[float, float] = {}
        self._bk: list[float] = []
        self._aq: dict[float, float] = {}  # keyed by -px
        self._ak: list[float] = []  # ascending -px: best ask last
        self.clear()

    def clear(self) -> None:
        self._bq.clear()
        self._bk.clear()
        self._aq.clear()
        self._ak.clear()
        self._mid = float("nan")
        self._bthr = float("inf")  # nothing is inside an undefined band
        self._athr = float("inf")
        self._bid_sum = 0.0
        self._ask_sum = 0.0
        self._since = 0

    def load(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book with a snapshot (zero quantities are skipped)."""
        self.clear()
        self.apply(bids, asks)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Apply one diff: absolute quantities per level, ``0`` removes the level."""
        self._bid_sum += _apply_bids(bids, self._bq, self._bk, self._bthr)
        self._ask_sum += _apply_asks(asks, self._aq, self._ak, self._athr)
        self._since += 1

    def _refresh(self, mid: float) -> None:
        """Move the band to ``mid``: shift the running sums, or recompute them every so often."""
        bthr = mid * _LO
        athr = -(mid * _HI)
        if self._since >= _REFRESH_EVERY or self._mid != self._mid:  # periodic, or no band yet (nan)
            self._bid_sum = _band_sum(self._bq, self._bk, bthr)
            self._ask_sum = _band_sum(self._aq, self._ak, athr)
            self._since = 0
        else:
            self._bid_sum += _band_shift(self._bq, self._bk, self._bthr, bthr)
            self._ask_sum += _band_shift(self._aq, self._ak, self._athr, athr)
        self._mid = mid
        self._bthr = bthr
        self._athr = athr

    # --- queries -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._bk) + len(self._ak)

    @property
    def bid_count(self) -> int:
        return len(self._bk)

    @property
    def ask_count(self) -> int:
        return len(self._ak)

    def best_bid(self) -> tuple[float, float] | None:
        if not self._bk:
            return None
        k = self._bk[-1]
        return k, self._bq[k]

    def best_ask(self) -> tuple[float, float] | None:
        if not self._ak:
            return None
        k = self._ak[-1]
        return -k, self._aq[k]

    def mid(self) -> float | None:
        if not self._bk or not self._ak:
            return None
        return (self._bk[-1] + -self._ak[-1]) / 2

    def spread_bps(self) -> float | None:
        if not self._bk or not self._ak:
            return None
        bid, ask = self._bk[-1], -self._ak[-1]
        mid = (bid + ask) / 2
        return (ask - bid) / mid * 1e4

    def depth_usd(self, bps: float = 10.0) -> tuple[float, float] | None:
        """``(bid_usd, ask_usd)`` within ``bps`` of mid, computed from scratch."""
        mid = self.mid()
        if mid is None:
            return None
        band = bps / 1e4
        bid = _band_sum(self._bq, self._bk, mid * (1 - band))
        ask = 0.0 - _band_sum(self._aq, self._ak, -(mid * (1 + band)))
        return bid, ask

    def bids(self, n: int | None = None) -> list[tuple[float, float]]:
        """Bid levels best first (at most ``n``)."""
        keys = self._bk[::-1] if n is None else self._bk[: -n - 1 : -1]
        return [(k, self._bq[k]) for k in keys]

    def asks(self, n: int | None = None) -> list[tuple[float, float]]:
        """Ask levels best first (at most ``n``)."""
        keys = self._ak[::-1] if n is None else self._ak[: -n - 1 : -1]
        return [(-k, self._aq[k]) for k in keys]

    def top(self, venue: str, symbol: str, timestamp: int, update_id: int) -> BookTop | None:
        """Top of book and 10 bps depth; ``None`` while a side is empty."""
        bk = self._bk
        ak = self._ak
        if not bk or not ak:
            return None
        bid = bk[-1]
        nask = ak[-1]
        ask = -nask
        mid = (bid + ask) / 2
        if mid != self._mid or self._since >= _REFRESH_EVERY:
            self._refresh(mid)
        return BookTop(
            venue, symbol, timestamp, update_id, bid, self._bq[bid], ask, self._aq[nask],
            (ask - bid) / mid * 1e4, self._bid_sum, 0.0 - self._ask_sum,
        )


class SyncState(StrEnum):
    AWAIT_SNAPSHOT = "await_snapshot"  # buffering diffs until a snapshot arrives
    AWAIT_FIRST = "await_first"  # snapshot loaded, waiting for the diff with U <= lastUpdateId <= u
    SYNCED = "synced"


_Buffered = tuple[int, int, int, int, Levels, Levels]  # U, u, pu, ts, bids, asks


class BinanceBookSync:
    """Binance futures local-book state machine for one symbol.

    ``on_diff`` / ``on_snapshot`` return the events to publish: one :class:`BookTop` per applied
    diff (none while a side is empty) and :class:`ResyncNeeded` when a (new) snapshot is needed.
    Counters: ``gaps`` (``pu`` mismatches), ``resyncs`` (ResyncNeeded emitted, the initial request
    included), ``malformed`` (diffs whose levels failed to parse; the book is dropped and resynced),
    ``crossed`` (diffs after which the best bid was not below the best ask: that top is still
    returned, so the guards see it, then the book is dropped and resynced).
    """

    def __init__(self, symbol: str, venue: str = "binance", max_buffer: int = 10_000,
                 book: BookImpl | None = None) -> None:
        self.symbol = symbol
        self.venue = venue
        self.book: BookImpl = book if book is not None else OrderBook()
        self.state = SyncState.AWAIT_SNAPSHOT
        self.last_update_id = 0  # snapshot's lastUpdateId, then the last applied diff's u
        self.gaps = 0
        self.resyncs = 0
        self.malformed = 0
        self.crossed = 0
        self.applied = 0
        self._requested = False
        self._buffer: deque[_Buffered] = deque(maxlen=max_buffer)

    @property
    def synced(self) -> bool:
        return self.state is SyncState.SYNCED

    @property
    def awaiting_snapshot(self) -> bool:
        return self.state is SyncState.AWAIT_SNAPSHOT

    def _resync(self, reason: str) -> ResyncNeeded:
        self.book.clear()
        self.state = SyncState.AWAIT_SNAPSHOT
        self._requested = True
        self.resyncs += 1
        return ResyncNeeded(self.venue, self.symbol, reason)

    def reset(self, reason: str = "reset") -> ResyncNeeded:
        """Drop the book and buffer (e.g. after a reconnect) and ask for a new snapshot."""
        self._buffer.clear()
        return self._resync(reason)

    def invalidate(self, reason: str) -> list[MarketEvent]:
        """A diff of this book was lost (a garbage frame): drop the book now rather than keep
        serving it until the next diff shows the gap. One request per outage: nothing while a
        snapshot is already awaited."""
        if self.state is SyncState.AWAIT_SNAPSHOT and self._requested:
            return []
        return [self.reset(reason)]

    def on_diff(self, first_id: int, final_id: int, prev_final_id: int, timestamp: int,
                bids: Levels, asks: Levels) -> list[MarketEvent]:
        """Feed one ``depthUpdate`` (``U``, ``u``, ``pu``, ``T`` or ``E``, ``b``, ``a``)."""
        state = self.state
        if state is SyncState.SYNCED:
            if prev_final_id != self.last_update_id:
                if final_id <= self.last_update_id:
                    return []  # an old/duplicate diff: already applied
                self.gaps += 1
                ev = self._resync(f"gap: pu={prev_final_id} != last u={self.last_update_id}")
                self._buffer.append((first_id, final_id, prev_final_id, timestamp, bids, asks))
                return [ev]
            return self._apply(final_id, timestamp, bids, asks)
        if state is SyncState.AWAIT_SNAPSHOT:
            self._buffer.append((first_id, final_id, prev_final_id, timestamp, bids, asks))
            if self._requested:
                return []
            self._requested = True
            self.resyncs += 1
            return [ResyncNeeded(self.venue, self.symbol, "snapshot needed")]
        # AWAIT_FIRST
        last = self.last_update_id
        if final_id < last:
            return []
        if first_id <= last:
            self.state = SyncState.SYNCED
            return self._apply(final_id, timestamp, bids, asks)
        ev = self._resync(f"snapshot too old: lastUpdateId={last} < U={first_id}")
        self._buffer.append((first_id, final_id, prev_final_id, timestamp, bids, asks))
        return [ev]

    def _apply(self, final_id: int, timestamp: int, bids: Levels, asks: Levels) -> list[MarketEvent]:
        book = self.book
        try:
            book.apply(bids, asks)
        except (ValueError, TypeError) as exc:
            self.malformed += 1
            self._buffer.clear()
            return [self._resync(f"malformed diff: {exc}")]
        self.last_update_id = final_id
        self.applied += 1
        top = book.top(self.venue, self.symbol, timestamp, final_id)
        if top is None:
            return []
        if top.bid_px < top.ask_px:
            return [top]
        # crossed or locked: a level was missed or is garbage. Publish the top (the guards block on
        # it until a sane one follows) and take a new snapshot.
        self.crossed += 1
        self._buffer.clear()
        return [top, self._resync(f"book crossed: best bid {top.bid_px:.6g} >= best ask {top.ask_px:.6g}")]

    def on_snapshot(self, last_update_id: int, bids: Levels, asks: Levels) -> list[MarketEvent]:
        """Feed a REST ``/fapi/v1/depth`` snapshot; replays the buffered diffs that follow it."""
        if self.state is SyncState.SYNCED and last_update_id <= self.last_update_id:
            return []  # older than what we already have
        try:
            self.book.load(bids, asks)
        except (ValueError, TypeError) as exc:
            self.malformed += 1
            return [self._resync(f"malformed snapshot: {exc}")]
        self.state = SyncState.AWAIT_FIRST
        self.last_update_id = last_update_id
        self._requested = False
        buffered = [d for d in self._buffer if d[1] >= last_update_id]
        self._buffer.clear()
        out: list[MarketEvent] = []
        for first_id, final_id, prev_id, ts, b, a in buffered:
            out.extend(self.on_diff(first_id, final_id, prev_id, ts, b, a))
        return out

    # --- core.models adapters --------------------------------------------------------------------

    def on_depth_diff(self, diff: DepthDiff) -> list[MarketEvent]:
        return self.on_diff(diff.first_id, diff.final_id, diff.prev_final_id, diff.timestamp,
                            diff.bids, diff.asks)

    def on_depth_snapshot(self, snap: DepthSnapshot) -> list[MarketEvent]:
        return self.on_snapshot(snap.last_update_id, snap.bids, snap.asks)
