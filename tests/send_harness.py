"""Shared setup for the send-path tests: a fake clock whose sleep advances it at once, and a sender
over the local RPC. Not a test module."""

from __future__ import annotations

import asyncio

from execution.solana_send.sender import SendConfig

#: production timings, driven by a fake clock (a poll of 1 s costs nothing)
REAL_TIMINGS = SendConfig(
    rebroadcast_s=2.0,
    poll_s=1.0,
    unknown_after_s=10.0,
    ack_wait_s=0.3,
    max_resigns=1,
    backoff_max_s=10.0,
    priority_fee_cap=3000,
    fee_cache_s=0.0,
)


class FakeTime:
    """``sleep(s)`` advances ``now`` by ``s`` and yields once: waits cost no wall time."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.t += s
        self.slept += s
        await asyncio.sleep(0.001)


def no_jitter() -> float:
    return 0.0
