"""Holes in the market data of a run (pure): stretches with no data at all, and feeds that went
silent past their max age. Fed the feed statuses (``feeds:status``): on a replay they are
published about once a second of event time while frames arrive, so two statuses far apart mean
nothing arrived in between."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from core.models import FeedStatus


class Gap(msgspec.Struct, frozen=True, kw_only=True):
    start_ms: int
    end_ms: int
    feed: str = ""  # "" = every feed (no data at all)

    @property
    def minutes(self) -> float:
        return (self.end_ms - self.start_ms) / 60_000


class DataGaps:
    def __init__(self, gap_ms: int = 60_000) -> None:
        self.gap_ms = gap_ms
        self.gaps: list[Gap] = []
        self.first_ms = 0
        self.last_ms = 0
        self._stale_since: dict[str, int] = {}

    def on_status(self, st: FeedStatus) -> None:
        ts = st.ts
        if ts <= 0:
            return
        if not self.first_ms:
            self.first_ms = ts
        if self.last_ms and ts - self.last_ms > self.gap_ms:
            self.gaps.append(Gap(start_ms=self.last_ms, end_ms=ts))
        self.last_ms = max(self.last_ms, ts)
        if st.state == "stale":
            self._stale_since.setdefault(st.feed, ts - int((st.last_msg_age_s or 0) * 1000))
        elif st.state == "live" and st.feed in self._stale_since:
            start = self._stale_since.pop(st.feed)
            if ts - start > self.gap_ms:
                self.gaps.append(Gap(start_ms=start, end_ms=ts, feed=st.feed))

    def warnings(self) -> list[str]:
        """One line per kind of hole: how many, the longest and when (UTC)."""
        out: list[str] = []
        whole = [g for g in self.gaps if not g.feed]
        if whole:
            g = max(whole, key=lambda x: x.minutes)
            out.append(f"{len(whole)} gap(s) with no data for more than {self.gap_ms / 60_000:g} min, the "
                       f"longest {g.minutes:.1f} min from {_hm(g.start_ms)} UTC: the guards see stale inputs "
                       f"there and block entries")
        feeds = sorted({g.feed for g in self.gaps if g.feed})
        for name in feeds:
            mine = [g for g in self.gaps if g.feed == name]
            g = max(mine, key=lambda x: x.minutes)
            out.append(f"{name} went silent {len(mine)} time(s) for more than {self.gap_ms / 60_000:g} min, "
                       f"the longest {g.minutes:.1f} min from {_hm(g.start_ms)} UTC")
        return out


def _hm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
