"""The app's commands: key actions, the workers that run :class:`core.ui_port.UiCommands`, and the
handler that turns their answers into what the user sees (toasts in plain words, the kill panel,
the order verdict). :class:`tui.app.TraderApp` adds the layout and the rendering."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import DataTable

from core.engine_types import EngineEvent
from core.guard_config import GuardsConfig
from core.ui_port import ManualOrder, OrderVerdict, UiCommands, UiInfo, UiSettings
from tui.delegation_panel import DelegationScreen, HandSignScreen
from tui.kill_panel import KillScreen
from tui.screens import DetailScreen, FilterScreen, HelpScreen, OrderScreen, QuitScreen, SettingsScreen
from tui.state import UiModel

#: what each command is called on screen (never an internal name)
WORDS = {
    "kill": "Kill switch", "flatten": "Flatten", "cancel_all": "Cancel everything", "resume": "Resume",
    "automation": "Automation", "preview": "Order review", "submit": "Manual order",
    "settings": "Saving the settings", "delegation": "Reading the delegation", "revoke": "Revoke",
    "manual_sign": "Manual-sign mode", "hand_summary": "The order's summary", "hand_sign": "Signing by hand",
}
UI_KILL_REASON = "kill switch (UI)"
#: bindings of other widgets, listed on the help screen
OTHER_KEYS = [("tab / shift+tab", "move the focus (every control works without a mouse)"),
              ("enter", "activity log: details of the selected row; forms: review (never sends)"),
              ("ctrl+y", "order form: send the order whose verdict is on screen"),
              ("escape", "close a dialog (an order is not sent)"),
              ("kill panel", "f flatten · c then y cancel everything · r resume · esc close"),
              ("delegation panel", "r revoke (passphrase, ctrl+y) · m manual-sign mode · esc close")]


DELEGATION_ANSWERS = ("delegation", "revoke", "manual_sign", "hand_summary", "hand_sign")


class CommandDone(Message):
    """The answer of a command run in a worker (``error`` set when it raised)."""

    def __init__(self, name: str, result: Any = None, error: str = "", context: Any = None) -> None:
        super().__init__()
        self.name = name
        self.result = result
        self.error = error
        self.context = context


class CommandsApp(App[int]):
    KILL_HINT = ""  # said after a kill that failed (an attached UI: how to kill without it)

    # set by TraderApp
    commands: UiCommands
    info: UiInfo
    guards_cfg: GuardsConfig
    keymap_cfg: dict[str, str]
    status: dict[str, Any]
    kill_note: str
    log_filter: str
    #: the last delegation answer (manual-sign mode, the owner's signer); empty until read
    delegation_state: dict[str, Any]

    @property
    def model(self) -> UiModel:
        raise NotImplementedError("TraderApp provides the model")

    # rendering hooks (TraderApp)
    def _render_topbar(self) -> None:
        raise NotImplementedError("TraderApp renders the top bar")

    def _render_guardline(self) -> None:
        raise NotImplementedError("TraderApp renders the guard line")

    def _render_status(self) -> None:
        raise NotImplementedError("TraderApp renders the tables")

    def _render_activity(self) -> None:
        raise NotImplementedError("TraderApp renders the activity log")

    def _automation(self) -> bool | None:
        raise NotImplementedError("TraderApp knows the automation state")

    def selected_event(self) -> EngineEvent | None:
        raise NotImplementedError("TraderApp knows the selected row")

    def poll_status(self) -> Any:
        raise NotImplementedError("TraderApp polls the status")

    # ------------------------------------------------------------------ answers
    def kill_panel(self) -> KillScreen | None:
        for s in self.screen_stack:
            if isinstance(s, KillScreen):
                return s
        return None

    @on(CommandDone)
    def _command_done(self, msg: CommandDone) -> None:
        if not self.screen_stack:
            return
        try:
            self._command_done_once(msg)
        except NoMatches:  # the screen is being torn down
            return

    def _command_done_once(self, msg: CommandDone) -> None:
        panel = self.kill_panel()
        if msg.name == "status":
            if not msg.error:
                self.status = msg.result
                if "manual_sign" in self.delegation_state:  # the instance's word is the latest
                    self.delegation_state["manual_sign"] = bool(self.status.get("manual_sign"))
                self._render_status()
                self._render_topbar()
                if panel is not None:
                    panel.show_status(self.status)
            return
        if msg.name == "guards":
            if not msg.error:
                self.model.guard = msg.result
                self._render_guardline()
            return
        if msg.name in DELEGATION_ANSWERS:
            self._delegation_answer(msg)
            return
        word = WORDS.get(msg.name, msg.name)
        if msg.error:
            self.notify(f"{word} failed: {msg.error}", severity="error", timeout=8)
            if msg.name in ("kill", "flatten", "cancel_all"):
                self.kill_note = f"KILL FAILED: {msg.error}{self.KILL_HINT}" if msg.name == "kill" else \
                    self.kill_note
                self._render_guardline()
                if panel is not None:
                    panel.show_result(None, msg.error + self.KILL_HINT)
            return
        r = msg.result or {}
        if msg.name in ("kill", "flatten", "cancel_all"):
            self._kill_answer(msg.name, r, panel)
        elif msg.name == "resume":
            self._resumed(r)
        elif msg.name == "automation":
            self.model.automation_on = bool(r.get("automation_on"))
            self.notify(f"Automation {'on' if r.get('automation_on') else 'off'}", timeout=3)
        elif msg.name == "preview":
            screen = self.screen
            if isinstance(screen, OrderScreen) and isinstance(r, OrderVerdict):
                screen.show_verdict(msg.context, r)
        elif msg.name == "submit":
            status = r.get("status", "?")
            why = "; ".join(r.get("reasons") or [])
            self.notify(f"Manual order {status}" + (f": {why}" if why else ""),
                        severity="information" if status == "accepted" else "warning", timeout=8)
        elif msg.name == "settings":
            self.notify("Settings saved", timeout=3)
        self._render_topbar()
        self.poll_status()

    def _screen_of(self, kind: type[Any]) -> Any:
        for s in reversed(self.screen_stack):
            if isinstance(s, kind):
                return s
        return None

    def _delegation_answer(self, msg: CommandDone) -> None:
        """The delegation panel's and the hand-signing dialog's answers."""
        panel = self._screen_of(DelegationScreen)
        word = WORDS[msg.name]
        r = msg.result if isinstance(msg.result, dict) else {}
        if msg.name == "hand_summary":
            dialog = self._screen_of(HandSignScreen)
            if dialog is not None and msg.context is dialog.order:
                dialog.show_summary(list(r.get("lines") or []), msg.error)
            return
        if msg.name == "hand_sign":
            dialog = self._screen_of(HandSignScreen)
            if dialog is not None:
                dialog.show_result(r if not msg.error else None, msg.error)
            ok = r.get("ok") and not msg.error
            self.notify("Order signed by hand: on chain" if ok else f"{word}: NOT confirmed on chain"
                        + (f": {msg.error}" if msg.error else ""),
                        severity="information" if ok else "error", timeout=8)
            self.poll_status()
            return
        if msg.error:
            if msg.name != "delegation":
                self.notify(f"{word} failed: {msg.error}", severity="error", timeout=8)
            if panel is not None:
                panel.show(None, msg.error)
            if msg.name == "revoke":
                self.model.automation_on = False  # turned off before the revoke was signed
                self._render_topbar()
            return
        self.delegation_state = {**self.delegation_state, **r}
        if "automation_on" in r:
            self.model.automation_on = bool(r["automation_on"])
        if msg.name == "revoke":
            self.notify("Delegate revoked on chain; automation off", severity="warning", timeout=8)
        elif msg.name == "manual_sign":
            on = bool(r.get("manual_sign"))
            self.notify("Manual-sign mode on: you sign every order; automation off" if on else
                        "Manual-sign mode off", timeout=6)
        if panel is not None:
            done = {"revoke": "Revoked: confirmed on chain.", "manual_sign": ""}.get(msg.name, "")
            panel.show(self.delegation_state, result=done)
        self._render_topbar()

    def _kill_answer(self, name: str, r: Mapping[str, Any], panel: KillScreen | None) -> None:
        shown = {**r, "flatten_asked": name == "flatten", "cancel_all_asked": name == "cancel_all"}
        n = r.get("cancelled", 0)
        word = "confirmed" if r.get("confirmed") else "pending (retrying)" if r.get("pending") else \
            "NOT confirmed"
        if name == "kill":
            self.kill_note = (f"KILLED again: {n} more order(s) cancelled, {word}" if r.get("already") else
                              f"KILLED: {n} order(s) cancelled, {word}")
        elif name == "flatten":
            flat = "position closed" if r.get("flattened") else "position NOT closed yet"
            self.notify(f"Flatten: {flat}, {word}", severity="warning", timeout=8)
        else:
            self.notify(f"Cancel everything: {n} order(s) cancelled, {word}", severity="warning", timeout=8)
        self._render_guardline()
        if panel is not None:
            panel.show_result(shown)

    def _resumed(self, r: Mapping[str, Any]) -> None:
        state = str(r.get("trading_state", "?")).upper()
        if state == "ACTIVE":
            self.kill_note = ""
            self.notify("Trading resumed (ACTIVE); automation stays off: a turns it on", timeout=8)
            panel = self.kill_panel()
            if panel is not None:
                panel.dismiss()
        else:
            why = r.get("reason") or "see the top bar"
            self.notify(f"Still {state}: {why}", severity="warning", timeout=10)
        self.model.trading_state = str(r.get("trading_state", self.model.trading_state))
        self._render_guardline()

    @work(group="commands")
    async def _run(self, name: str, coro: Any, context: Any = None) -> None:
        try:
            result = await coro
        except Exception as e:
            self.post_message(CommandDone(name, error=str(e) or type(e).__name__, context=context))
            return
        self.post_message(CommandDone(name, result, context=context))

    # ------------------------------------------------------------------ keys
    def action_kill(self) -> None:
        """No question: the kill starts at once; the panel shows what it did and the next keys."""
        self.kill_note = "KILL SENT…"
        self.model.trading_state = "halted"
        self._render_topbar()
        self._render_guardline()
        self._run("kill", self.commands.kill(UI_KILL_REASON))
        panel = self.kill_panel()
        if panel is None:
            self.push_screen(KillScreen(UI_KILL_REASON, self.status))
        else:
            panel.show_result(None)

    def action_toggle_automation(self) -> None:
        on = not bool(self._automation())
        self._run("automation", self.commands.set_automation(on))

    def action_delegation(self) -> None:
        self.push_screen(DelegationScreen(str(self.delegation_state.get("owner_signer") or "local")))

    def action_order(self) -> None:
        self.push_screen(OrderScreen())

    def action_settings(self) -> None:
        self.push_screen(SettingsScreen(self.commands.settings(), self.guards_cfg.max_leverage))

    def action_filter(self) -> None:
        kinds = sorted({ev.kind for ev in self.model.events})

        def chosen(kind: str | None) -> None:
            if kind is not None:
                self.log_filter = kind
                self._render_activity()

        self.push_screen(FilterScreen(kinds, self.log_filter), chosen)

    async def action_quit(self) -> None:
        """Quit after the dialog that says what stays on the venue (``engine.on_exit``)."""
        if isinstance(self.screen, QuitScreen):
            return

        def chosen(quit_: bool | None) -> None:
            if quit_:
                self.exit()

        self.push_screen(QuitScreen(self.info.on_exit, self.status), chosen)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.binding_rows(), [text for _, text in self.info.chapters]))

    def binding_rows(self) -> list[tuple[str, str]]:
        rows = []
        for b in self.BINDINGS:
            assert isinstance(b, Binding)
            key = self.keymap_cfg.get(b.id or "", b.key)
            rows.append((self.get_key_display(Binding(key.split(",")[0], ""))
                         + (f" ({b.id})" if b.id else ""), b.description))
        return rows + OTHER_KEYS

    @on(DataTable.RowSelected, "#activity")
    def _details(self) -> None:
        ev = self.selected_event()
        if ev is not None:
            self.push_screen(DetailScreen(ev))

    # ------------------------------------------------------------------ the screens call these
    def request_preview(self, order: ManualOrder) -> None:
        self._run("preview", self.commands.preview_order(order), context=order)

    def request_submit(self, order: ManualOrder) -> None:
        if self.manual_sign():  # manual-sign mode: the owner signs it by hand
            signer = str(self.delegation_state.get("owner_signer") or "local")
            self.call_later(self.push_screen, HandSignScreen(order, signer))
            return
        self._run("submit", self.commands.submit_order(order), context=order)

    def manual_sign(self) -> bool:
        """Manual-sign mode, as the panel's last answer or the instance's status says (the status
        tells every attached UI, including one that did not switch it; the instance refuses the
        engine's path in that mode anyway)."""
        return bool(self.delegation_state.get("manual_sign") or self.status.get("manual_sign"))

    def request_delegation(self) -> None:
        self._run("delegation", self.commands.delegation())

    def request_revoke(self, passphrase: str) -> None:
        self.model.automation_on = False  # the instance turns it off before anything is signed
        self._render_topbar()
        self._run("revoke", self.commands.revoke_delegation(passphrase))

    def request_manual_sign(self, on: bool) -> None:
        self._run("manual_sign", self.commands.set_manual_sign(on))

    def request_hand_summary(self, order: ManualOrder) -> None:
        self._run("hand_summary", self.commands.hand_summary(order), context=order)

    def request_hand_sign(self, order: ManualOrder, passphrase: str) -> None:
        self._run("hand_sign", self.commands.hand_sign(order, passphrase), context=order)

    def request_save_settings(self, settings: UiSettings) -> None:
        self._run("settings", self.commands.save_settings(settings), context=settings)

    def request_flatten(self) -> None:
        self._run("flatten", self.commands.flatten("flatten from the kill panel"))

    def request_cancel_all(self) -> None:
        self._run("cancel_all", self.commands.cancel_all("cancel everything from the kill panel"))

    def request_resume(self) -> None:
        self._run("resume", self.commands.resume())
