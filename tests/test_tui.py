"""The terminal UI with Pilot: every binding and flow (kill, automation, manual order confirm and
cancel, log filter, details, settings validation, help, remapping) and the render throttle."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Label, OptionList, Static

from core.bus import Bus, Topics
from core.engine_types import ENGINE_EVENTS, EngineEvent
from core.models import BookTop
from tests.tui_fixtures import INFO, FakeCommands, guards_cfg, populate
from tui.app import TraderApp
from tui.kill_panel import KillScreen
from tui.screens import DetailScreen, FilterScreen, HelpScreen, OrderScreen, QuitScreen, SettingsScreen
from tui.widgets import Panel

SIZE = (120, 40)


def make(keymap: dict[str, str] | None = None, **kw: Any) -> tuple[TraderApp, Bus, FakeCommands]:
    bus = Bus()
    fake = FakeCommands(**kw)
    app = TraderApp(bus, fake, INFO, guards_cfg(), keymap=keymap, tick_s=0.05, status_every_s=0.1)
    populate(bus)
    return app, bus, fake


def text(app: TraderApp, selector: str) -> str:
    """The text of a widget of the screen on top, else of the main screen (under a dialog)."""
    found = app.screen.query(selector)
    w = found.first() if found else app.screen_stack[0].query_one(selector)
    r = w.render()
    return str(getattr(r, "plain", r))


async def settle(pilot: Pilot[Any], n: int = 3) -> None:
    for _ in range(n):
        await pilot.pause(0.06)


async def test_panels_show_data() -> None:
    app, _, _ = make()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        top = text(app, "#topbar")
        assert "synthetic demo" in top and "PAPER" in top and "auto ON" in top and "ACTIVE" in top
        assert "binance 0.0s" in top and "okx 2.2s" in top
        assert "0.67 bps" in text(app, "#card-spread")
        assert app.query_one("#card-depth").border_subtitle == "WARN"  # 40k < 50k min: written out
        assert app.query_one("#card-depth").has_class("-warning")
        assert "10.95%" in text(app, "#card-funding")
        assert "GUARDS WARNING" in text(app, "#guardline") and "depth(10bps)" in text(app, "#guardline")
        assert "●" in text(app, "#price") and "VWAP" in text(app, "#price")
        heat = text(app, "#heatmap")
        assert "◀" in heat and "USD · cell 25 bps" in heat
        assert "142.50" in text(app, "#clusters")
        assert any(ch in text(app, "#oi") for ch in "▁▂▃▄▅▆▇█")
        act = app.query_one("#activity", DataTable)
        assert act.row_count == 6
        assert act.get_row_at(0)[1] == "guard_block"  # newest first
        assert app.query_one("#orders", DataTable).row_count == 2
        assert app.query_one("#positions", DataTable).get_row_at(0)[1] == "+8.5"


async def test_activity_starts_with_the_history_without_duplicates() -> None:
    """Earlier sessions' events come first; an event both in the history and still queued on the
    bus is shown once."""
    old = [EngineEvent(kind="kill_switch", intent_id="", ts=1_000, data={"reason": "yesterday"}),
           EngineEvent(kind="order_filled", intent_id="i0", ts=2_000, data={"role": "entry"})]
    app, bus, _ = make(history=old)
    bus.publish(ENGINE_EVENTS, old[1])  # this session's event, already written to the log
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        act = app.query_one("#activity", DataTable)
        assert act.row_count == 6 + 2
        kinds = [act.get_row_at(i)[1] for i in range(act.row_count)]
        assert kinds[-2:] == ["order_filled", "kill_switch"]  # oldest last (newest first)
        assert kinds.count("order_filled") == 2  # the fixed market's own fill + the history's one


async def test_kill_switch_ctrl_k_no_confirmation() -> None:
    app, _, fake = make()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+k")
        await settle(pilot)
        assert fake.calls[0][0] == "kill"  # at once: the panel asks nothing before
        assert "HALTED" in text(app, "#topbar")
        assert "KILLED: 1 order(s) cancelled, confirmed" in text(app, "#guardline")
        orders = app.query_one("#orders", DataTable)
        assert orders.row_count == 1 and orders.get_row_at(0)[0] == "sl1"  # the stop stays
        assert "open orders · 1" in str(orders.border_title)
        assert isinstance(app.screen, KillScreen)
        panel = text(app, "#kill-venue")
        assert "Position +8.5 SOL @ 149.14 USD" in panel and "sl1 sell trigger_market 8.5 @ 143.29" in panel
        assert "1 order(s) cancelled, confirmed by the venue in 12 ms" in text(app, "#kill-result")
        assert "set_trading_state" not in " ".join(n.message for n in app._notifications)


async def test_kill_panel_flatten() -> None:
    app, _, fake = make()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+k")
        await settle(pilot)
        await pilot.press("enter")  # nothing on enter: every choice has its own key
        await settle(pilot)
        assert [c[0] for c in fake.calls] == ["kill"]
        await pilot.press("f")
        await settle(pilot)
        assert [c[0] for c in fake.calls] == ["kill", "flatten"]
        assert "The position is closed" in text(app, "#kill-result")
        await settle(pilot, 6)
        assert "Position: flat" in text(app, "#kill-venue")
        assert any("Flatten: position closed, confirmed" in n.message for n in app._notifications)


async def test_kill_panel_cancel_everything_takes_a_second_key() -> None:
    app, _, fake = make()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+k")
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert "would have NO stop" in text(app, "#kill-confirm")
        await pilot.press("x")  # any other key keeps the stop
        await settle(pilot)
        assert not app.screen.query_one("#kill-confirm").display
        assert "cancel_all" not in [c[0] for c in fake.calls]
        await pilot.press("c", "y")
        await settle(pilot)
        assert [c[0] for c in fake.calls] == ["kill", "cancel_all"]
        assert "WITHOUT a stop" in text(app, "#kill-result")


async def test_kill_panel_resume_and_a_second_kill() -> None:
    app, _, fake = make()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+k")
        await settle(pilot)
        await pilot.press("ctrl+k")  # again: says it was already halted and what it did this time
        await settle(pilot)
        assert "KILLED again: 0 more order(s) cancelled" in text(app, "#guardline")
        again = text(app, "#kill-result")
        assert "already HALTED (kill switch (UI)); this kill cancelled 0 order(s)" in again
        await pilot.press("r")
        await settle(pilot, 6)
        assert fake.calls[-1][0] == "resume"
        assert not isinstance(app.screen, KillScreen)  # resumed: the panel closes
        assert "ACTIVE" in text(app, "#topbar") and "KILLED" not in text(app, "#guardline")
        assert any("Trading resumed (ACTIVE); automation stays off" in n.message for n in app._notifications)


async def test_kill_works_from_inside_a_form() -> None:
    app, _, fake = make()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        await settle(pilot)
        assert isinstance(app.screen, OrderScreen)
        await pilot.press("ctrl+k")  # priority binding: even with an Input focused
        await settle(pilot)
        assert [c[0] for c in fake.calls] == ["kill"]


async def test_kill_remapped_from_config() -> None:
    app, _, fake = make(keymap={"kill": "ctrl+x"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+k")
        await settle(pilot)
        assert fake.calls == []
        await pilot.press("ctrl+x")
        await settle(pilot)
        assert fake.calls[0][0] == "kill"
        await pilot.press("escape")  # the kill panel closes (trading stays halted)
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        help_text = text(app, "#help-text")
        kill_line = next(line for line in help_text.splitlines() if "(kill)" in line)
        assert "x" in kill_line.split("(kill)")[0].lower() and "k" not in kill_line.split("(kill)")[0].lower()


async def test_toggle_automation() -> None:
    app, _, fake = make()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert ("automation", False) in fake.calls
        assert "auto off" in text(app, "#topbar")
        await pilot.press("a")
        await settle(pilot)
        assert ("automation", True) in fake.calls
        assert "auto ON" in text(app, "#topbar")


async def test_automation_refused_after_kill_is_shown() -> None:
    app, _, fake = make()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+k")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert ("automation", True) in fake.calls
        assert "auto off" in text(app, "#topbar")
        assert any("Automation failed: the kill switch is engaged: resume trading first" in n.message
                   for n in app._notifications)


async def fill_order(pilot: Pilot[Any], app: TraderApp, size: str, sl: str, tps: str = "") -> None:
    await pilot.press("o")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, OrderScreen)
    screen.query_one("#in-size", Input).value = size
    screen.query_one("#in-sl", Input).value = sl
    screen.query_one("#in-tps", Input).value = tps
    await pilot.click("#review")
    await settle(pilot)


async def test_manual_order_confirm() -> None:
    app, _, fake = make()
    async with app.run_test(size=SIZE) as pilot:
        await fill_order(pilot, app, "2", "145", "152 154")
        screen = app.screen
        assert isinstance(screen, OrderScreen)
        verdict = text(app, "#verdict")
        assert "guards PASSING" in verdict and "would accept" in verdict
        assert not screen.query_one("#confirm", Button).disabled
        assert not screen.query_one("#confirm", Button).has_focus  # never focused for the user
        await pilot.press("ctrl+y")  # keyboard only: the deliberate send key
        await settle(pilot)
        submitted = [c[1] for c in fake.calls if c[0] == "submit"]
        assert len(submitted) == 1
        o = submitted[0]
        assert (o.side, o.size, o.sl, o.price, o.tps) == ("buy", 2.0, 145.0, None, (152.0, 154.0))
        assert not isinstance(app.screen, OrderScreen)
        assert any("Manual order accepted" in n.message for n in app._notifications)


async def test_enter_enter_never_sends() -> None:
    """Enter reviews, a second Enter reviews again: only ctrl+y (or Confirm chosen) sends."""
    app, _, fake = make()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("o")
        await settle(pilot)
        await pilot.press("2", "tab", "1", "4", "5", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OrderScreen)
        assert "would accept" in text(app, "#verdict")
        await pilot.press("enter", "enter")
        await settle(pilot)
        assert isinstance(app.screen, OrderScreen) and not [c for c in fake.calls if c[0] == "submit"]
        assert [c[0] for c in fake.calls].count("preview") == 3
        verdict = screen.query_one("#verdict")
        assert verdict.region.bottom <= 24 and screen.query_one("#confirm").region.bottom <= 24  # on screen
        await pilot.press("ctrl+y")
        await settle(pilot)
        assert [c[1].size for c in fake.calls if c[0] == "submit"] == [2.0]


async def test_manual_order_refused_verdict_then_cancel() -> None:
    app, _, fake = make(verdict_ok=False)
    async with app.run_test(size=SIZE) as pilot:
        await fill_order(pilot, app, "2", "145")
        verdict = text(app, "#verdict")
        assert "REFUSE" in verdict and "spread 12 bps" in verdict
        await pilot.click("#cancel")
        await settle(pilot)
        assert not isinstance(app.screen, OrderScreen)
        assert [c[0] for c in fake.calls] == ["preview"]


async def test_manual_order_escape_cancels_and_edit_needs_new_review() -> None:
    app, _, fake = make()
    async with app.run_test(size=SIZE) as pilot:
        await fill_order(pilot, app, "2", "145")
        screen = app.screen
        assert isinstance(screen, OrderScreen)
        screen.query_one("#in-size", Input).value = "3"
        await settle(pilot)
        assert screen.query_one("#confirm", Button).disabled  # changed after review: review again
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, OrderScreen)
        assert all(c[0] != "submit" for c in fake.calls)


async def test_manual_order_inline_errors() -> None:
    app, _, fake = make()
    async with app.run_test(size=SIZE) as pilot:
        await fill_order(pilot, app, "abc", "")
        screen = app.screen
        assert "not a number" in str(screen.query_one("#err-size", Label).render())
        assert "required" in str(screen.query_one("#err-sl", Label).render())
        assert fake.calls == []


async def test_log_filter_and_details() -> None:
    app, _, _ = make()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, FilterScreen)
        ol = app.screen.query_one(OptionList)
        kinds = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        assert kinds[0] == "all" and "order_filled" in kinds
        ol.highlighted = kinds.index("order_filled")
        await pilot.press("enter")
        await settle(pilot)
        act = app.query_one("#activity", DataTable)
        assert act.row_count == 1 and act.get_row_at(0)[1] == "order_filled"
        assert "order_filled" in str(act.border_title)
        act.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert "avg_price" in text(app, "#detail-text")
        await pilot.press("escape")
        await pilot.press("f")
        await settle(pilot)
        await pilot.press("home", "enter")  # back to all
        await settle(pilot)
        assert app.query_one("#activity", DataTable).row_count == 6


async def test_settings_validation_inline_and_save() -> None:
    app, _, fake = make()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        assert screen.query_one("#in-leverage", Input).value == "3"
        screen.query_one("#in-leverage", Input).value = "9"  # above guards.max_leverage 5
        screen.query_one("#in-risk_per_trade_pct", Input).value = "x"
        screen.query_one("#in-priority_fee_cap", Input).value = "-1"
        await pilot.click("#save")
        await settle(pilot)
        assert isinstance(app.screen, SettingsScreen)
        errs = {n: str(screen.query_one(f"#err-{n}", Label).render()) for n in
                ("leverage", "risk_per_trade_pct", "priority_fee_cap", "daily_stop_pct")}
        assert "guards.max_leverage" in errs["leverage"]
        assert "not a number" in errs["risk_per_trade_pct"]
        assert ">= 0" in errs["priority_fee_cap"]
        assert errs["daily_stop_pct"] == ""
        assert fake.saved is None
        screen.query_one("#in-leverage", Input).value = "4"
        screen.query_one("#in-risk_per_trade_pct", Input).value = "0.75"
        screen.query_one("#in-priority_fee_cap", Input).value = "0"
        await pilot.click("#save")
        await settle(pilot)
        assert not isinstance(app.screen, SettingsScreen)
        assert fake.saved is not None
        saved = fake.saved
        assert (saved.leverage, saved.risk_per_trade_pct, saved.priority_fee_cap) == (4.0, 0.75, 0.0)
        await pilot.press("s")
        await settle(pilot)
        assert app.screen.query_one("#in-leverage", Input).value == "4"  # the saved value comes back
        await pilot.press("escape")


async def test_help_lists_every_binding_and_quit() -> None:
    app, _, _ = make()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        body = text(app, "#help-text")
        for b in TraderApp.BINDINGS:
            assert f"({b.id})" in body and b.description in body  # type: ignore[union-attr]
        assert "tab" in body and "escape" in body
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, QuitScreen)  # what stays on the venue, then q again quits
        await pilot.press("q")
        await settle(pilot)
    assert app.return_code == 0


async def test_quit_dialog_shows_what_stays_on_the_venue() -> None:
    app, _, _ = make()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        while not app.status:
            await pilot.pause(0.05)
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, QuitScreen)
        body = text(app, "#quit-text")
        assert "keep_protection" in body and "Stays on the venue:" in body
        assert "sl1 sell trigger_market 8.5 @ 143.29 reduce-only" in body and "tp1 sell limit 4.25" in body
        assert "Position +8.5 stays open, protected by the stop." in body
        await pilot.press("escape")  # stay
        await settle(pilot)
        assert not isinstance(app.screen, QuitScreen) and app.is_running
    cancel_all = QuitScreen("cancel_all", {"open_orders": [{"tag": "x:sl1", "side": "sell", "type":
                            "trigger_market", "size": 1.0, "trigger_price": 99.0, "reduce_only": True}],
                            "position": {"size": 1.0}})
    assert "WITHOUT a stop" in cancel_all.body() and "Stays on the venue: no order" in cancel_all.body()


async def test_toasts_for_fills_stops_blocks_and_kills() -> None:
    app, bus, _ = make()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        n0 = len(app._notifications)
        for kind, data in (("order_filled", {"role": "entry", "filled": 1.0, "avg_price": 150.0}),
                           ("sl_hit", {"trigger": 145.0, "size": 1.0}),
                           ("guard_block", {"stage": "entry", "reason": "spread"}),
                           ("kill_switch", {"stage": "engaged", "reason": "test"}),
                           ("order_submitted", {"role": "entry"})):
            bus.publish(ENGINE_EVENTS, EngineEvent(kind=kind, intent_id="x", ts=1, data=data))
        await settle(pilot)
        titles = [n.title for n in list(app._notifications)[n0:]]
        assert titles == ["Fill", "Stop", "Guard block", "Kill switch"]


async def test_render_is_throttled() -> None:
    """300 book updates over ~10 ticks repaint the spread card at most once per tick."""
    app, bus, _ = make()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        card = app.query_one("#card-spread", Panel)
        before, ticks0 = card.updates, app._ticks
        for k in range(300):
            bus.publish(Topics.BOOK, BookTop(venue="binance", symbol="SOLUSDT",
                                             timestamp=2_000_000_000_000 + k,
                                             update_id=k, bid_px=150, bid_qty=1, ask_px=150.01 + k * 1e-4,
                                             ask_qty=1, spread_bps=0.5 + k / 100, bid_usd=1e6, ask_usd=1e6))
            if k % 30 == 0:
                await pilot.pause(0.05)
        await settle(pilot)
        repaints, ticks = card.updates - before, app._ticks - ticks0
        assert 1 <= repaints <= ticks
        assert "3.49 bps" in text(app, "#card-spread")  # the latest value wins


async def test_narrow_terminal_80x24_keeps_every_panel() -> None:
    app, _, _ = make()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.has_class("-narrow")
        for sel in ("#topbar", "#guardline", "#price", "#heatmap", "#clusters", "#oi", "#activity",
                    "#positions", "#orders", "#card-liq"):
            w = app.query_one(sel)
            assert w.region.width > 0 and w.region.height > 0, sel
        assert isinstance(app.query_one("#topbar", Static), Static)


async def test_no_color_keeps_levels_readable(monkeypatch: Any) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app, _, _ = make()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.no_color
        assert app.query_one("#card-depth").border_subtitle == "WARN"  # written, not only coloured
        assert "GUARDS WARNING" in text(app, "#guardline")
        assert "●binance" in text(app, "#topbar")
        await pilot.press("ctrl+k")
        await settle(pilot)
        assert "HALTED" in text(app, "#topbar")


async def test_unknown_orders_and_the_delegate_from_the_chain_are_shown() -> None:
    app, _, fake = make()
    sig = "5" * 88
    fake.orders.append({"order_id": "i9:e1", "tag": "i9:e1", "side": "buy", "type": "limit", "size": 1.0,
                        "price": 149.0, "trigger_price": None, "reduce_only": False, "status": "unknown"})
    base = fake.trading_status

    async def status() -> dict[str, Any]:
        d = await base()
        d["unknown_orders"] = [{"order_id": "i9:e1", "tag": "i9:e1", "signatures": [sig]}]
        d["delegation"] = {"badge": "DELEGATE REVOKED", "ok": False, "delegate": None}
        d["equity"], d["equity_source"] = 9_876.5, "drift: total collateral (initial weights, all markets)"
        return d

    fake.trading_status = status  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, 6)
        top = text(app, "#topbar")
        assert "UNKNOWN 1" in top and "DELEGATE REVOKED" in top
        table = app.query_one("#orders", DataTable)
        cells = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert "e1 UNKNOWN" in cells
        title = str(app.query_one("#positions", DataTable).border_title)  # shortened to fit its panel
        assert "9,876" in title and "(venue)" in title


async def test_top_bar_says_why_trading_is_reducing() -> None:
    app, _, cmds = make()

    async def failing() -> dict[str, Any]:
        return {"trading_state": "reducing", "automation_on": True,
                "trading_reason": "storage: journal write failed: database or disk is full",
                "storage": {"ok": False, "reason": "storage: journal write failed: database or disk is full"},
                "open_orders": []}

    cmds.trading_status = failing  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        while app.status.get("trading_state") != "reducing":
            await pilot.pause(0.05)
        await settle(pilot)
        bar = text(app, "#topbar")
        assert "REDUCING" in bar and "disk is full" in bar


@pytest.mark.parametrize(
    ("state", "want"),
    [("paused", "VENUE PAUSED: not even cancels can be sent"), ("reduce_only", "VENUE REDUCE-ONLY")],
)
async def test_top_bar_says_when_the_venue_refuses_orders(state: str, want: str) -> None:
    app, _, cmds = make()
    base = cmds.trading_status

    async def status() -> dict[str, Any]:
        d = await base()
        d["venue"] = {"name": "drift", "state": state, "reason": "exchange fully paused (0xFF)"}
        return d

    cmds.trading_status = status  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(400):  # bounded: the status poll runs on a timer
            if (app.status.get("venue") or {}).get("state") == state:
                break
            await pilot.pause(0.05)
        await settle(pilot)
        assert want in text(app, "#topbar")
