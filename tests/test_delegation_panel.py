"""The delegation panel (g) and manual-sign mode with Pilot: what the panel shows, revoke asks
again (passphrase, ctrl+y; Enter never revokes), automation off at once, manual-sign mode routes
the order form to the hand-signing dialog, which signs only what is on screen; snapshots at 80×24
and 120×40."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.test_tui import fill_order, make, text
from tests.test_tui_snapshots import SIZES, _dialog, app_with_data, until
from tui.app import TraderApp
from tui.delegation_panel import DelegationScreen, HandSignScreen


async def _panel(pilot: Pilot[Any], app: TraderApp) -> DelegationScreen:
    await pilot.press("g")
    await until(pilot, lambda: isinstance(app.screen, DelegationScreen), "the delegation panel")
    await until(pilot, lambda: "delegate   9xQe" in text(app, "#deleg-info"), "the delegation read")
    screen = app.screen
    assert isinstance(screen, DelegationScreen)
    return screen


async def test_panel_shows_the_delegate_its_age_ttl_and_how_orders_are_signed() -> None:
    app, _, _ = make()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _panel(pilot, app)
        info = text(app, "#deleg-info")
        assert "set at     2025-03-09 00:05 UTC" in info
        assert "until the owner revokes it" in info  # the TTL: none on chain
        assert "signs as the delegate key" in info and "automation on" in info
        assert screen.query_one("#deleg-keys").region.bottom <= 24  # the keys are on screen at 80×24
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DelegationScreen), "the panel closed")


async def test_revoke_asks_for_the_passphrase_and_only_ctrl_y_sends_it() -> None:
    app, _, fake = make()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _panel(pilot, app)
        await pilot.press("r")
        field = screen.query_one("#owner-pass", Input)
        await until(pilot, lambda: field.display and field.has_focus, "the passphrase field")
        assert "Revoke the delegate 9xQe" in text(app, "#deleg-confirm")
        await pilot.press(*"owner pass", "enter", "enter")  # Enter never revokes
        await pilot.pause(0.2)
        assert not [c for c in fake.calls if c[0] == "revoke"]
        assert field.region.bottom <= 24 and screen.query_one("#deleg-confirm").region.bottom <= 24
        await pilot.press("ctrl+y")
        await until(pilot, lambda: any(c[0] == "revoke" for c in fake.calls), "the revoke")
        assert [c[1] for c in fake.calls if c[0] == "revoke"] == ["owner pass"]
        assert field.value == "" and not field.display  # never kept on screen
        assert app.model.automation_on is False  # at once, before the chain answers
        await until(pilot, lambda: "delegate   none" in text(app, "#deleg-info"), "the revoked state")
        assert "Revoked: confirmed on chain" in text(app, "#deleg-result")
        assert "MANUAL-SIGN" in text(app, "#deleg-info")
        assert any("Delegate revoked on chain; automation off" in n.message for n in app._notifications)


async def test_a_wrong_passphrase_says_so_and_automation_stays_off() -> None:
    app, _, fake = make()
    async with app.run_test(size=(80, 24)) as pilot:
        await _panel(pilot, app)
        await pilot.press("r", *"wrong", "ctrl+y")
        await until(pilot, lambda: "wrong passphrase" in text(app, "#deleg-result"), "the refusal")
        assert any(n.message.startswith("Revoke failed:") for n in app._notifications)
        assert app.model.automation_on is False and fake.delegate is not None
        assert "delegate   9xQe" in text(app, "#deleg-info")  # what the chain said stays on screen
        assert "set_user_delegate" not in text(app, "#deleg-result")  # plain words only


async def test_escape_drops_the_question_then_closes() -> None:
    app, _, fake = make()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _panel(pilot, app)
        await pilot.press("r", "escape")
        await until(pilot, lambda: not screen.armed, "the question dropped")
        assert isinstance(app.screen, DelegationScreen)
        await pilot.press("ctrl+y")
        await pilot.pause(0.2)
        assert not [c for c in fake.calls if c[0] == "revoke"]


async def test_manual_sign_mode_signs_each_order_by_hand() -> None:
    app, _, fake = make()
    async with app.run_test(size=(80, 24)) as pilot:
        await _panel(pilot, app)
        await pilot.press("m")
        await until(pilot, lambda: "MANUAL-SIGN" in text(app, "#deleg-info"), "manual-sign mode")
        assert ("manual_sign", True) in fake.calls and app.model.automation_on is False
        await until(pilot, lambda: "MANUAL SIGN" in text(app, "#topbar"), "the top bar's badge")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DelegationScreen), "the panel closed")
        await fill_order(pilot, app, "2", "145", "152")
        await pilot.press("ctrl+y")
        await until(pilot, lambda: isinstance(app.screen, HandSignScreen), "the hand-signing dialog")
        dialog = app.screen
        assert isinstance(dialog, HandSignScreen)
        await until(pilot, lambda: dialog.ready, "the summary")
        summary = text(app, "#sign-summary")
        assert "BUY 2 @ 145.0000" in summary and "trigger: below 145.0000" in summary
        assert not [c for c in fake.calls if c[0] == "submit"]  # the engine sends nothing itself
        await pilot.press(*"owner pass", "enter")
        await pilot.pause(0.2)
        assert not [c for c in fake.calls if c[0] == "hand_sign"]  # Enter never signs
        await pilot.press("ctrl+y", "ctrl+y")
        await until(pilot, lambda: "On chain." in text(app, "#sign-result"), "the signature")
        signed = [c[1] for c in fake.calls if c[0] == "hand_sign"]
        assert len(signed) == 1 and signed[0][1] == "owner pass" and signed[0][0].size == 2.0


async def test_hand_signing_waits_for_the_summary() -> None:
    """ctrl+y before the summary is on screen signs nothing."""
    app, _, fake = make()

    async def slow(order: Any) -> dict[str, Any]:
        await __import__("asyncio").sleep(3600)
        return {}

    fake.hand_summary = slow  # type: ignore[method-assign]
    fake.manual_sign = True  # switched on by another UI: the instance's status says so
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.manual_sign(), "the status")
        await fill_order(pilot, app, "2", "145")
        await pilot.press("ctrl+y")
        await until(pilot, lambda: isinstance(app.screen, HandSignScreen), "the hand-signing dialog")
        await pilot.press(*"owner pass", "ctrl+y")
        await pilot.pause(0.2)
        assert not [c for c in fake.calls if c[0] == "hand_sign"]
        app.workers.cancel_all()


def _armed(pilot: Pilot[Any]) -> Any:
    async def go(p: Pilot[Any]) -> None:
        await until(p, lambda: "delegate   9xQe" in text(p.app, "#deleg-info"), "the delegation")  # type: ignore[arg-type]
        await p.press("r")
        await p.pause(0.2)

    return go(pilot)


@SIZES
def test_delegation_panel(snap_compare: Any, size: tuple[int, int]) -> None:
    async def read(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: "delegate   9xQe" in text(pilot.app, "#deleg-info"), "the delegation")  # type: ignore[arg-type]
        await pilot.pause(0.1)

    assert snap_compare(app_with_data(), terminal_size=size, run_before=_dialog("g", DelegationScreen, read))


def test_delegation_panel_revoke_asks_80x24(snap_compare: Any) -> None:
    assert snap_compare(app_with_data(), terminal_size=(80, 24),
                        run_before=_dialog("g", DelegationScreen, _armed))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_hand_sign_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    async def summary(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, TraderApp)
        app.commands.manual_sign = True  # type: ignore[attr-defined]
        app.commands.automation_on = False  # type: ignore[attr-defined]
        await until(pilot, lambda: app.manual_sign() and "MANUAL SIGN" in text(app, "#topbar"), "the mode")
        await pilot.press("o")
        await pilot.pause(0.2)
        await pilot.press(*"2", "tab", *"145", "enter")
        await until(pilot, lambda: "would accept" in text(app, "#verdict"), "the verdict")
        await pilot.press("ctrl+y")
        await until(pilot, lambda: isinstance(app.screen, HandSignScreen) and app.screen.ready, "the summary")
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause(0.2)

    async def before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, TraderApp)
        await until(pilot, lambda: bool(app.status), "the first status")
        await summary(pilot)

    assert snap_compare(app_with_data(), terminal_size=size, run_before=before)
