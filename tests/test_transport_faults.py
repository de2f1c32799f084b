"""Fault injection against local fake venues (127.0.0.1 only): every feed recovers, the book
matches the bookTicker frames again, status goes stale/down and back to live, counters tell."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

import pytest

from feeds.transport.fakes import FakeExchange
from tests.transport_harness import Harness, fast_options, start_fake

WS = ["binance.public", "binance.market", "bybit.linear", "okx.public"]


@pytest.fixture
async def fx() -> AsyncIterator[FakeExchange]:
    fake = await start_fake()
    try:
        yield fake
    finally:
        await fake.stop()


def codec(h: Harness, venue: str) -> dict[str, int]:
    st = h.pipeline.codecs[venue].stats
    return {"malformed": st.malformed, "gaps": st.gaps, "resyncs": st.resyncs, "errors": st.errors}


async def test_all_feeds_live_and_book_matches_book_ticker(fx: FakeExchange) -> None:
    async with Harness(fx) as h:
        await h.wait_live([*WS, "binance.rest", "bybit.rest", "okx.rest"])
        await h.wait_matches(20)
        assert h.book.mismatches == []
        # subscriptions were acked, instruments/OI/funding fetched, exactly one snapshot
        assert fx.requests["okx.instruments"] >= 1 and fx.requests["bybit.instruments-info"] >= 1
        await h.wait_for(lambda: h.bus.published.get("market:solusdt:open_interest", 0) > 0, what="OI")
        assert h.feeds.snapshots_fetched == 1
        assert h.bus.published.get("market:solusdc:trades", 0) > 0  # OKX trades released after ctVal
        assert all(h.status[n].reconnects == 0 and h.status[n].errors == 0 for n in WS)
        for v in ("binance", "bybit", "okx"):
            assert codec(h, v)["malformed"] == 0


async def test_connection_dropped_mid_stream(fx: FakeExchange) -> None:
    async with Harness(fx) as h:
        await h.wait_live(WS)
        await h.wait_matches(5)
        resyncs = h.feeds.resync_requests
        assert fx.drop() == 4
        await h.wait_for(lambda: all("down" in h.history[n][-3:] for n in WS), what="down seen")
        await h.wait_live(WS)
        await h.wait_matches(20)
        assert h.book.mismatches == []
        for n in WS:
            assert h.status[n].reconnects >= 1, n
        # the diff stream had a hole: the codec asked for a new snapshot and got it
        assert h.feeds.resync_requests > resyncs
        assert codec(h, "binance")["gaps"] >= 1


async def test_silent_server_goes_stale_then_down_then_live(fx: FakeExchange) -> None:
    async with Harness(fx) as h:
        await h.wait_live(WS)
        fx.faults.silent.update({"binance", "bybit", "okx"})
        await h.wait_for(lambda: all("stale" in h.history[n] for n in WS), what="stale")
        # silent past dead_after (pings unanswered): the feeds drop the connection and retry
        await h.wait_for(lambda: all(h.status[n].reconnects >= 1 for n in WS), what="reconnect")
        assert all("down" in h.history[n] for n in WS)
        assert all(h.state(n) != "live" for n in WS)
        fx.faults.silent.clear()
        await h.wait_live(WS)
        await h.wait_matches(10)
        assert h.book.mismatches == []


async def test_garbage_frame_is_counted_and_harmless(fx: FakeExchange) -> None:
    async with Harness(fx) as h:
        await h.wait_live(WS)
        fx.faults.garbage.update({"binance": 3, "bybit": 2, "okx": 2})
        await h.wait_for(lambda: not any(fx.faults.garbage.values()), what="garbage sent")
        await h.wait_matches(10)
        for v in ("binance", "bybit", "okx"):
            assert codec(h, v)["malformed"] >= 1, v
        assert h.book.mismatches == []
        assert all(h.state(n) == "live" for n in WS)
        assert all(h.status[n].reconnects == 0 for n in WS)


async def test_depth_gap_triggers_resync(fx: FakeExchange) -> None:
    async with Harness(fx) as h:
        await h.wait_live(WS)
        await h.wait_matches(5)
        before = h.feeds.snapshots_fetched
        fx.faults.skip_diffs = 1
        await h.wait_for(lambda: h.feeds.snapshots_fetched > before, what="snapshot refetched")
        await h.wait_matches(20)
        assert codec(h, "binance")["gaps"] >= 1
        assert h.status["binance.public"].resyncs >= 2
        assert h.status["binance.public"].reconnects == 0
        assert h.book.mismatches == []


async def test_snapshot_arriving_after_buffered_diffs(fx: FakeExchange) -> None:
    fx.faults.snapshot_delay_s = 0.5  # diffs keep arriving (and are buffered) meanwhile
    async with Harness(fx) as h:
        await h.wait_live(WS)
        await h.wait_matches(10)
        fx.faults.skip_diffs = 1
        await h.wait_for(lambda: h.feeds.snapshots_fetched >= 2, what="second snapshot")
        await h.wait_matches(20)
        assert h.book.mismatches == []


async def test_http_429_then_403_backs_off_then_stops_polling(fx: FakeExchange) -> None:
    fx.faults.http_status["binance"] = deque([429, 403])
    fx.faults.http_status["bybit"] = deque([429, 403])
    async with Harness(fx) as h:
        await h.wait_for(lambda: h.feeds.rest is not None and "bybit.rest" in h.feeds.rest.gates)
        assert h.feeds.rest is not None
        gates = h.feeds.rest.gates
        await h.wait_for(lambda: gates["binance.rest"].bans == 1 and gates["bybit.rest"].bans == 1,
                         what="ban")
        for name in ("binance.rest", "bybit.rest"):
            g = gates[name]
            assert g.rate_limited == 1
            await h.wait_for(lambda name=name: h.state(name) == "down", what=f"{name} down")  # type: ignore[misc]
            assert "banned" in h.status[name].detail and "stopped" in h.status[name].detail
        # while banned: no request reaches the host
        n = fx.requests.get("binance.depth", 0)
        await asyncio.sleep(0.5)
        assert fx.requests.get("binance.depth", 0) == n
        # after the ban window (1 s here, >= 10 min in production) polling resumes and the book syncs
        await h.wait_live([*WS, "binance.rest", "bybit.rest"])
        await h.wait_matches(10)
        assert h.book.mismatches == []
        assert h.status["binance.rest"].errors == 2


async def test_server_refusing_connections_for_a_while(fx: FakeExchange) -> None:
    async with Harness(fx) as h:
        await h.wait_live(WS)
        fx.faults.refuse.update({"binance", "bybit", "okx"})
        fx.drop()
        attempts = dict(fx.requests)
        await h.wait_for(lambda: fx.requests["binance.public"] >= attempts["binance.public"] + 3,
                         what="retries")
        assert all(h.state(n) == "down" for n in WS)
        assert all(h.status[n].errors >= 1 for n in WS)
        fx.faults.refuse.clear()
        await h.wait_live(WS, timeout=15)
        await h.wait_matches(10)
        assert h.book.mismatches == []


async def test_rotation_before_24h_cut_and_clean_shutdown(fx: FakeExchange) -> None:
    tasks_before = asyncio.all_tasks()
    async with Harness(fx, options=fast_options(max_conn_age_s=0.6)) as h:
        await h.wait_live(WS)
        await h.wait_for(lambda: all(h.status[n].reconnects >= 2 for n in WS), what="rotations")
        assert all(h.feeds.connections[n].backoff.attempts == 0 for n in WS)  # no backoff on rotation
        await h.wait_matches(5)
    assert h.feeds.session is None and h.feeds.tasks == []
    leftover = [t for t in asyncio.all_tasks() - tasks_before if not t.done()]
    assert [t.get_name() for t in leftover if t.get_name().startswith(("feeds:", "ws-"))] == []
    assert all(h.status[n].state == "down" for n in WS)
