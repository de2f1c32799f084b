"""Vetoed setups reach the activity log with the guard, its value and its threshold (the design's
story: "entries are vetoed when funding or basis exceed caps"), are counted in the backtest funnel,
and can be filtered in ``autotrader activity`` and in the UI."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, OptionList

from autotrader.backtest import Backtest
from autotrader.config import load_config
from autotrader.runtime import Runtime
from core.bus import Bus
from core.engine_types import ENGINE_EVENTS, EngineEvent
from core.event_text import describe
from storage.activity_log import ActivityLog
from tests.conftest import REPO_ROOT
from tests.tui_fixtures import INFO, FakeCommands, guards_cfg, populate
from tui.app import TraderApp
from tui.screens import DetailScreen, FilterScreen

FUNDING_CAP = {"guards.atr_period": 3, "guards.funding_apr_abs_max_pct": 1.0}  # the demo's ~10 % APR


def test_backtest_counts_vetoes_per_guard_with_value_and_threshold(demo_recording: Path) -> None:
    bt = Backtest(load_config(None, overrides=FUNDING_CAP), demo_recording)
    report = asyncio.run(bt.run())
    f = report.funnel
    assert f.setups >= 2 and f.vetoed == f.setups and f.intents == 0 and f.trades == 0
    assert f.vetoed_by.get("funding") == f.setups and f.vetoed_by_guard == f.setups
    assert f.adds_up()
    rows = [e for e in bt.events if e.kind == "signal_vetoed"]
    funding = next(v for v in rows[0].data["vetoes"] if v["guard"] == "funding")
    assert funding["threshold"] == 1.0 and funding["value"] > 1.0 and funding["level"] == "warning"
    assert "funding APR" in describe(rows[0]) and "> 1%" in describe(rows[0])


def test_a_running_instance_writes_vetoes_to_the_activity_log_and_activity_filters_them(
        demo_recording: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="at-veto-") as d:
        db = Path(d) / "s.sqlite3"

        async def run() -> None:
            cfg = load_config(None, overrides=FUNDING_CAP)
            rt = Runtime(cfg, demo_recording, math.inf, logging.getLogger("test.veto"), None, state_db=db,
                         control_path=Path(d) / "c.sock")
            task = asyncio.create_task(rt.run())
            deadline = time.monotonic() + 240
            while not rt.replay_done:
                assert time.monotonic() < deadline and not task.done()
                await asyncio.sleep(0.05)
            rt.stop_event.set()
            assert await task == 0

        asyncio.run(run())
        log = ActivityLog(db, readonly=True)
        rows = log.query({"signal_vetoed"}, None, None)
        log.close()
        assert len(rows) >= 2
        assert all(any(v["guard"] == "funding" for v in r.data["vetoes"]) for r in rows)
        out = subprocess.run([sys.executable, "-m", "autotrader", "activity", "--db", str(db), "--kind",
                              "signal_vetoed", "--json"], capture_output=True, text=True, cwd=REPO_ROOT,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        assert {r["kind"] for r in got} == {"signal_vetoed"} and len(got) == len(rows)
        text = subprocess.run([sys.executable, "-m", "autotrader", "activity", "--db", str(db), "--kind",
                               "signal_vetoed"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
        assert "setup vetoed: |funding APR|" in text.stdout and "> 1%" in text.stdout


async def test_the_ui_filters_vetoes_and_shows_the_guard() -> None:
    bus = Bus()
    app = TraderApp(bus, FakeCommands(), INFO, guards_cfg(), tick_s=0.05, status_every_s=0.1)
    populate(bus)
    veto = EngineEvent(kind="signal_vetoed", intent_id="vwap-SOL-PERP-sell-1", ts=1_741_567_500_000, data={
        "side": "sell", "bar_ts": 1, "by_guards": True, "vetoes": [
            {"guard": "funding", "value": 412.0, "threshold": 300.0, "level": "warning",
             "reason": "funding APR 412 % > 300 %"}]})
    bus.publish(ENGINE_EVENTS, veto)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("f")
        await pilot.pause(0.2)
        assert isinstance(app.screen, FilterScreen)
        ol = app.screen.query_one(OptionList)
        kinds = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        ol.highlighted = kinds.index("signal_vetoed")
        await pilot.press("enter")
        await pilot.pause(0.2)
        act = app.query_one("#activity", DataTable)
        assert act.row_count == 1
        row: list[Any] = act.get_row_at(0)
        assert "short setup vetoed: funding APR 412 %" in " ".join(str(c) for c in row)  # clipped at a word
        act.focus()
        await pilot.press("enter")  # the details: the guard, its value and its threshold
        await pilot.pause(0.2)
        assert isinstance(app.screen, DetailScreen)
        detail = str(app.screen.query_one("#detail-text").render())
        assert '"guard": "funding"' in detail and '"threshold": 300.0' in detail
