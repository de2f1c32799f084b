"""Test glue: a fake exchange on 127.0.0.1 + LiveFeeds + a pipeline, with observers on the bus.

Not a test module (no ``test_`` prefix); used by tests/test_transport_*.py and tests/test_record.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotrader.config import validate
from core.bus import Bus, Topics
from core.config_schema import Config
from core.models import BookTicker, BookTop, FeedStatus
from feeds.live import LiveFeeds, LiveOptions
from feeds.pipeline import MarketPipeline
from feeds.transport.fakes import FakeExchange
from feeds.transport.rest import RestTiming
from feeds.transport.ws import Tap, Timing
from tests.conftest import DATA_DIR

FAST_SPECS: dict[str, dict[str, Any]] = {
    "binance.public": {"dead_after_s": 1.5},
    "binance.market": {"dead_after_s": 1.5},
    "bybit.linear": {"ping_interval_s": 0.3, "dead_after_s": 1.5, "ack_timeout_s": 1.0},
    "okx.public": {"ping_interval_s": 0.3, "dead_after_s": 1.5, "ack_timeout_s": 1.0},
}


def fast_options(**kw: Any) -> LiveOptions:
    opts = LiveOptions(
        timing=Timing(backoff_base_s=0.05, backoff_cap_s=0.4, watchdog_tick_s=0.05, close_timeout_s=0.3,
                      connect_timeout_s=2.0, stable_after_s=1.0),
        rest=RestTiming(backoff_base_s=0.05, backoff_cap_s=0.3, ban_s=1.0, request_timeout_s=3.0),
        status_interval_s=0.05,
        spec_overrides={k: dict(v) for k, v in FAST_SPECS.items()},
    )
    for k, v in kw.items():
        setattr(opts, k, v)
    return opts


def fast_config(fx: FakeExchange) -> Config:
    tree = fx.config_tree()
    tree["feeds"] = {"binance_max_age_s": 0.5, "bybit_max_age_s": 0.5, "okx_max_age_s": 0.5}
    return validate(tree)


@dataclass
class BookCheck:
    """Compares the local book (BookTop) with the venue's bookTicker carrying the same update id."""

    tops: dict[int, BookTop] = field(default_factory=dict)
    matches: int = 0
    mismatches: list[tuple[BookTop, BookTicker]] = field(default_factory=list)

    def on_top(self, t: BookTop) -> None:
        self.tops[t.update_id] = t
        if len(self.tops) > 50_000:
            self.tops.clear()

    def on_ticker(self, bt: BookTicker) -> None:
        t = self.tops.get(bt.update_id)
        if t is None:
            return
        if (t.bid_px, t.bid_qty, t.ask_px, t.ask_qty) == (bt.bid_px, bt.bid_qty, bt.ask_px, bt.ask_qty):
            self.matches += 1
        else:
            self.mismatches.append((t, bt))


class Harness:
    def __init__(self, fx: FakeExchange, options: LiveOptions | None = None, tap: Tap | None = None) -> None:
        self.fx = fx
        self.cfg = fast_config(fx)
        self.bus = Bus()
        self.pipeline = MarketPipeline(self.bus, binance_symbol=self.cfg.market.binance_symbol,
                                       bybit_symbol=self.cfg.market.bybit_symbol,
                                       okx_usdc_inst=self.cfg.market.okx_usdc_inst)
        self.book = BookCheck()
        self.bus.on(Topics.BOOK, self.book.on_top)
        self.bus.on(Topics.BOOK_TICKER, self.book.on_ticker)
        self.status: dict[str, FeedStatus] = {}
        self.history: dict[str, list[str]] = {}
        self.bus.on(Topics.FEED_STATUS, self._on_status)
        self.feeds = LiveFeeds(self.cfg, self.bus, self.pipeline, tap=tap, options=options or fast_options())
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def _on_status(self, st: FeedStatus) -> None:
        self.status[st.feed] = st
        h = self.history.setdefault(st.feed, [])
        if not h or h[-1] != st.state:
            h.append(st.state)

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.feeds.run(self.stop_event))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop_event.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)

    def state(self, feed: str) -> str:
        st = self.status.get(feed)
        return st.state if st else "?"

    async def wait_for(self, cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or cond}: status={self.summary()}")
            await asyncio.sleep(0.02)

    async def wait_live(self, feeds: list[str] | None = None, timeout: float = 10.0) -> None:
        names = feeds or [s.name for s in self.feeds.specs]
        await self.wait_for(lambda: all(self.state(n) == "live" for n in names), timeout, f"{names} live")

    async def wait_matches(self, n: int, timeout: float = 10.0) -> None:
        start = self.book.matches
        await self.wait_for(lambda: self.book.matches >= start + n, timeout, f"{n} more book matches")

    def summary(self) -> dict[str, Any]:
        return {k: (v.state, v.detail, v.reconnects, v.resyncs, v.errors) for k, v in self.status.items()}


async def start_fake(rate: float = 3000.0) -> FakeExchange:
    fx = FakeExchange(Path(DATA_DIR), rate=rate, venue_rate=100.0)
    await fx.start()
    return fx
