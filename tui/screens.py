"""Modal screens: help, manual order, settings, activity filter, event details.

Screens never call the runtime: they ask the app (``self.app``) which runs the command in a worker
and posts the answer back as a message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static

from core.engine_types import EngineEvent
from core.event_text import describe
from core.exit_policy import MODE_TEXT, order_line, split_orders
from core.ui_port import (
    SETTING_FIELDS,
    SETTING_LABELS,
    SETTING_UNITS,
    ManualOrder,
    OrderVerdict,
    UiSettings,
    parse_order_form,
)

if TYPE_CHECKING:
    from tui.app import TraderApp


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "close", id="help.close")]

    def __init__(self, rows: Sequence[tuple[str, str]], script: Sequence[str] = ()) -> None:
        super().__init__()
        self.rows = rows
        self.script = script

    def compose(self) -> ComposeResult:
        width = max(len(k) for k, _ in self.rows) + 2
        lines = ["What this session shows (UTC, event time):", *self.script, ""] if self.script else []
        lines += ["Key bindings (remap them in config: [ui.keys] id = \"key\")", ""]
        lines += [f"{k.ljust(width)}{d}" for k, d in self.rows]
        lines += ["", "escape closes this screen"]
        with VerticalScroll(id="help-box", classes="modal-box"):
            yield Static("\n".join(lines), id="help-text")


class DetailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "dismiss", "close", id="detail.close")]

    def __init__(self, ev: EngineEvent) -> None:
        super().__init__()
        self.ev = ev

    def compose(self) -> ComposeResult:
        body = msgspec.json.format(msgspec.json.encode(self.ev), indent=2).decode()
        with VerticalScroll(id="detail-box", classes="modal-box"):
            yield Static(f"{self.ev.kind}: {describe(self.ev)}\n\n{body}", id="detail-text")


class FilterScreen(ModalScreen[str | None]):
    """Pick the activity kind to show (``all`` shows everything)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "cancel", id="filter.cancel")]

    def __init__(self, kinds: Sequence[str], current: str) -> None:
        super().__init__()
        self.kinds = ["all", *kinds]
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-box", classes="modal-box"):
            yield Label("Show activity of kind:")
            yield OptionList(*self.kinds, id="filter-list")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.highlighted = self.kinds.index(self.current) if self.current in self.kinds else 0
        ol.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.kinds[event.option_index])


class FormScreen(ModalScreen[None]):
    """Inputs with an error line under each."""

    def field(self, name: str, label: str, value: str = "", placeholder: str = "",
              unit: str = "") -> ComposeResult:
        """One line: the label, a compact input, its unit; the error line under it only when there is one."""
        with Horizontal(classes="form-row"):
            yield Label(label, classes="form-label")
            yield Input(value, placeholder=placeholder, id=f"in-{name}", compact=True)
            if unit:
                yield Label(unit, classes="form-unit")
        yield Label("", id=f"err-{name}", classes="form-error")

    def values(self, names: Sequence[str]) -> dict[str, str]:
        return {n: self.query_one(f"#in-{n}", Input).value for n in names}

    def show_errors(self, names: Sequence[str], errors: dict[str, str]) -> None:
        for n in names:
            err = self.query_one(f"#err-{n}", Label)
            err.update(f"  ↳ {errors[n]}" if n in errors else "")
            err.display = n in errors


ORDER_FIELDS = ("side", "price", "size", "sl", "tps")


