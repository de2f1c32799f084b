"""The Textual app over a running instance.

State comes from the bus (:class:`tui.state.BusFeed`), drained by one timer at most 4 times a
second (charts at most once a second) so the screen stays usable over a slow SSH link. Commands go
through :class:`core.ui_port.UiCommands` in workers that post their answers back as messages; the
``@on`` handlers own every widget update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer

from core.bus import Bus
from core.engine_types import EngineEvent
from core.event_text import describe
from core.guard_config import GuardsConfig
from core.ui_port import LinkState, OrderVerdict, UiCommands, UiInfo
from tui import panels, render
from tui.commands import CommandDone, CommandsApp
from tui.panels import venue_badge
from tui.state import MAX_EVENTS, BusFeed, UiFeed, UiModel
from tui.widgets import Card, Chart, Panel

TOAST_KINDS = {
    "order_filled": ("information", "Fill"),
    "order_partially_filled": ("information", "Partial fill"),
    "sl_hit": ("warning", "Stop"),
    "guard_block": ("warning", "Guard block"),
    "kill_switch": ("error", "Kill switch"),
    "delegation": ("error", "Delegation"),
    "order_unknown": ("warning", "Order UNKNOWN"),
    "intent_rejected": ("warning", "Rejected"),
    "halt": ("error", "Halt"),
}
#: panel titles: (wide, below 100 columns)
TITLES = {
    "card-spread": ("spread", "spread"), "card-depth": ("depth 10bps", "depth"),
    "card-funding": ("funding APR", "funding"), "card-basis": ("basis", "basis"), "card-oi": ("OI", "OI"),
    "card-liq": ("liqs 5m", "liqs 5m"), "price": ("SOL 1m · price, VWAP, CVD", "SOL 1m · price, VWAP, CVD"),
    "heatmap": ("liquidations · 25 bps × 6 h", "liqs · 25 bps × 6 h"),
    "clusters": ("Drift liq-map", "liq-map"), "oi": ("OI 24h", "OI 24h"),
}

@dataclass
class Throttle:
    """At most one repaint per ``interval_s`` of the app's tick (counted in ticks, no wall time)."""

    every: int
    count: int = 0

    def due(self) -> bool:
        self.count += 1
        if self.count >= self.every:
            self.count = 0
            return True
        return False


