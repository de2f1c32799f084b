"""The UI at 80x24 shows bad market data: the drops by venue and kind in the top bar (within the
first 80 columns), a crossed book as CROSSED in the spread card, STALE (its guard level)."""

from __future__ import annotations

from core.bus import Topics
from core.models import BookTop, FeedStatus
from tests.test_tui import make, settle, text

T = 1_741_567_560_000 + 3_600_000  # after the fixture's market


async def test_drops_and_a_crossed_book_at_80x24() -> None:
    app, bus, _ = make()
    async with app.run_test(size=(80, 24)) as pilot:
        bus.publish(Topics.FEED_STATUS, FeedStatus(feed="binance", state="live", ts=T, last_msg_age_s=0.0,
                                                   dropped={"trade": 3, "book": 1}))
        crossed = BookTop("binance", "SOLUSDT", T, 9, 150.02, 1.0, 150.0, 1.0, -1.33, 2e5, 2e5)
        bus.publish(Topics.BOOK, crossed)
        await settle(pilot)
        top = text(app, "#topbar")
        assert "dropped: binance book 1, trade 3" in top
        assert top.index("dropped:") + len("dropped: binance book 1, trade 3") <= 80
        assert "CROSSED" in text(app, "#card-spread")
        assert app.query_one("#card-spread").has_class("-stale")
