"""Feed liveness on replay: what each venue's status would have been, on event time.

A venue is ``live`` while its frames keep coming within its max age of the replay's event clock,
``stale`` past it, and ``down`` once the recording has ended (fail closed: nothing is live any more).
"""

from __future__ import annotations

from collections.abc import Mapping

from core.bus import Bus, Topics
from core.feed_health import feed_state
from core.models import FeedStatus
from feeds.pipeline import MarketPipeline

VENUES = ("binance", "bybit", "okx")


class ReplayHealth:
    def __init__(self, pipeline: MarketPipeline, max_age_s: Mapping[str, float]) -> None:
        self.pipeline = pipeline
        self.max_age_s = dict(max_age_s)
        self.done = False
        self.last_published_ms: int | None = None

    def statuses(self, now_ms: int) -> list[FeedStatus]:
        out = []
        for venue in VENUES:
            codec = self.pipeline.codecs[venue]
            seen = codec.stats.frames > 0
            last = self.pipeline.stats.last_event_ms.get(venue)
            state, age = feed_state(seen and not self.done, last, now_ms, self.max_age_s.get(venue, 5.0))
            detail = "replay ended" if self.done else ("" if seen else "no frames for this venue")
            out.append(
                FeedStatus(
                    feed=venue,
                    state=state,
                    ts=now_ms,
                    last_msg_age_s=None if age is None else round(age, 3),
                    messages=codec.stats.frames,
                    resyncs=codec.stats.resyncs,
                    errors=codec.stats.malformed + codec.stats.errors + codec.stats.unknown,
                    detail=detail,
                    dropped=self.pipeline.dropped(venue),
                )
            )
        return out

    def maybe_publish(self, bus: Bus, now_ms: int, every_ms: int = 1000) -> bool:
        """Publish every venue's status once per ``every_ms`` of event time (or when done)."""
        if now_ms <= 0:  # no event seen yet: nothing to say about time
            return False
        last = self.last_published_ms
        if not self.done and last is not None and now_ms - last < every_ms:
            return False
        self.last_published_ms = now_ms
        for st in self.statuses(now_ms):
            bus.publish(Topics.FEED_STATUS, st)
        return True
