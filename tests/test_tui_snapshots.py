"""Snapshot tests of the UI at 80×24 and 120×40 on a fixed market (no wall time on screen).

Update after an intended change with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and
look at the SVGs in ``tests/__snapshots__/``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from core.bus import Bus
from tests.tui_fixtures import INFO, FakeCommands, guards_cfg, populate
from tui.app import TraderApp
from tui.screens import HelpScreen, OrderScreen, QuitScreen


def app_with_data() -> TraderApp:
    bus = Bus()
    app = TraderApp(bus, FakeCommands(), INFO, guards_cfg())
    populate(bus)
    return app


async def until(pilot: Pilot[Any], cond: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Wait for a condition instead of a fixed pause: a loaded CI machine is slower."""
    for _ in range(int(timeout_s / 0.05)):
        if cond():
            await pilot.pause()
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause(0.3)
    app = pilot.app
    assert isinstance(app, TraderApp)
    app.refresh_now()
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_main_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_with_data(), terminal_size=size, run_before=settle)


def test_help_screen_80x24(snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help screen")
        await pilot.pause(0.2)

    assert snap_compare(app_with_data(), terminal_size=(80, 24), run_before=before)


def test_order_form_120x40(snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("o")
        await until(pilot, lambda: isinstance(pilot.app.screen, OrderScreen), "the order form")
        await pilot.pause(0.2)
        await pilot.press(*"2", "tab", *"145")

        def typed() -> bool:
            values = [w.value for w in pilot.app.screen.query(Input)]
            return "2" in values and "145" in values

        await until(pilot, typed, "the typed size and stop")
        await pilot.pause(0.1)

    assert snap_compare(app_with_data(), terminal_size=(120, 40), run_before=before)


def test_quit_dialog_80x24(snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app = pilot.app
        assert isinstance(app, TraderApp)
        await until(pilot, lambda: bool(app.status), "the first status")
        await pilot.press("q")
        await until(pilot, lambda: isinstance(pilot.app.screen, QuitScreen), "the quit dialog")
        await pilot.pause(0.2)

    assert snap_compare(app_with_data(), terminal_size=(80, 24), run_before=before)
