"""The delegation panel (``g``) and the hand-signing dialog of manual-sign mode, both in 80×24.

The panel shows the delegate read from chain (when this app set it, its TTL), how the instance
signs, manual-sign mode and automation, and the keys: ``r`` revoke (asks again: the passphrase of
the owner's key, or the Ledger, then ``ctrl+y``; automation goes off at once), ``m`` manual-sign
mode on/off, ``escape`` close. In manual-sign mode the order form's ``ctrl+y`` opens
:class:`HandSignScreen`: the transaction's summary (the order, its stop and take-profits, as the
venue rounds them), the passphrase, ``ctrl+y`` signs. Like every screen they never call the
runtime: they ask the app (:class:`tui.commands.CommandsApp`), which hands the answers back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from core.delegation_text import delegation_lines
from core.ui_port import ManualOrder

if TYPE_CHECKING:
    from tui.commands import CommandsApp

KEYS = "r  revoke the delegate (owner-signed)     m  manual-sign mode on/off     esc  close"


def mode_lines(st: Mapping[str, Any]) -> list[str]:
    """How the instance signs now, in plain words."""
    auto = "on" if st.get("automation_on") else "off"
    if st.get("manual_sign"):
        how = "MANUAL-SIGN: every order is signed by hand by the owner (automation stays off)"
    elif st.get("signs_as") == "delegate":
        how = "the engine signs as the delegate key"
    else:
        how = "the engine signs with the OWNER key"
    return [f"signing    {how}", f"automation {auto}"]


def panel_text(st: Mapping[str, Any] | None, error: str = "") -> str:
    if error:
        return f"Cannot read the delegation: {error}"
    if st is None:
        return "Reading the delegation from the chain…"
    if not st.get("applicable", True):
        return str(st.get("text") or "no delegation on this venue")
    return "\n".join([*delegation_lines(st), *mode_lines(st)])


def _passphrase_hint(owner_signer: str) -> str:
    return ("Confirm on the Ledger when it asks." if owner_signer == "ledger"
            else "Type the owner key's passphrase below.")


class _OwnerSigned(ModalScreen[None]):
    """What both dialogs share: a passphrase field (hidden for a Ledger) and ctrl+y / escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+y", "confirm", "sign", id="owner.confirm"),
        Binding("escape", "close", "close", id="owner.close"),
    ]

    def __init__(self, owner_signer: str) -> None:
        super().__init__()
        self.owner_signer = owner_signer

    @property
    def trader(self) -> CommandsApp:
        return self.app  # type: ignore[return-value]

    def passphrase_input(self) -> ComposeResult:
        yield Input(password=True, placeholder="owner key passphrase (never stored)", id="owner-pass",
                    compact=True)

    def passphrase(self) -> str:
        field = self.query_one("#owner-pass", Input)
        value = field.value
        field.value = ""  # typed once per signature, never kept
        return value

    def action_close(self) -> None:
        self.dismiss()