class TraderApp(CommandsApp):
    CSS_PATH = "app.tcss"
    TITLE = "autotrader"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+k", "kill", "KILL", priority=True, id="kill"),
        Binding("a", "toggle_automation", "automation", id="automation"),
        Binding("o", "order", "order", id="order"),
        Binding("s", "settings", "settings", id="settings"),
        Binding("g", "delegation", "delegation", id="delegation", show=False),  # under ? (80 columns)
        Binding("f", "filter", "filter log", id="filter"),
        Binding("question_mark,f1", "help", "help", id="help"),
        Binding("q", "quit", "quit", id="quit"),
    ]

    def __init__(
        self,
        bus: Bus,
        commands: UiCommands,
        info: UiInfo,
        guards: GuardsConfig,
        *,
        keymap: dict[str, str] | None = None,
        tick_s: float = 0.25,
        status_every_s: float = 1.0,
        feed: UiFeed | None = None,
    ) -> None:
        super().__init__()
        self.bus = bus
        self.commands = commands
        self.info = info
        self.guards_cfg = guards
        self.keymap_cfg = dict(keymap or {})
        self.tick_s = tick_s
        self.feed: UiFeed = feed if feed is not None else BusFeed(bus)
        self.link: LinkState | None = None  # attached to an instance: the state of the link
        self.log_filter = "all"
        self.status: dict[str, Any] = {}
        self.kill_note = ""
        self.delegation_state: dict[str, Any] = {}
        self._chart_throttle = Throttle(max(1, round(1.0 / tick_s)))
        self._status_every = max(1, round(status_every_s / tick_s))
        self._ticks = 0
        self._oi_minute = -1
        self._log_seq = -1
        self._activity_key: tuple[int, ...] = ()
        self._chapter = 0  # the demo's script: parts already announced

    @property
    def model(self) -> UiModel:
        """The feed's model (an attached UI gets a new one when the instance restarts)."""
        return self.feed.model

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Panel("", id="topbar")
        with Horizontal(id="cards"):
            for cid in ("spread", "depth", "funding", "basis", "oi", "liq"):
                yield Card(TITLES[f"card-{cid}"][0], f"card-{cid}")
        yield Panel("", id="guardline")
        with Horizontal(id="middle"):
            yield Chart(self._draw_price, id="price", classes="box")
            yield Chart(self._draw_heatmap, id="heatmap", classes="box")
            with Vertical(id="side"):
                yield Chart(self._draw_clusters, id="clusters", classes="box")
                yield Chart(self._draw_oi, id="oi", classes="box")
        with Horizontal(id="bottom"):
            yield DataTable(id="activity", classes="box", cursor_type="row", zebra_stripes=False)
            with Vertical(id="book"):
                yield DataTable(id="positions", classes="box", cursor_type="none", show_cursor=False)
                yield DataTable(id="orders", classes="box", cursor_type="row")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        if self.keymap_cfg:
            self.set_keymap(self.keymap_cfg)
        self._titles()
        act = self._q("#activity", DataTable)
        act.add_columns(*panels.ACTIVITY_COLUMNS)
        act.border_title = "activity · all"
        pos = self._q("#positions", DataTable)
        pos.add_columns(*panels.POSITION_COLUMNS)
        pos.border_title = "position"
        orders = self._q("#orders", DataTable)
        orders.add_columns(*panels.ORDER_COLUMNS)
        orders.border_title = "open orders"
        act.focus()
        try:
            self.model.prefill(self.commands.recent_events(MAX_EVENTS))
        except Exception as exc:  # the history is a convenience: the UI still starts without it
            self.notify(f"activity history not loaded: {exc}", severity="warning")
        if self.info.chapters:
            self.notify("Each part of the session is announced here as it comes; ? shows the whole "
                        "script.", title="Demo", timeout=15)
        self.refresh_now()
        self.set_interval(self.tick_s, self._tick)
        self.poll_status()

    def _titles(self) -> None:
        """Panel titles that fit the width (short ones below 100 columns)."""
        narrow = (self.size.width or 120) < 100
        for wid, (wide, short) in TITLES.items():
            self._q(f"#{wid}").border_title = short if narrow else wide

    def on_resize(self) -> None:
        self.call_after_refresh(self._relayout)

    def _relayout(self) -> None:
        if not self.screen_stack or not self.screen_stack[0].is_attached:
            return
        try:
            self._titles()
            self._activity_key = ()
            self._render_activity()
            self._render_status()
            self._render_topbar()
        except NoMatches:
            return

    def _q(self, selector: str, expect_type: Any = None) -> Any:
        """Widgets of the main screen (a dialog may be on top)."""
        main = self.screen_stack[0]
        return main.query_one(selector) if expect_type is None else main.query_one(selector, expect_type)

    # ------------------------------------------------------------------ ticking
    def _tick(self) -> None:
        if not self.screen_stack or not self.screen_stack[0].is_attached:
            return
        try:
            self._tick_once()
        except NoMatches:  # the screen is being torn down
            return

    def _tick_once(self) -> None:
        self._ticks += 1
        _, events = self.feed.drain()
        for link in self.feed.take_link_changes():
            self._on_link(link)
        self._announce()
        for ev in events:
            self._toast(ev)
        self._render_fast()
        if self._chart_throttle.due():
            self._render_charts()
        if self._ticks % self._status_every == 0 or any(e.kind.startswith(("order_", "kill", "sl_", "tp_"))
                                                        for e in events):
            self.poll_status()

    def _announce(self) -> None:
        """The demo's script: each part of the session said as the event time reaches it."""
        chapters, now = self.info.chapters, self.model.now_ms
        if not chapters or not now:
            return
        due = sum(1 for start, _ in chapters if start <= now)
        if due > self._chapter:
            self._chapter = due
            self.notify(chapters[due - 1][1], title="Demo: what comes now", timeout=20)

    def _on_link(self, st: LinkState) -> None:
        """The link to the instance went up or down (``autotrader ui``)."""
        was = self.link
        self.link = st
        if st.info is not None:
            self.info = st.info
        if st.guards is not None:
            self.guards_cfg = st.guards
        if st.connected:
            self._activity_key = ()
            self._log_seq = -1
            self.notify(st.text, title="Instance", timeout=6)
            self.poll_status()
        elif was is None or was.connected:
            self.notify(st.text + ". Nothing changes in the instance; reconnecting.", title="Instance",
                        severity="error", timeout=10)
        self._render_topbar()

    def refresh_now(self) -> None:
        """Drain and repaint everything now (tests and snapshots; the timer does the same)."""
        self.feed.drain()
        self._render_fast()
        self._render_charts()

    def _toast(self, ev: EngineEvent) -> None:
        kind = ev.kind
        if kind == "kill_switch" and ev.data.get("stage") == "confirmed":
            self.notify(describe(ev), title="Kill switch", severity="warning", timeout=6)
            return
        spec = TOAST_KINDS.get(kind)
        if spec is not None:
            self.notify(describe(ev), title=spec[1], severity=spec[0], timeout=6)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ fast panels
    def _render_fast(self) -> None:
        self._render_topbar()
        self._render_cards()
        self._render_guardline()
        if self.model.seq != self._log_seq:
            self._log_seq = self.model.seq
            self._render_activity()

    def _trading_state(self) -> str:
        return str(self.status.get("trading_state") or self.model.trading_state or "?")

    def _automation(self) -> bool | None:
        return panels.automation(self.model.automation_on, self.status)

    def _render_topbar(self) -> None:
        m = self.model
        t = panels.topbar(self.info, self.link, self.status, self._trading_state(), self._automation(),
                          m.feeds, m.now_ms, self.size.width or 120)
        self._q("#topbar", Panel).set(t)

    def _render_cards(self) -> None:
        for cid, (value, level) in panels.cards(self.model, self.guards_cfg).items():
            self._q(f"#card-{cid}", Card).show(value, level)

    def _render_guardline(self) -> None:
        self._q("#guardline", Panel).set(panels.guardline(self.model, self.kill_note))

    def _render_activity(self) -> None:
        table = self._q("#activity", DataTable)
        flt = self.log_filter
        rows = [ev for ev in reversed(self.model.events) if flt == "all" or ev.kind == flt][:200]
        width = table.scrollable_content_region.width
        key = (width, *(id(e) for e in rows))
        if self._activity_key == key:
            return
        self._activity_key = key
        cursor = table.cursor_row
        names, cells = panels.fit_table(panels.ACTIVITY_COLUMNS, panels.activity_rows(rows),
                                        panels.ACTIVITY_PRIORITY, width - 1, flex=2)
        _fill(table, names, cells)
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        table.border_title = f"activity · {flt} · {len(rows)}"

    def selected_event(self) -> EngineEvent | None:
        flt = self.log_filter
        rows = [ev for ev in reversed(self.model.events) if flt == "all" or ev.kind == flt][:200]
        row = self._q("#activity", DataTable).cursor_row
        return rows[row] if 0 <= row < len(rows) else None

    # ------------------------------------------------------------------ charts
    def _render_charts(self) -> None:
        for cid in ("price", "heatmap", "clusters"):
            self._q(f"#{cid}", Chart).redraw()
        minute = self.model.now_ms // 60_000
        if minute != self._oi_minute and self._q("#oi", Chart).redraw():  # once a minute
            self._oi_minute = minute

    def _draw_price(self, w: int, h: int) -> Text:
        return render.price_chart(self.model.last_bars(w), w, h)

    def _draw_heatmap(self, w: int, h: int) -> Text:
        m = self.model
        return render.heatmap(list(m.liqs), m.mid, m.now_ms, m.first_ms, w, h)

    def _draw_clusters(self, w: int, h: int) -> Text:
        m = self.model
        return render.clusters_text(m.clusters, m.mid, m.clusters_seen, h)

    def _draw_oi(self, w: int, h: int) -> Text:
        series = self.model.oi_series()
        t = Text(no_wrap=True, overflow="crop")
        if not series:
            t.append("waiting for OI…", style="dim")
            return t
        t.append(render.sparkline(series, w) + "\n", style="cyan")
        lo, hi = min(series), max(series)
        t.append(f"{render.compact(series[-1])} ({render.compact(lo)}-{render.compact(hi)})", style="dim")
        return t

    # ------------------------------------------------------------------ status polling
    @work(exclusive=True, group="status")
    async def poll_status(self) -> None:
        try:
            self.post_message(CommandDone("guards", self.commands.guard_report()))
        except Exception as e:
            self.post_message(CommandDone("guards", error=str(e)))
        try:
            d = await self.commands.trading_status()
        except Exception as e:  # shown, never fatal
            self.post_message(CommandDone("status", error=str(e)))
            return
        self.post_message(CommandDone("status", d))

    def _render_status(self) -> None:
        d = self.status
        pos = self._q("#positions", DataTable)
        width = pos.scrollable_content_region.width
        narrow = (self.size.width or 120) < 100
        pos.show_header = not narrow  # 80 columns: one labelled row, so the orders get the room
        if narrow:
            names, cells = panels.fit_table(panels.POSITION_LABELLED, panels.position_rows(d, "", True),
                                            (0, 1, 2), width)
        else:
            rows = panels.position_rows(d, self.info.market)
            names, cells = panels.fit_table(panels.POSITION_COLUMNS, rows, panels.POSITION_PRIORITY, width)
        _fill(pos, names, cells)
        pos.border_title = panels.position_title(d, pos.size.width or 60)
        orders = self._q("#orders", DataTable)
        oo = d.get("open_orders") or []
        names, cells = panels.fit_table(panels.ORDER_COLUMNS, panels.order_rows(d), panels.ORDER_PRIORITY,
                                        orders.scrollable_content_region.width - 1)
        _fill(orders, names, cells)
        err = d.get("venue_error")
        orders.border_title = f"open orders · {len(oo)}" + (f" · venue ERROR {err}" if err else "")

    # ------------------------------------------------------------------ commands
    def on_unmount(self) -> None:
        self.feed.close()


def _fill(table: DataTable[Any], names: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Replace the table's rows (and its columns when they changed: a narrower terminal)."""
    current = [str(c.label) for c in table.columns.values()]
    if current != list(names):
        table.clear(columns=True)
        table.add_columns(*names)
    else:
        table.clear()
    for i, r in enumerate(rows):
        table.add_row(*r, key=str(i))


__all__ = ["OrderVerdict", "TraderApp", "venue_badge"]