class OrderScreen(FormScreen):
    """Manual order: fill in, Review (the engine's verdict), then Confirm or Cancel.

    Enter in a field reviews; it never sends. Confirm stays off until a verdict for exactly the
    fields on screen is shown, and it is never focused for you: sending takes ``ctrl+y`` or tab to
    Confirm and enter, so Enter-Enter cannot send an order whose verdict was not seen."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "cancel", id="order.cancel"),
        Binding("ctrl+y", "confirm", "send", id="order.confirm"),
    ]

    def __init__(self, side: str = "buy") -> None:
        super().__init__()
        self.side = side
        self.order: ManualOrder | None = None

    @property
    def trader(self) -> TraderApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="order-box", classes="modal-box"):
            yield Label("Manual order (post-only; a stop is required)", classes="form-title")
            yield from self.field("side", "side", self.side, "buy | sell")
            yield from self.field("price", "price (USD)", "", "empty = the touch")
            yield from self.field("size", "size (SOL)", "")
            yield from self.field("sl", "stop-loss (USD)", "")
            yield from self.field("tps", "take-profits (USD)", "", "e.g. 152.5 153.5")
            with VerticalScroll(id="verdict-box"):
                yield Static("Enter reviews the order: the engine's verdict shows here.", id="verdict")
            with Horizontal(classes="buttons"):
                yield Button("Review (enter)", id="review", variant="primary", compact=True)
                yield Button("Confirm (ctrl+y)", id="confirm", variant="warning", disabled=True, compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#in-size", Input).focus()

    @on(Input.Changed)
    def _edited(self) -> None:
        if self.order is not None:
            self.order = None
            self.query_one("#confirm", Button).disabled = True
            self.query_one("#verdict", Static).update("Changed: review again (enter).")

    @on(Input.Submitted)
    @on(Button.Pressed, "#review")
    def review(self) -> None:
        order, errors = parse_order_form(self.values(ORDER_FIELDS))
        self.show_errors(ORDER_FIELDS, errors)
        self.order = None
        self.query_one("#confirm", Button).disabled = True
        if order is None:
            self.query_one("#verdict", Static).update("Fix the fields marked ↳.")
            return
        self.query_one("#verdict", Static).update("Checking with the engine…")
        self.trader.request_preview(order)

    def show_verdict(self, order: ManualOrder, verdict: OrderVerdict) -> None:
        current, _ = parse_order_form(self.values(ORDER_FIELDS))
        if current != order:
            return  # the fields changed while the engine answered: that verdict is not for them
        box = self.query_one("#verdict", Static)
        px = f" @ {verdict.price:,.2f} USD" if verdict.price else ""
        head = (f"{order.side.upper()} {order.size:g} SOL{px}, stop {order.sl:,.2f}; "
                f"guards {verdict.guard_status.upper()}")
        if verdict.ok:
            box.update(f"{head}\nThe engine would accept it. ctrl+y sends it, esc drops it.")
        else:
            why = "\n".join(f" - {r}" for r in verdict.reasons)
            box.update(f"{head}\nThe engine would REFUSE it:\n{why}\n"
                       "ctrl+y sends it anyway (the engine decides), esc drops it.")
        self.query_one("#verdict-box", VerticalScroll).scroll_home(animate=False)
        self.order = order
        self.query_one("#confirm", Button).disabled = False  # enabled, never focused for the user

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        if self.order is not None and not self.query_one("#confirm", Button).disabled:
            self.trader.request_submit(self.order)
            self.dismiss()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.trader.notify("manual order cancelled", timeout=3)
        self.dismiss()


class SettingsScreen(FormScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel", id="settings.cancel")]

    def __init__(self, current: UiSettings, max_leverage: float) -> None:
        super().__init__()
        self.current = current
        self.max_leverage = max_leverage

    @property
    def trader(self) -> TraderApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        cur: dict[str, Any] = msgspec.structs.asdict(self.current)
        with Vertical(id="settings-box", classes="modal-box"):
            yield Label("Settings (saved; applied now and after a restart)", classes="form-title")
            for n in SETTING_FIELDS:
                yield from self.field(n, SETTING_LABELS[n], f"{cur[n]:g}", unit=SETTING_UNITS[n])
            yield Static("", id="settings-status")
            with Horizontal(classes="buttons"):
                yield Button("Save (enter)", id="save", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(f"#in-{SETTING_FIELDS[0]}", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def save(self) -> None:
        from core.ui_port import validate_settings

        settings, errors = validate_settings(self.values(SETTING_FIELDS), self.max_leverage)
        self.show_errors(SETTING_FIELDS, errors)
        if settings is None:
            self.query_one("#settings-status", Static).update("Not saved: fix the fields marked ↳.")
            return
        self.trader.request_save_settings(settings)
        self.dismiss()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss()


class QuitScreen(ModalScreen[bool]):
    """Quit, after showing what stays on the venue (``engine.on_exit``): the entries that go, the
    stop and take-profits that stay, the position. ``q``/enter quits, escape stays."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(False)", "stay", id="quit.stay"),
        Binding("q", "dismiss(True)", "quit", id="quit.confirm"),
    ]

    def __init__(self, mode: str, status: dict[str, Any]) -> None:
        super().__init__()
        self.mode = mode
        self.status = status

    def body(self) -> str:
        orders = list(self.status.get("open_orders") or [])
        cancelled, kept = split_orders(self.mode, orders)
        if self.mode != "keep_protection":
            cancelled, kept = orders, []
        lines = [f"On exit ({self.mode}): {MODE_TEXT.get(self.mode, self.mode)}.", ""]
        lines.append("Cancelled now:" if cancelled else "Cancelled now: nothing")
        lines += [f"  {order_line(o)}" for o in cancelled]
        lines.append("Stays on the venue:" if kept else "Stays on the venue: no order")
        lines += [f"  {order_line(o)}" for o in kept]
        size = (self.status.get("position") or {}).get("size") or 0.0
        if not self.status:
            lines.append("Position: unknown (no answer from the engine yet)")
        elif self.mode == "flatten" and size:
            lines.append(f"Position {size:+g}: closed at market.")
        elif size:
            stop = any(str(o.get("type", "")).startswith("trigger") for o in kept)
            lines.append(f"Position {size:+g} stays open" + (", protected by the stop." if stop else
                                                               " WITHOUT a stop."))
        else:
            lines.append("Position: flat.")
        lines.append("Nobody watches the venue until autotrader runs again.")
        return "\n".join(lines)

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-box", classes="modal-box"):
            yield Label("Quit autotrader?", classes="form-title")
            with VerticalScroll(id="quit-scroll"):
                yield Static(self.body(), id="quit-text")
            with Horizontal(classes="buttons"):
                yield Button("Quit (q)", id="quit-confirm", variant="error", compact=True)
                yield Button("Stay (esc)", id="quit-stay", compact=True)

    def on_mount(self) -> None:
        self.query_one("#quit-stay", Button).focus()

    @on(Button.Pressed, "#quit-confirm")
    def _confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#quit-stay")
    def _stay(self) -> None:
        self.dismiss(False)
