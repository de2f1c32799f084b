"""Soak: >= 10 minutes with a forced reconnect every ~30 s; no growth in tasks, fds or memory.

Run with ``pytest -m slow tests/test_transport_soak.py`` (AUTOTRADER_SOAK_S shortens it)."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import time

import pytest

from tests.transport_harness import Harness, fast_options, start_fake


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def _sample() -> tuple[int, int, int]:
    gc.collect()
    return len(asyncio.all_tasks()), len(os.listdir("/proc/self/fd")), _rss_kb()


@pytest.mark.slow
async def test_soak_forced_reconnects_no_leaks() -> None:
    duration = float(os.environ.get("AUTOTRADER_SOAK_S", "600"))
    every = min(30.0, duration / 6)
    fx = await start_fake(rate=2000.0)
    try:
        async with Harness(fx, options=fast_options()) as h:
            await h.wait_live()
            start = time.monotonic()
            baseline: tuple[int, int, int] | None = None
            drops = 0
            while time.monotonic() - start < duration:
                await asyncio.sleep(every)
                fx.drop()
                drops += 1
                await h.wait_live(timeout=20)
                await h.wait_matches(5, timeout=20)
                if baseline is None and time.monotonic() - start >= min(60.0, duration / 3):
                    baseline = _sample()
            end = _sample()
            assert baseline is not None
            print(f"soak {duration:.0f}s drops={drops} baseline={baseline} end={end} summary={h.summary()}")
            tasks0, fds0, rss0 = baseline
            tasks1, fds1, rss1 = end
            assert tasks1 <= tasks0 + 1
            assert fds1 <= fds0 + 4
            assert rss1 - rss0 < 30_000  # KB
            assert h.book.mismatches == []
            assert all(h.status[n].reconnects >= drops for n in ("binance.public", "bybit.linear"))
    finally:
        await fx.stop()
