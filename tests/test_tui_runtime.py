"""The UI over a real runtime (composition root): the demo session replayed through the codecs,
guards, signal and paper engine, the kill switch from the keyboard, the order preview and the
settings persisted across a restart."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from pathlib import Path
from typing import Any

from textual.widgets import DataTable

from autotrader.config import validate
from autotrader.runtime import Runtime
from autotrader.ui_bridge import RuntimeCommands, load_saved_settings, settings_db_path, ui_info
from core.config_schema import Config
from core.ui_port import ManualOrder, UiSettings
from storage.state_store import StateStore
from tui.app import TraderApp


def demo_cfg() -> Config:
    return validate({"guards": {"atr_period": 3}})


def build(cfg: Config, tmp: Path, recording: Path) -> tuple[Runtime, RuntimeCommands, StateStore]:
    state = tmp / "demo-state.sqlite3"
    store = StateStore(settings_db_path(state))
    rt = Runtime(cfg, recording, math.inf, logging.getLogger("test"), None, state_db=state,
                 control_path=tmp / "c.sock")
    return rt, RuntimeCommands(rt, store), store


async def test_demo_through_the_ui_then_ctrl_k(tmp_path: Path, demo_recording: Path) -> None:
    cfg = demo_cfg()
    rt, commands, store = build(cfg, tmp_path, demo_recording)
    app = TraderApp(rt.bus, commands, ui_info(cfg, "synthetic demo"), cfg.guards, tick_s=0.1)
    task = asyncio.create_task(rt.run())
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 120
            while not rt.replay_done and time.monotonic() < deadline:
                await pilot.pause(0.2)
            assert rt.replay_done
            await pilot.pause(1.5)
            top = str(app.query_one("#topbar").render())
            assert "synthetic demo" in top and "ACTIVE" in top
            assert "waiting" not in str(app.query_one("#price").render())
            assert app.query_one("#activity", DataTable).row_count > 3
            orders_before = len((await commands.trading_status()).get("open_orders") or [])
            verdict = await commands.preview_order(ManualOrder(side="buy", size=1.0, sl=1.0))
            assert not verdict.ok and verdict.reasons  # the engine's own checks, not submitted
            t0 = time.monotonic()
            await pilot.press("ctrl+k")
            while time.monotonic() - t0 < 2.0:
                await pilot.pause(0.1)
                top = str(app.query_one("#topbar").render())
                if "HALTED" in top and "KILLED" in str(app.query_one("#guardline").render()):
                    break
            assert "HALTED" in str(app.query_one("#topbar").render())
            assert time.monotonic() - t0 < 2.0
            st: dict[str, Any] = await commands.trading_status()
            left = st["open_orders"]
            # the kill's one meaning: entries and TPs gone; only the stop of an open position stays
            assert st["trading_state"] == "halted"
            assert all(o["reduce_only"] and str(o["type"]).startswith("trigger") for o in left), left
            assert not left or (st["position"]["size"] or 0) != 0
            await pilot.pause(1.2)  # the table is refreshed from the status poll
            assert app.query_one("#orders", DataTable).row_count == len(left)
            assert f"open orders · {len(left)}" in str(app.query_one("#orders").border_title)
            assert orders_before >= len(left)
    finally:
        rt.stop_event.set()
        await asyncio.wait_for(task, 30)
        store.close()


async def test_settings_apply_now_and_persist_across_restart(tmp_path: Path, demo_recording: Path) -> None:
    cfg = demo_cfg()
    rt, commands, store = build(cfg, tmp_path, demo_recording)
    try:
        new = UiSettings(leverage=2.0, risk_per_trade_pct=0.8, priority_fee_cap=1234.0, daily_stop_pct=2.5)
        await commands.save_settings(new)
        assert rt.engine.cfg.risk_per_trade_pct == 0.8 and rt.engine.cfg.priority_fee_cap == 1234.0
        assert rt.engine.cfg.daily_stop_pct == 2.5 and rt.signal.signal.risk.leverage == 2.0
        assert commands.settings() == new
        bad = UiSettings(leverage=50.0, risk_per_trade_pct=0.8, priority_fee_cap=0, daily_stop_pct=2.5)
        try:
            await commands.save_settings(bad)
            raise AssertionError("leverage above guards.max_leverage was accepted")
        except ValueError as exc:
            assert "max_leverage" in str(exc)
    finally:
        rt.trading.close()
        store.close()
    store2 = StateStore(settings_db_path(tmp_path / "demo-state.sqlite3"))
    try:
        cfg2, note = load_saved_settings(demo_cfg(), store2)
        assert note == ""
        rt2 = Runtime(cfg2, demo_recording, math.inf, logging.getLogger("test"), None,
                      state_db=tmp_path / "demo-state.sqlite3", control_path=tmp_path / "c2.sock")
        assert rt2.engine.cfg.risk_per_trade_pct == 0.8 and rt2.engine.cfg.priority_fee_cap == 1234.0
        assert rt2.cfg.guards.daily_stop.max_loss_pct == 2.5 and rt2.cfg.risk.leverage == 2.0
        assert RuntimeCommands(rt2, store2).settings().leverage == 2.0
        rt2.trading.close()
    finally:
        store2.close()


def test_recent_events_come_from_the_activity_log_oldest_first(tmp_path: Path) -> None:
    """The UI's history is the activity log's engine events (process rows such as startup are not
    engine events and stay out), oldest first, the newest ``limit`` of them."""
    from types import SimpleNamespace

    from core.engine_types import EngineEvent
    from storage.activity_log import ActivityLog

    log = ActivityLog(tmp_path / "state.sqlite3")
    try:
        for k in range(5):
            ev = EngineEvent(kind="order_submitted", intent_id=f"i{k}", ts=1000 + k, data={"k": k})
            log.append_event(ev)
        log.append_event(EngineEvent(kind="kill_switch", intent_id="", ts=2000, data={"reason": "r"}))
        rt: Any = SimpleNamespace(trading=SimpleNamespace(activity=log), handlers=None)
        got = RuntimeCommands(rt, None).recent_events(3)
        assert [(e.kind, e.intent_id, e.ts) for e in got] == [
            ("order_submitted", "i3", 1003), ("order_submitted", "i4", 1004), ("kill_switch", "", 2000)]
        assert got[0].data == {"k": 3}
        rt.trading.activity = None
        assert RuntimeCommands(rt, None).recent_events(3) == []
    finally:
        log.close()