class DelegationScreen(_OwnerSigned):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "revoke", "revoke", id="deleg.revoke"),
        Binding("m", "manual_sign", "manual-sign mode", id="deleg.manual_sign"),
    ]

    def __init__(self, owner_signer: str = "local") -> None:
        super().__init__(owner_signer)
        self.state: Mapping[str, Any] | None = None
        self.armed = False  # "r" pressed: ctrl+y revokes

    def compose(self) -> ComposeResult:
        with Vertical(id="deleg-box", classes="modal-box"):
            yield Label("DELEGATION — who may trade this account", classes="form-title")
            with VerticalScroll(id="deleg-scroll"):
                yield Static(panel_text(None), id="deleg-info")
                yield Static("", id="deleg-result")
            yield Static("", id="deleg-confirm")
            yield from self.passphrase_input()
            yield Static(KEYS, id="deleg-keys")

    def on_mount(self) -> None:
        self._disarm()
        self.trader.request_delegation()

    def show(self, st: Mapping[str, Any] | None, error: str = "", result: str = "") -> None:
        if st is not None:
            self.state = st
            self.owner_signer = str(st.get("owner_signer") or self.owner_signer)
        # an error before the first read says the delegation is unknown; a later one (a refused
        # revoke) leaves what the chain said on screen
        unknown = error if self.state is None else ""
        self.query_one("#deleg-info", Static).update(panel_text(self.state, unknown))
        self.query_one("#deleg-result", Static).update(result or (f"Failed: {error}" if error else ""))

    def _disarm(self) -> None:
        self.armed = False
        self.query_one("#deleg-confirm", Static).display = False
        self.query_one("#owner-pass", Input).display = False

    def action_revoke(self) -> None:
        st = self.state or {}
        if not st.get("applicable", False):
            self.notify(panel_text(st) if st else "The delegation is not read yet", timeout=5)
            return
        who = st.get("delegate") or "none (already revoked)"
        box = self.query_one("#deleg-confirm", Static)
        box.update(f"Revoke the delegate {who}? Automation goes off at once and the engine can no longer "
                   f"sign. {_passphrase_hint(self.owner_signer)} ctrl+y revokes, esc keeps it.")
        box.display = True
        self.armed = True
        field = self.query_one("#owner-pass", Input)
        field.display = self.owner_signer != "ledger"
        if field.display:
            field.focus()

    def action_confirm(self) -> None:
        if not self.armed:
            return
        secret = self.passphrase()
        self._disarm()
        self.query_one("#deleg-result", Static).update(
            "Automation off. Revoking: signing and waiting for the chain…")
        self.trader.request_revoke(secret)

    def action_manual_sign(self) -> None:
        st = self.state or {}
        if not st.get("applicable", False):
            self.notify(panel_text(st) if st else "The delegation is not read yet", timeout=5)
            return
        self.trader.request_manual_sign(not st.get("manual_sign"))

    def action_close(self) -> None:
        if self.armed:
            self._disarm()  # escape first drops the question, then closes
            return
        self.dismiss()


class HandSignScreen(_OwnerSigned):
    """Manual-sign mode: the order form's order, summarized as it will be signed, signed by hand."""

    def __init__(self, order: ManualOrder, owner_signer: str = "local") -> None:
        super().__init__(owner_signer)
        self.order = order
        self.ready = False  # the summary is on screen: ctrl+y may sign it
        self.sent = False

    def compose(self) -> ComposeResult:
        with Vertical(id="sign-box", classes="modal-box"):
            yield Label("SIGN BY HAND — the owner signs this transaction", classes="form-title")
            with VerticalScroll(id="sign-scroll"):
                yield Static("Building the transaction's summary…", id="sign-summary")
            yield Static("", id="sign-result")
            yield from self.passphrase_input()
            yield Static("ctrl+y  sign and send     esc  drop it", id="sign-keys")

    def on_mount(self) -> None:
        field = self.query_one("#owner-pass", Input)
        field.display = self.owner_signer != "ledger"
        if field.display:
            field.focus()
        self.trader.request_hand_summary(self.order)

    def show_summary(self, lines: list[str], error: str = "") -> None:
        if error:
            self.query_one("#sign-summary", Static).update(f"Cannot build the transaction: {error}")
            return
        self.query_one("#sign-summary", Static).update("\n".join(lines))
        self.query_one("#sign-result", Static).update(_passphrase_hint(self.owner_signer))
        self.ready = True

    def show_result(self, r: Mapping[str, Any] | None, error: str = "") -> None:
        lines = list((r or {}).get("lines") or [])[-3:]
        # a failed send may still land: never offer to sign it again from here
        head = ("On chain." if r and r.get("ok") else
                "NOT confirmed on chain (check the orders before signing again): " + (error or "see below"))
        self.query_one("#sign-result", Static).update("\n".join([head, *lines]))

    def action_confirm(self) -> None:
        if not self.ready or self.sent:
            return  # never signs what the user has not seen
        self.sent = True
        secret = self.passphrase()
        self.query_one("#sign-result", Static).update("Signing and waiting for the chain…")
        self.trader.request_hand_sign(self.order, secret)
