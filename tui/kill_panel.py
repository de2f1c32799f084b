"""The panel ``ctrl+k`` opens at once (the kill itself asks nothing): what the kill did, the
position, what is still on the venue, and the next keys — ``f`` flatten (a reduce-only market close,
confirmed by the venue), ``c`` then ``y`` cancel everything (the stop too: a deliberate second
key), ``r`` resume (automation stays off), ``escape`` close the panel (trading stays HALTED).

Like every screen it never calls the runtime: it asks the app, which runs the command through
:class:`core.ui_port.UiCommands` and hands the answers back (:meth:`KillScreen.show_result`,
:meth:`KillScreen.show_status`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from core.exit_policy import order_line

if TYPE_CHECKING:
    from tui.app import TraderApp

KEYS = ("f  flatten: close the position now (reduce-only market order)\n"
        "c  cancel everything on the venue, the stop too (asks again)\n"
        "r  resume trading (automation stays off)     esc  close this panel")


def _n(x: object, fmt: str = "g") -> str:
    return format(x, fmt) if isinstance(x, int | float) else "?"


def result_text(r: Mapping[str, Any] | None, error: str = "") -> str:
    """What the last kill command did, in plain words."""
    if error:
        return f"The kill did NOT go through: {error}"
    if r is None:
        return "Kill sent: cancelling entries and take-profits (the stop of a position stays)…"
    what = ("flatten" if r.get("flatten_asked") else "cancel everything" if r.get("cancel_all_asked")
            else "kill")
    if r.get("pending"):
        return f"{what}: the venue has not confirmed yet; the instance keeps retrying."
    n = r.get("cancelled", 0)
    conf = "confirmed by the venue" if r.get("confirmed") else "NOT confirmed by the venue"
    ms = f" in {_n(r.get('elapsed_ms'), '.0f')} ms" if r.get("elapsed_ms") is not None else ""
    if r.get("already") and what == "kill":
        lines = [f"Trading was already HALTED ({r.get('reason')}); this kill cancelled {n} order(s), {conf}."]
    else:
        lines = [f"{what.capitalize()}: {n} order(s) cancelled, {conf}{ms}."]
    if r.get("flattened") and r.get("flatten_asked"):
        lines.append("The position is closed (flat).")
    if r.get("unprotected"):
        lines.append("The position is left WITHOUT a stop.")
    elif r.get("kept") and not r.get("flattened"):
        lines.append("The stop of the position stays on the venue (c then y cancels it too).")
    if r.get("unknown_orders"):
        lines.append(f"{r['unknown_orders']} order(s) still UNKNOWN (their transaction may land): "
                     "ctrl+k again retries.")
    for e in list(r.get("errors") or [])[-2:]:
        lines.append(f"venue error: {e}")
    return "\n".join(lines)


def venue_text(status: Mapping[str, Any]) -> str:
    """The position and what is still on the venue (from the trading status)."""
    if not status:
        return "Position: waiting for the venue…"
    p = status.get("position") or {}
    size = p.get("size") or 0.0
    orders = list(status.get("open_orders") or [])
    if size:
        upnl = status.get("unrealized_pnl")
        lines = [f"Position {size:+g} SOL @ {_n(p.get('avg_price'), ',.2f')} USD"
                 + (f", unrealized {upnl:+,.2f} USD" if isinstance(upnl, int | float) else "")]
    else:
        lines = ["Position: flat"]
    def is_stop(o: Mapping[str, Any]) -> bool:
        return str(o.get("type", "")).startswith("trigger") and bool(o.get("reduce_only"))

    stop = any(is_stop(o) for o in orders)
    lines.append("Still on the venue:" if orders else "Still on the venue: no order")
    lines += [f"  {order_line(o)}" + ("  ← the stop" if size and is_stop(o) else "") for o in orders]
    if size and not stop:
        lines.append("No stop protects the position: f flattens it.")
    if status.get("venue_error"):
        lines.append(f"The venue does not answer: {status['venue_error']}")
    return "\n".join(lines)


class KillScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "flatten", "flatten", id="kill.flatten"),
        Binding("c", "cancel_all", "cancel everything", id="kill.cancel_all"),
        Binding("y", "confirm", "yes", id="kill.confirm", show=False),
        Binding("r", "resume", "resume", id="kill.resume"),
        Binding("escape", "close", "close", id="kill.close"),
        Binding("q", "app.quit", "quit", id="kill.quit", show=False),  # the app's quit (or detach)
    ]

    def __init__(self, reason: str, status: Mapping[str, Any]) -> None:
        super().__init__()
        self.reason = reason
        self.status: Mapping[str, Any] = status
        self.armed = False  # "c" pressed: "y" cancels the stop too
        self.seen_halted = False  # a status after the kill said HALTED (an older one may still come)

    @property
    def trader(self) -> TraderApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="kill-box", classes="modal-box"):
            yield Label(f"KILL SWITCH — trading HALTED: {self.reason}", id="kill-title", classes="form-title")
            with VerticalScroll(id="kill-scroll"):
                yield Static(result_text(None), id="kill-result")
                yield Static(venue_text(self.status), id="kill-venue")
            yield Static("", id="kill-confirm")
            yield Static(KEYS, id="kill-keys")

    def on_mount(self) -> None:
        self.query_one("#kill-confirm", Static).display = False

    def show_result(self, result: Mapping[str, Any] | None, error: str = "") -> None:
        self.query_one("#kill-result", Static).update(result_text(result, error))

    def show_status(self, status: Mapping[str, Any]) -> None:
        self.status = status
        self.query_one("#kill-venue", Static).update(venue_text(status))
        state = str(status.get("trading_state", "")).lower()
        if state == "halted":
            self.seen_halted = True
        elif state and self.seen_halted:
            self.dismiss()  # resumed elsewhere (another UI, `autotrader resume`): nothing left to decide

    def _disarm(self) -> None:
        self.armed = False
        self.query_one("#kill-confirm", Static).display = False

    def on_key(self, event: events.Key) -> None:
        if self.armed and event.key not in ("y", "c"):
            self._disarm()  # any other key: the stop stays

    def action_flatten(self) -> None:
        self._disarm()
        self.query_one("#kill-result", Static).update("Flatten sent: closing the position at market…")
        self.trader.request_flatten()

    def action_cancel_all(self) -> None:
        size = (self.status.get("position") or {}).get("size") or 0.0
        what = f"the position {size:+g} SOL would have NO stop" if size else "no position is open"
        box = self.query_one("#kill-confirm", Static)
        box.update(f"Cancel the stop too? {what}. Press y to cancel everything; any other key keeps it.")
        box.display = True
        self.armed = True

    def action_confirm(self) -> None:
        if not self.armed:
            return
        self._disarm()
        self.query_one("#kill-result", Static).update("Cancel everything sent…")
        self.trader.request_cancel_all()

    def action_resume(self) -> None:
        self._disarm()
        self.trader.request_resume()

    def action_close(self) -> None:
        self.dismiss()
