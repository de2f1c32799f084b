"""Composition root for ``autotrader run``: bus + pipeline + feed monitor + structured logs.

With ``--replay`` the recording drives the runtime at X× its own pace (``max`` = as fast as
possible); after the data ends the instance keeps running until SIGINT/SIGTERM so it can be
inspected, with every feed reported ``down`` (fail closed: nothing is live any more).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from pathlib import Path
from typing import Any

from autotrader.emit import bar_json, book_json
from autotrader.logs import log_event, setup_logging
from core.bus import Bus, Topics
from core.clock import EventClock
from core.config_schema import Config
from core.feed_health import feed_state
from core.models import Bar, Basis, BookTop, FeedStatus, Funding, Liquidation, OpenInterest
from feeds.pipeline import MarketPipeline
from feeds.replay import RecordingError, open_recording

VENUES = ("binance", "bybit", "okx")


def parse_speed(text: str) -> float:
    if text.strip().lower() == "max":
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--speed must be a positive number or 'max', got {text!r}") from None
    if not value > 0 or math.isinf(value) or math.isnan(value):
        raise ValueError(f"--speed must be a positive number or 'max', got {text!r}")
    return value


class LatestState:
    """Latest value of each market topic, for status lines (the guards issue builds the full state)."""

    def __init__(self, bus: Bus) -> None:
        self.book: BookTop | None = None
        self.bar: Bar | None = None
        self.funding: Funding | None = None
        self.oi: OpenInterest | None = None
        self.basis: Basis | None = None
        self.liquidations = 0
        bus.on(Topics.BOOK, self._set_book)
        bus.on(Topics.BARS, self._set_bar)
        bus.on(Topics.FUNDING, self._set_funding)
        bus.on(Topics.OPEN_INTEREST, self._set_oi)
        bus.on(Topics.BASIS, self._set_basis)
        bus.on(Topics.LIQUIDATIONS, self._count_liq)

    def _set_book(self, m: BookTop) -> None:
        self.book = m

    def _set_bar(self, m: Bar) -> None:
        self.bar = m

    def _set_funding(self, m: Funding) -> None:
        self.funding = m

    def _set_oi(self, m: OpenInterest) -> None:
        self.oi = m

    def _set_basis(self, m: Basis) -> None:
        self.basis = m

    def _count_liq(self, m: Liquidation) -> None:
        self.liquidations += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "book": book_json(self.book) if self.book else None,
            "last_bar": bar_json(self.bar) if self.bar else None,
            "funding_apr": self.funding.apr_pct if self.funding else None,
            "oi_notional": self.oi.oi_notional if self.oi else None,
            "basis_bps": self.basis.basis_bps if self.basis else None,
            "liquidations": self.liquidations,
        }


class Runtime:
    def __init__(self, cfg: Config, replay_path: Path, speed: float, logger: logging.Logger) -> None:
        self.cfg = cfg
        self.replay_path = replay_path
        self.speed = speed
        self.log = logger
        self.bus = Bus()
        self.clock = EventClock()
        self.pipeline = MarketPipeline(
            self.bus,
            binance_symbol=None,
            bybit_symbol=cfg.market.bybit_symbol,
            okx_usdc_inst=cfg.market.okx_usdc_inst,
            clock=self.clock,
        )
        self.state = LatestState(self.bus)
        self.replay_done = False
        self.stop_event = asyncio.Event()
        self.exit_code = 0
        self._max_age = {
            "binance": cfg.feeds.binance_max_age_s,
            "bybit": cfg.feeds.bybit_max_age_s,
            "okx": cfg.feeds.okx_max_age_s,
        }

    def feed_statuses(self) -> list[FeedStatus]:
        now = self.clock.now_ms()
        out = []
        for venue in VENUES:
            codec = self.pipeline.codecs[venue]
            last = self.pipeline.stats.last_event_ms.get(venue)
            seen = codec.stats.frames > 0
            state, age = feed_state(seen and not self.replay_done, last, now, self._max_age[venue])
            detail = "replay ended" if self.replay_done else ("" if seen else "no frames for this venue")
            out.append(
                FeedStatus(
                    feed=venue,
                    state=state,
                    ts=now,
                    last_msg_age_s=None if age is None else round(age, 3),
                    messages=codec.stats.frames,
                    resyncs=codec.stats.resyncs,
                    errors=codec.stats.malformed + codec.stats.errors + codec.stats.unknown,
                    detail=detail,
                )
            )
        return out

    def status_line(self) -> dict[str, Any]:
        statuses = self.feed_statuses()
        for st in statuses:
            self.bus.publish(Topics.FEED_STATUS, st)
        return {
            "event_ts": self.clock.now_ms(),
            "data_source": "replay",
            "replay_done": self.replay_done,
            "feeds": {
                s.feed: {
                    "state": s.state,
                    "age_s": s.last_msg_age_s,
                    "messages": s.messages,
                    "resyncs": s.resyncs,
                    "errors": s.errors,
                    "detail": s.detail,
                }
                for s in statuses
            },
            "market": self.state.as_dict(),
        }

    async def _replay(self) -> None:
        try:
            recording = open_recording(self.replay_path)
        except RecordingError as exc:
            log_event(self.log, "replay failed", logging.ERROR, error=str(exc))
            self.exit_code = 2
            self.stop_event.set()
            return
        log_event(
            self.log,
            "replay started",
            path=str(self.replay_path),
            format=recording.format,
            speed="max" if math.isinf(self.speed) else self.speed,
        )
        on_ws, on_http = self.pipeline.on_ws, self.pipeline.on_http
        first_ns: int | None = None
        start = time.monotonic()
        n = 0
        try:
            for f in recording.frames():
                if first_ns is None:
                    first_ns = f.ts_ns
                if not math.isinf(self.speed):
                    due = start + (f.ts_ns - first_ns) / 1e9 / self.speed
                    delay = due - time.monotonic()
                    if delay > 0.001:
                        await asyncio.sleep(delay)
                elif n % 2000 == 0:
                    await asyncio.sleep(0)
                if f.kind == "recv":
                    on_ws(f.venue, f.data, f.ts_ns)
                elif f.kind == "http":
                    on_http(f.venue, f.url, f.data, f.ts_ns)
                n += 1
        except RecordingError as exc:
            log_event(self.log, "replay error", logging.ERROR, error=str(exc))
        self.pipeline.flush()
        self.replay_done = True
        log_event(
            self.log,
            "replay finished",
            frames=n,
            recording=recording.stats.as_dict(),
            codecs={v: c.stats.as_dict() for v, c in self.pipeline.codecs.items()},
        )
        log_event(self.log, "status", **self.status_line())

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.logging.status_interval_s)
            log_event(self.log, "status", **self.status_line())

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop_event.set)
        tasks = [
            asyncio.create_task(self._replay(), name="replay"),
            asyncio.create_task(self._status_loop(), name="status"),
        ]
        try:
            await self.stop_event.wait()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        log_event(self.log, "stopped", exit_code=self.exit_code)
        return self.exit_code


def run_runtime(cfg: Config, replay_path: Path, speed: float) -> int:
    logger = setup_logging(cfg.logging.level)
    return asyncio.run(Runtime(cfg, replay_path, speed, logger).run())
