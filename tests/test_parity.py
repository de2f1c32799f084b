"""One configuration, one engine rule: the backtest and the runtime on the demo session make the
same intents and the same fills — the runtime as fast as it goes, and at a finite pace after the
demo's fast-forwarded warm-up (the path `autotrader demo` takes). The funnel adds up."""

from __future__ import annotations

import asyncio
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from autotrader.backtest import Backtest
from autotrader.config import load_config
from autotrader.runtime import Runtime
from autotrader.session import session_defaults
from core.config_schema import Config
from core.intents import Intent
from execution.paper import PaperVenue


def _intents(intents: list[Intent]) -> list[tuple[Any, ...]]:
    return [(i.id, i.side, i.price, i.size, i.sl, i.tps) for i in intents]


def _fills(venue: Any) -> list[tuple[Any, ...]]:
    assert isinstance(venue, PaperVenue)
    return [(f.client_tag, f.side, f.price, f.size, f.ts, f.maker) for f in venue.fill_history()]


def _cfg(path: Path) -> Config:
    return load_config(None, overrides=session_defaults(path, [])[0])


async def _runtime(cfg: Config, path: Path, speed: float, fast_forward: bool) -> Runtime:
    with tempfile.TemporaryDirectory(prefix="at-par-") as d:
        rt = Runtime(cfg, path, speed, logging.getLogger("test.parity"), None, state_db=Path(d) / "s.sqlite3",
                     control_path=Path(d) / "c.sock", fast_forward=fast_forward)
        task = asyncio.create_task(rt.run())
        deadline = time.monotonic() + 300
        while not (rt.replay_end.is_set() and rt.replay_done):
            assert not task.done(), rt.start_error
            assert time.monotonic() < deadline, "the replay did not end"
            await asyncio.sleep(0.05)
        while rt.engine.pending_intents:
            await asyncio.sleep(0.05)
        for _ in range(20):  # a few of the engine's own steps after the data (the final bar's intent)
            rt.engine.wake()
            await asyncio.sleep(0.02)
        rt.stop_event.set()
        assert await task == 0
        return rt


@pytest.fixture(scope="module")
def backtest_of_demo(demo_recording: Path) -> Backtest:
    bt = Backtest(_cfg(demo_recording), demo_recording)
    asyncio.run(bt.run())
    return bt


@pytest.mark.parametrize(("speed", "fast_forward"), [(math.inf, False), (400.0, True)],
                         ids=["max", "fast-forward-then-400x"])
async def test_runtime_matches_the_backtest_on_the_demo(backtest_of_demo: Backtest, demo_recording: Path,
                                                        speed: float, fast_forward: bool) -> None:
    bt = backtest_of_demo
    assert bt.cfg.guards.atr_period == 3  # the session's settings, in both
    rt = await _runtime(_cfg(demo_recording), demo_recording, speed, fast_forward)
    assert rt.cfg.guards.atr_period == 3
    assert _intents(list(rt.signal.intents)) == _intents(list(bt.signal.intents))
    assert len(bt.signal.intents) >= 2
    assert _fills(rt.trading.venue) == _fills(bt.venue)
    assert len(_fills(bt.venue)) >= 3  # an entry, its exits: a real comparison


def test_funnel_adds_up_on_the_demo(backtest_of_demo: Backtest) -> None:
    bt = backtest_of_demo
    report = bt._report({}, 0, None, 1.0, bt.venue.equity(), 0.0, 0.0)
    f = report.funnel
    assert f.adds_up(), f
    assert f.setups == len(bt.signal.intents) + len(bt.signal.vetoes)
    assert f.trades == len(report.trades) and f.filled >= 2
