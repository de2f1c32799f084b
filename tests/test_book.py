"""core.book: OrderBook against a naive reference, and the Binance book-sync state machine."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from core.book import BinanceBookSync, OrderBook, SyncState
from core.models import BookTop, DepthDiff, DepthSnapshot, ResyncNeeded

Lv = list[tuple[str, str]]


# --- naive reference ---------------------------------------------------------------------------


class RefBook:
    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def apply(self, bids: Lv, asks: Lv) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q in levels:
                if float(q) == 0:
                    side.pop(float(p), None)
                else:
                    side[float(p)] = float(q)

    def top(self) -> tuple[float, float, float, float, float, float, float] | None:
        if not self.bids or not self.asks:
            return None
        bid = max(self.bids)
        ask = min(self.asks)
        mid = (bid + ask) / 2
        spread = (ask - bid) / mid * 1e4
        bid_usd = sum(p * q for p, q in self.bids.items() if p >= mid * (1 - 0.001))
        ask_usd = sum(p * q for p, q in self.asks.items() if p <= mid * (1 + 0.001))
        return bid, self.bids[bid], ask, self.asks[ask], spread, bid_usd, ask_usd


def assert_matches(top: BookTop | None, ref: RefBook) -> None:
    expected = ref.top()
    if expected is None:
        assert top is None
        return
    assert top is not None
    bid, bid_q, ask, ask_q, spread, bid_usd, ask_usd = expected
    assert (top.bid_px, top.bid_qty, top.ask_px, top.ask_qty) == (bid, bid_q, ask, ask_q)
    assert top.spread_bps == spread
    assert math.isclose(top.bid_usd, bid_usd, rel_tol=1e-9, abs_tol=1e-6), (top.bid_usd, bid_usd)
    assert math.isclose(top.ask_usd, ask_usd, rel_tol=1e-9, abs_tol=1e-6), (top.ask_usd, ask_usd)


def px(tick: int) -> str:
    return f"{1000 + tick / 10:.1f}"  # 10 bps of ~1000 is ~10 ticks: bands hold a varying number of levels


def qty(n: int) -> str:
    return f"{n / 1000:.3f}"


level = st.tuples(st.integers(-60, 60), st.integers(0, 5000) | st.just(0))
diff_st = st.tuples(st.lists(level, max_size=12), st.lists(level, max_size=12))


def to_levels(raw: list[tuple[int, int]], bid: bool) -> Lv:
    # bids mostly below 1000, asks mostly above, with overlap so crossings and empty sides happen
    return [(px(t - 20 if bid else t + 20), qty(n)) for t, n in raw]


@settings(max_examples=300, deadline=None)
@given(snapshot=diff_st, diffs=st.lists(diff_st, max_size=60))
def test_book_matches_naive_reference(
    snapshot: tuple[list[tuple[int, int]], list[tuple[int, int]]],
    diffs: list[tuple[list[tuple[int, int]], list[tuple[int, int]]]],
) -> None:
    book, ref = OrderBook(), RefBook()
    book.load(to_levels(snapshot[0], True), to_levels(snapshot[1], False))
    ref.apply(to_levels(snapshot[0], True), to_levels(snapshot[1], False))
    assert_matches(book.top("binance", "X", 0, 0), ref)
    for i, (b, a) in enumerate(diffs):
        bids, asks = to_levels(b, True), to_levels(a, False)
        book.apply(bids, asks)
        ref.apply(bids, asks)
        assert_matches(book.top("binance", "X", i, i), ref)
        fresh = book.depth_usd(10)
        expected = ref.top()
        if expected is not None and fresh is not None:
            assert math.isclose(fresh[0], expected[5], rel_tol=1e-9, abs_tol=1e-6)
            assert math.isclose(fresh[1], expected[6], rel_tol=1e-9, abs_tol=1e-6)


def test_long_random_walk_matches_reference() -> None:
    """Thousands of diffs around a drifting mid: exercises band shifts and the periodic refresh."""
    rng = random.Random(7)
    book, ref = OrderBook(), RefBook()
    center = 0
    for i in range(3000):
        center += rng.choice((-1, 0, 0, 1))
        bids = [(px(center - rng.randint(1, 40)), qty(rng.choice((0, 0, rng.randint(1, 9000)))))
                for _ in range(rng.randint(0, 15))]
        asks = [(px(center + rng.randint(0, 40)), qty(rng.choice((0, 0, rng.randint(1, 9000)))))
                for _ in range(rng.randint(0, 15))]
        book.apply(bids, asks)
        ref.apply(bids, asks)
        assert_matches(book.top("binance", "X", i, i), ref)


def test_queries() -> None:
    book = OrderBook()
    assert book.best_bid() is None and book.mid() is None and book.spread_bps() is None
    assert book.depth_usd() is None and book.top("binance", "X", 0, 0) is None
    book.load([("99.9", "1"), ("100.0", "2"), ("90", "5")], [("100.1", "3"), ("100.2", "0"), ("120", "1")])
    assert book.best_bid() == (100.0, 2.0)
    assert book.best_ask() == (100.1, 3.0)
    assert book.bids() == [(100.0, 2.0), (99.9, 1.0), (90.0, 5.0)]
    assert book.asks(1) == [(100.1, 3.0)]
    assert (book.bid_count, book.ask_count, len(book)) == (3, 2, 5)
    mid = (100.0 + 100.1) / 2
    assert book.spread_bps() == (100.1 - 100.0) / mid * 1e4
    top = book.top("binance", "X", 5, 6)
    assert top is not None
    assert top.bid_usd == 100.0 * 2  # mid 100.05: the band starts at 99.95, so 99.9 and 90 are outside
    assert top.ask_usd == 100.1 * 3
    book.apply([("100.0", "0.000")], [])
    assert book.best_bid() == (99.9, 1.0)


# --- Binance sync state machine ----------------------------------------------------------------


def diff(sync: BinanceBookSync, first: int, final: int, prev: int, bids: Lv | None = None,
         asks: Lv | None = None, ts: int = 0) -> list[object]:
    return list(sync.on_diff(first, final, prev, ts or final, bids or [], asks or []))


SNAP_BIDS = [("100.0", "1"), ("99.9", "2")]
SNAP_ASKS = [("100.1", "1"), ("100.2", "2")]


def test_buffers_until_snapshot_then_applies_in_order() -> None:
    sync = BinanceBookSync("SOLUSDT")
    out = diff(sync, 90, 95, 85, bids=[("100.0", "7")])  # entirely before the snapshot: dropped
    assert len(out) == 1 and isinstance(out[0], ResyncNeeded) and out[0].reason == "snapshot needed"
    assert diff(sync, 96, 105, 95, bids=[("99.9", "5")]) == []  # straddles lastUpdateId=100
    assert diff(sync, 106, 110, 105, asks=[("100.1", "0")]) == []
    assert sync.state is SyncState.AWAIT_SNAPSHOT and sync.resyncs == 1

    out = sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS)
    assert [type(e) for e in out] == [BookTop, BookTop]
    first, second = out
    assert isinstance(first, BookTop) and isinstance(second, BookTop)
    assert first.update_id == 105 and second.update_id == 110
    assert (first.bid_px, first.bid_qty, first.ask_px) == (100.0, 1.0, 100.1)  # the u=95 diff was dropped
    assert sync.book.bids() == [(100.0, 1.0), (99.9, 5.0)]
    assert (second.ask_px, second.ask_qty) == (100.2, 2.0)
    assert sync.synced and sync.last_update_id == 110 and sync.gaps == 0

    out = diff(sync, 111, 120, 110, bids=[("100.05", "3")], ts=12345)
    assert len(out) == 1 and isinstance(out[0], BookTop)
    assert (out[0].bid_px, out[0].timestamp, out[0].update_id) == (100.05, 12345, 120)


def test_gap_triggers_resync_and_recovers_after_new_snapshot() -> None:
    sync = BinanceBookSync("SOLUSDT")
    diff(sync, 99, 101, 98)
    sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS)
    assert sync.synced
    out = diff(sync, 110, 115, 108)  # pu 108 != last u 101
    assert len(out) == 1 and isinstance(out[0], ResyncNeeded) and "gap" in out[0].reason
    assert sync.gaps == 1 and sync.resyncs == 2 and sync.state is SyncState.AWAIT_SNAPSHOT
    assert len(sync.book) == 0
    assert diff(sync, 116, 120, 115, bids=[("100.0", "4")]) == []  # buffered, no second request
    assert sync.resyncs == 2

    out = sync.on_snapshot(117, [("100.0", "9"), ("99.0", "1")], [("101.0", "1")])
    assert len(out) == 1 and isinstance(out[0], BookTop)
    assert (out[0].bid_px, out[0].bid_qty, out[0].update_id) == (100.0, 4.0, 120)
    assert sync.synced
    assert isinstance(diff(sync, 121, 125, 120)[0], BookTop)
    assert sync.gaps == 1


def test_stale_snapshot_asks_for_another() -> None:
    sync = BinanceBookSync("SOLUSDT")
    diff(sync, 200, 210, 199)
    out = sync.on_snapshot(150, SNAP_BIDS, SNAP_ASKS)  # U=200 > lastUpdateId=150: cannot bridge
    assert len(out) == 1 and isinstance(out[0], ResyncNeeded) and "too old" in out[0].reason
    assert sync.state is SyncState.AWAIT_SNAPSHOT and sync.resyncs == 2
    out = sync.on_snapshot(205, SNAP_BIDS, SNAP_ASKS)  # the u=210 diff stayed buffered
    assert len(out) == 1 and isinstance(out[0], BookTop) and out[0].update_id == 210


def test_duplicates_ignored_and_older_snapshot_ignored_when_synced() -> None:
    sync = BinanceBookSync("SOLUSDT")
    sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS)
    assert diff(sync, 90, 99, 80) == []  # before the snapshot
    assert isinstance(diff(sync, 95, 105, 94)[0], BookTop)
    assert diff(sync, 95, 105, 94) == []  # replayed duplicate: no gap
    assert sync.gaps == 0 and sync.synced
    assert sync.on_snapshot(104, SNAP_BIDS, SNAP_ASKS) == []
    assert sync.synced and sync.last_update_id == 105


def test_malformed_level_resyncs_instead_of_raising() -> None:
    sync = BinanceBookSync("SOLUSDT")
    sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS)
    out = diff(sync, 99, 101, 98, bids=[("abc", "1")])
    assert len(out) == 1 and isinstance(out[0], ResyncNeeded)
    assert sync.malformed == 1 and sync.state is SyncState.AWAIT_SNAPSHOT


def test_core_model_adapters() -> None:
    sync = BinanceBookSync("SOLUSDT")
    assert sync.on_depth_snapshot(DepthSnapshot("SOLUSDT", 10, 0, [(100.0, 1.0)], [(101.0, 2.0)])) == []
    out = sync.on_depth_diff(DepthDiff("SOLUSDT", 777, 9, 12, 8, [(100.5, 3.0)], []))
    assert len(out) == 1 and isinstance(out[0], BookTop)
    assert (out[0].bid_px, out[0].timestamp, out[0].update_id) == (100.5, 777, 12)


def test_reset_clears_and_requests_snapshot() -> None:
    sync = BinanceBookSync("SOLUSDT")
    sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS)
    ev = sync.reset("reconnect")
    assert ev.reason == "reconnect" and len(sync.book) == 0 and sync.awaiting_snapshot
