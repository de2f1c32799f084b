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
from tui.kill_panel import KillScreen
from tui.screens import DetailScreen, FilterScreen, HelpScreen, OrderScreen, QuitScreen, SettingsScreen


def app_with_data(verdict_ok: bool = True) -> TraderApp:
    bus = Bus()
    app = TraderApp(bus, FakeCommands(verdict_ok=verdict_ok), INFO, guards_cfg())
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


SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@SIZES
def test_main_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_with_data(), terminal_size=size, run_before=settle)


def _dialog(key: str, screen: type, then: Callable[[Pilot[Any]], Any] | None = None) -> Any:
    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app = pilot.app
        assert isinstance(app, TraderApp)
        await until(pilot, lambda: bool(app.status), "the first status")
        await pilot.press(key)
        await until(pilot, lambda: isinstance(pilot.app.screen, screen), f"the {screen.__name__}")
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False  # a blinking cursor is on or off at the snapshot's instant
        await pilot.pause(0.2)
        if then is not None:
            await then(pilot)

    return before


@SIZES
def test_help_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_with_data(), terminal_size=size, run_before=_dialog("question_mark", HelpScreen))


@SIZES
def test_order_form(snap_compare: Any, size: tuple[int, int]) -> None:
    async def typed(pilot: Pilot[Any]) -> None:
        await pilot.press(*"2", "tab", *"145")

        def done() -> bool:
            values = [w.value for w in pilot.app.screen.query(Input)]
            return "2" in values and "145" in values

        await until(pilot, done, "the typed size and stop")
        await pilot.pause(0.1)

    assert snap_compare(app_with_data(), terminal_size=size, run_before=_dialog("o", OrderScreen, typed))


@SIZES
def test_order_form_with_a_refusal(snap_compare: Any, size: tuple[int, int]) -> None:
    """The verdict and the buttons are on screen at 80×24 (Enter-Enter never sends an unseen order)."""
    async def reviewed(pilot: Pilot[Any]) -> None:
        await pilot.press(*"2", "tab", *"145", "enter")
        await until(pilot, lambda: "REFUSE" in str(pilot.app.screen.query_one("#verdict").render()),
                    "the verdict")
        await pilot.pause(0.1)

    app = app_with_data(verdict_ok=False)
    assert snap_compare(app, terminal_size=size, run_before=_dialog("o", OrderScreen, reviewed))


@SIZES
def test_settings_form(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_with_data(), terminal_size=size, run_before=_dialog("s", SettingsScreen))


@SIZES
def test_filter_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_with_data(), terminal_size=size, run_before=_dialog("f", FilterScreen))


@SIZES
def test_detail_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_with_data(), terminal_size=size, run_before=_dialog("enter", DetailScreen))


@SIZES
def test_quit_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_with_data(), terminal_size=size, run_before=_dialog("q", QuitScreen))


@SIZES
def test_kill_panel(snap_compare: Any, size: tuple[int, int]) -> None:
    """Right after ctrl+k: what the kill did, the position, the stop still on the venue, the keys."""
    async def killed(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, TraderApp)
        await until(pilot, lambda: "confirmed" in str(app.screen.query_one("#kill-result").render()),
                    "the kill's answer")
        await until(pilot, lambda: "@ 143.29" in str(app.screen.query_one("#kill-venue").render())
                    and len(app.status.get("open_orders") or []) == 1, "the status after the kill")
        await pilot.pause(0.2)

    assert snap_compare(app_with_data(), terminal_size=size, run_before=_dialog("ctrl+k", KillScreen, killed))


def test_kill_panel_cancel_everything_asks_again_80x24(snap_compare: Any) -> None:
    async def armed(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await until(pilot, lambda: "confirmed" in str(app.screen.query_one("#kill-result").render()),
                    "the kill's answer")
        await until(pilot, lambda: "@ 143.29" in str(app.screen.query_one("#kill-venue").render()),
                    "the status after the kill")
        await pilot.press("c")
        await until(pilot, lambda: bool(app.screen.query_one("#kill-confirm").display), "the question")
        await pilot.pause(0.2)

    before = _dialog("ctrl+k", KillScreen, armed)
    assert snap_compare(app_with_data(), terminal_size=(80, 24), run_before=before)
