"""The engine's steps while a recording drives the runtime: on event time, by the backtest's rule.

The engine steps every ``engine.poll_interval_s`` of *event* time and at once when the paper venue
has something to report (a fill, a trigger) or an intent is waiting — checked after every frame,
exactly as :class:`autotrader.backtest.Backtest` does. So ``run --replay`` and ``demo`` (at any
speed, fast-forward included) make the same intents and fills as ``backtest`` on the same data;
``tests/test_parity.py`` holds them to it. Between frames (a slow speed, a gap) the runtime still
answers commands: an intent queued by ``autotrader intent`` or the UI is stepped within 0.25 s.
Once the recording has ended the engine's own loop takes over (wall time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from execution.engine import Engine

log = logging.getLogger("autotrader.replay")
SLICE_S = 0.25  # between frames: how often a queued command is looked for


class EventStepper:
    def __init__(self, engine: Engine, venue: Any, poll_interval_s: float) -> None:
        self.engine = engine
        self.venue = venue
        self.step_ms = int(poll_interval_s * 1000)
        self.next_ms = 0
        self.steps = 0

    def due(self, now_ms: int) -> bool:
        return (now_ms >= self.next_ms or bool(getattr(self.venue, "pending_events", False))
                or self.engine.pending_intents)

    async def step(self, now_ms: int) -> None:
        """One engine step; an error is recorded and the replay goes on (as the engine's loop does)."""
        self.steps += 1
        self.next_ms = now_ms + self.step_ms
        try:
            await self.engine.step()
        except Exception as e:
            log.exception("engine step failed")
            self.engine.record("error", stage="step", reason=repr(e))

    async def wait(self, seconds: float, stop: asyncio.Event, now_ms: int) -> None:
        """Sleep until the next frame is due (or ``stop``); step at once for a queued command."""
        end = time.monotonic() + seconds
        while not stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(left, SLICE_S))
            if self.engine.pending_intents:
                await self.step(now_ms)
