"""Per-connection liveness counters and the monitor that publishes them as ``FeedStatus``.

A feed is ``live`` only while *data* frames keep arriving within its max age; pongs and
subscription acks prove the socket is alive (``last_rx``) but not that the data is fresh, so they
never make a feed live. Not connected is ``down``; connected with no data yet is ``connecting``.
REST hosts publish the same way: ``down`` with a detail while banned or failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from core.bus import Bus, Topics
from core.feed_health import feed_state
from core.models import FeedState, FeedStatus

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class FeedHealth:
    """Mutable counters of one feed (a websocket connection or a REST host)."""

    name: str
    max_age_s: float
    connected: bool = False
    last_data_mono: float | None = None  # monotonic time of the last data frame
    last_data_wall_ms: int | None = None
    last_rx_mono: float | None = None  # any frame (pong, ack, data)
    connected_at_mono: float | None = None
    messages: int = 0
    reconnects: int = 0
    resyncs: int = 0
    errors: int = 0
    connects: int = 0
    detail: str = ""
    last_state: FeedState | None = None
    # a REST host that is banned/failing forces ``down`` whatever the timestamps say
    forced_down: bool = False

    def on_connected(self) -> None:
        now = time.monotonic()
        if self.connects:
            self.reconnects += 1
        self.connects += 1
        self.connected = True
        self.connected_at_mono = now
        self.last_rx_mono = now
        # data received on a previous connection does not make this one live
        self.last_data_mono = None
        self.detail = ""

    def on_disconnected(self, why: str) -> None:
        self.connected = False
        self.detail = why

    def on_data(self, now_mono: float) -> None:
        self.messages += 1
        self.last_data_mono = now_mono
        self.last_rx_mono = now_mono

    def on_error(self, why: str) -> None:
        self.errors += 1
        self.detail = why

    def status(self, now_mono: float | None = None, now_ms: int | None = None) -> FeedStatus:
        mono = time.monotonic() if now_mono is None else now_mono
        wall = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        last_ms = None
        if self.last_data_mono is not None:
            # express the monotonic age on the wall clock (immune to wall-clock jumps)
            last_ms = wall - int((mono - self.last_data_mono) * 1000)
        state, age = feed_state(self.connected and not self.forced_down, last_ms, wall, self.max_age_s)
        return FeedStatus(
            feed=self.name, state=state, ts=wall, last_msg_age_s=age, messages=self.messages,
            reconnects=self.reconnects, resyncs=self.resyncs, errors=self.errors, detail=self.detail,
        )


class HealthMonitor:
    """Publishes every feed's status on ``Topics.FEED_STATUS`` each ``interval_s`` and on demand."""

    def __init__(self, bus: Bus, interval_s: float = 1.0,
                 clock_ms: Callable[[], int] | None = None,
                 dropped: Callable[[str], dict[str, int]] | None = None) -> None:
        self.bus = bus
        self.interval_s = interval_s
        self.feeds: dict[str, FeedHealth] = {}
        self._clock_ms = clock_ms
        self._dropped = dropped  # venue -> its dropped market data by kind (MarketPipeline.dropped)

    def add(self, health: FeedHealth) -> FeedHealth:
        self.feeds[health.name] = health
        return health

    def publish(self, health: FeedHealth) -> FeedStatus:
        st = health.status(now_ms=self._clock_ms() if self._clock_ms else None)
        if self._dropped is not None:
            dropped = self._dropped(health.name.partition(".")[0])  # "binance.public" -> binance
            if dropped:
                st = msgspec.structs.replace(st, dropped=dropped)
        if st.state != health.last_state:
            log.info("feed %s: %s -> %s %s", health.name, health.last_state, st.state, st.detail)
            health.last_state = st.state
        self.bus.publish(Topics.FEED_STATUS, st)
        return st

    def publish_all(self) -> list[FeedStatus]:
        return [self.publish(h) for h in self.feeds.values()]

    async def run(self) -> None:
        while True:
            self.publish_all()
            await asyncio.sleep(self.interval_s)
