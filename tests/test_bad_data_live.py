"""Bad market data on the live path (a fake exchange on 127.0.0.1): a garbage Binance frame resyncs
the book at once (a new snapshot is fetched, the book matches the venue's bookTicker again) and the
feeds' statuses on ``feeds:status`` carry the venue's drop counters."""

from __future__ import annotations

from core.bus import Topics
from core.models import ResyncNeeded
from feeds.transport.fakes import FakeExchange
from tests.transport_harness import Harness, start_fake


async def test_a_garbage_binance_frame_resyncs_the_book_and_shows_in_feed_health() -> None:
    fx = await start_fake()
    try:
        await _garbage_resyncs(fx)
    finally:
        await fx.stop()


async def _garbage_resyncs(fx: FakeExchange) -> None:
    async with Harness(fx) as h:
        resyncs: list[ResyncNeeded] = []
        h.bus.on(Topics.BOOK_RESYNC, resyncs.append)
        await h.wait_live(["binance.public", "binance.market"])
        await h.wait_matches(5)
        before, seen = h.feeds.snapshots_fetched, len(resyncs)
        fx.faults.garbage["binance"] = 1
        await h.wait_for(lambda: h.feeds.snapshots_fetched > before, what="a new snapshot")
        assert [r.reason for r in resyncs[seen:]] == ["undecodable frame"]  # at once, not at the next gap
        assert h.pipeline.codecs["binance"].stats.gaps == 0
        await h.wait_matches(10)  # the book is back and right
        assert h.book.mismatches == []
        await h.wait_for(lambda: all(h.status[n].dropped == {"frame": 1}
                                     for n in ("binance.public", "binance.market")), what="dropped counted")
        assert h.status["bybit.linear"].dropped == {}
