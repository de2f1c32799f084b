"""Clock abstraction: live code reads wall time, replay and backtests read event time."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def now_s(self) -> float: ...


class WallClock:
    """The system clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def now_s(self) -> float:
        return time.time()


class EventClock:
    """Time as the data says: advanced by each event's timestamp, never backwards."""

    def __init__(self, start_ms: int = 0) -> None:
        self._ms = start_ms

    def advance(self, ts_ms: int) -> None:
        if ts_ms > self._ms:
            self._ms = ts_ms

    def now_ms(self) -> int:
        return self._ms

    def now_s(self) -> float:
        return self._ms / 1000.0
