"""The UI's view model: what the bus said, kept in bounded windows (no trading logic).

The app drains its feed into a :class:`UiModel` at most 4 times a second and the widgets render
from it. Every window is bounded so the UI's memory is flat over days.

Two feeds fill a model: :class:`BusFeed` (the UI in the runtime's process: bus subscriptions) and
:class:`tui.sync.QueueFeed` (``autotrader ui`` attached to a running instance).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.bars import BarBuilder
from core.bus import Bus, Subscription, Topic, Topics
from core.engine_types import ENGINE_EVENTS, EngineEvent
from core.guards import GUARDS, GuardReport
from core.intents import REGIME, Regime
from core.market_history import HISTORY, MarketHistory, MarketWindows
from core.models import Bar, Basis, BookTop, FeedStatus, Funding, Liquidation, OpenInterest, Side, Trade
from core.ui_port import LIQ_MAP, Cluster, LinkState, LiqMap, clusters_from

MINUTE_MS = 60_000
HEATMAP_WINDOW_MS = 6 * 3600 * 1000
MAX_BARS = 360  # 6 h of 1m bars
MAX_EVENTS = 500

#: the bar in progress (built from the trades by the instance; an attached UI receives it ready)
PARTIAL_BAR: Topic[Bar] = Topic("ui:partial_bar", Bar)
#: the latest event time the instance has seen (an attached UI receives no trades)
NOW_MS: Topic[int] = Topic("ui:now_ms", int)


@dataclass
class UiModel:
    book: BookTop | None = None
    funding: Funding | None = None
    oi: OpenInterest | None = None
    basis: Basis | None = None
    guard: GuardReport | None = None
    regime: Regime | None = None
    feeds: dict[str, FeedStatus] = field(default_factory=dict)
    # bars by open time (at most MAX_BARS), liquidations (6 h), OI per instrument (24 h)
    windows: MarketWindows = field(
        default_factory=lambda: MarketWindows(max_bars=MAX_BARS, liq_window_ms=HEATMAP_WINDOW_MS))
    events: deque[EngineEvent] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    clusters: list[Cluster] = field(default_factory=list)
    clusters_seen: bool = False
    now_ms: int = 0  # latest event time seen (never the wall clock)
    first_ms: int = 0  # earliest event time seen (the heatmap's axis starts here until 6 h have passed)
    trading_state: str = ""
    automation_on: bool | None = None
    seq: int = 0  # bumps on every change
    partial: Bar | None = None  # the current 1m bar, built from the trades (the bus carries closed bars)
    _builder: BarBuilder | None = None
    _history: set[tuple[str, str, int]] = field(default_factory=set)

    @property
    def bars(self) -> dict[int, Bar]:
        return self.windows.bars

    @property
    def liqs(self) -> deque[Liquidation]:
        return self.windows.liqs

    def prefill_market(self, h: MarketHistory) -> None:
        """Start the windows with the stored history (published once at start, before live data)."""
        for b in h.bars[-MAX_BARS:]:
            self.on_bar(b)
        for x in h.liquidations:
            self.on_liq(x)
        for o in h.open_interest:
            self.on_oi(o)
        for f in h.funding:
            self.on_funding(f)
        if h.bars:
            self._t(h.bars[-1].timestamp)
        self.seq += 1

    def prefill(self, history: list[EngineEvent]) -> None:
        """Start the log with the activity log's history (oldest first). Events of this session
        may be both in that history and still queued on the bus: the queued copy is skipped."""
        keep = history[-MAX_EVENTS:]
        self.events.extendleft(reversed(keep))
        self._history = {(e.kind, e.intent_id, e.ts) for e in keep}
        self.seq += 1

    # ------------------------------------------------------------------ ingest
    def on_partial(self, bar: Bar) -> None:
        self.partial = bar

    def on_now(self, ts: int) -> None:
        self._t(ts)

    def _t(self, ts: int) -> None:
        if ts > self.now_ms:
            self.now_ms = ts
        if not self.first_ms or 0 < ts < self.first_ms:
            self.first_ms = ts

    def on_book(self, m: BookTop) -> None:
        self.book = m
        self._t(m.timestamp)

    def on_bar(self, m: Bar) -> None:
        self.windows.on_bar(m)

    def on_trades(self, trades: list[Trade]) -> None:
        """All the primary trades since the last drain (never coalesced): the current bar."""
        for t in trades:
            self.add_trade(t)
        if trades:
            self.refresh_partial()

    def add_trade(self, t: Trade) -> None:
        """One trade into the current bar (:meth:`refresh_partial` makes it visible)."""
        if self._builder is None:
            self._builder = BarBuilder(t.symbol)
        self._builder.add(t.ts, t.price, t.qty, t.side is Side.SELL)
        self._t(t.ts)

    def refresh_partial(self) -> Bar | None:
        self.partial = self._builder.current() if self._builder is not None else None
        return self.partial

    def on_funding(self, m: Funding) -> None:
        self.funding = m
        self.windows.on_funding(m)

    def on_oi(self, m: OpenInterest) -> None:
        self.oi = m
        self.windows.on_open_interest(m)

    def on_basis(self, m: Basis) -> None:
        self.basis = m

    def on_liq(self, m: Liquidation) -> None:
        self._t(m.ts)
        self.windows.on_liquidation(m)

    def on_feed(self, m: FeedStatus) -> None:
        self.feeds[m.feed] = m

    def on_guard(self, m: GuardReport) -> None:
        self.guard = m

    def on_regime(self, m: Regime) -> None:
        self.regime = m

    def on_event(self, ev: EngineEvent) -> None:
        if self._history:
            key = (ev.kind, ev.intent_id, ev.ts)
            if key in self._history:
                self._history.discard(key)
                return
        self.events.append(ev)
        d = ev.data
        if ev.kind == "kill_switch":
            self.trading_state = "halted"
            self.automation_on = False
        elif ev.kind == "trading_state":
            self.trading_state = str(d.get("to", self.trading_state))
        elif ev.kind == "automation":
            self.automation_on = bool(d.get("on"))

    def on_liq_map(self, msg: LiqMap) -> None:
        self.clusters = clusters_from(msg)
        self.clusters_seen = True

    # ------------------------------------------------------------------ queries
    @property
    def mid(self) -> float | None:
        b = self.book
        return None if b is None else (b.bid_px + b.ask_px) / 2

    def last_bars(self, n: int) -> list[Bar]:
        """Closed bars from the bus, then the current partial bar (when it is newer)."""
        keys = sorted(self.bars)[-n:]
        out = [self.bars[k] for k in keys]
        p = self.partial
        if p is not None and (not out or p.timestamp > out[-1].timestamp):
            out = [*out, p][-n:]
        return out

    def liq_window(self, window_ms: int) -> tuple[int, float]:
        """Count and notional of liquidations in the last ``window_ms`` of event time."""
        return self.windows.liq_window(self.now_ms, window_ms)

    def oi_total(self) -> float | None:
        """Open interest summed over every venue and instrument (values at most 5 min old)."""
        return self.windows.derivs.oi_total(self.windows.now_ms, self.windows.oi_max_age_s)

    def funding_apr(self) -> float | None:
        """Funding APR over every venue (open-interest weighted when every OI is known)."""
        w = self.windows
        return w.derivs.funding_aggregate(w.now_ms, 300.0, w.oi_max_age_s)

    def oi_series(self) -> list[float]:
        """Aggregated open interest per minute over 24 h."""
        return [v for _, v in self.windows.oi_series()]


#: the topics a UI follows besides the trades: (topic, queue size, coalesce). Market data coalesces
#: (latest wins for a slow UI); engine events, liquidations, guard reports and feed statuses never do.
UI_TOPICS: tuple[tuple[Topic[Any], int, bool], ...] = (
    (HISTORY, 4, False),  # first: the stored history before any live value
    (Topics.BOOK, 4, True),
    (Topics.BARS, 256, True),
    (Topics.FUNDING, 4, True),
    (Topics.OPEN_INTEREST, 64, True),
    (Topics.BASIS, 4, True),
    (Topics.LIQUIDATIONS, 100_000, False),
    (Topics.FEED_STATUS, 256, False),
    (GUARDS, 64, False),
    (REGIME, 64, False),
    (ENGINE_EVENTS, 100_000, False),
    (LIQ_MAP, 4, True),
)
#: every topic an attached UI receives, by name
WIRE_TOPICS: dict[str, Topic[Any]] = {t.name: t for t, _, _ in UI_TOPICS} | {
    PARTIAL_BAR.name: PARTIAL_BAR, NOW_MS.name: NOW_MS}


def model_handlers(m: UiModel) -> dict[str, Callable[[Any], None]]:
    """The model's handler of each topic of :data:`WIRE_TOPICS`, by topic name."""
    return {
        Topics.BOOK.name: m.on_book, Topics.BARS.name: m.on_bar, Topics.FUNDING.name: m.on_funding,
        Topics.OPEN_INTEREST.name: m.on_oi, Topics.BASIS.name: m.on_basis,
        Topics.LIQUIDATIONS.name: m.on_liq, Topics.FEED_STATUS.name: m.on_feed, GUARDS.name: m.on_guard,
        REGIME.name: m.on_regime, ENGINE_EVENTS.name: m.on_event, LIQ_MAP.name: m.on_liq_map,
        PARTIAL_BAR.name: m.on_partial, NOW_MS.name: m.on_now, HISTORY.name: m.prefill_market,
    }


class UiFeed(Protocol):
    """Where the app's model comes from (:class:`BusFeed` or :class:`tui.sync.QueueFeed`)."""

    model: UiModel

    def drain(self) -> tuple[int, list[EngineEvent]]: ...

    def take_link_changes(self) -> list[LinkState]: ...

    def close(self) -> None: ...


class BusFeed:
    """The app's bus subscriptions (:data:`UI_TOPICS`, plus every primary trade for the current bar)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        m = UiModel()
        self.model = m
        self._subs: list[tuple[Subscription[object], object]] = []
        self._trades: Subscription[Trade] = bus.subscribe(Topics.TRADES, maxsize=1_000_000)
        handlers = model_handlers(m)
        for topic, maxsize, coalesce in UI_TOPICS:
            self._add(topic, handlers[topic.name], maxsize, coalesce)

    def _add(self, topic: Topic[Any], handler: object, maxsize: int, coalesce: bool) -> None:
        sub: Subscription[object] = self.bus.subscribe(topic, maxsize=maxsize, coalesce=coalesce)
        self._subs.append((sub, handler))

    def take_link_changes(self) -> list[LinkState]:
        """In the runtime's process there is no link to the instance."""
        return []

    def drain(self) -> tuple[int, list[EngineEvent]]:
        """Apply everything queued; returns how many messages and the new engine events."""
        trades = self._trades.drain()
        self.model.on_trades(trades)
        n = len(trades)
        events: list[EngineEvent] = []
        for sub, handler in self._subs:
            items = sub.drain()
            if not items:
                continue
            n += len(items)
            for item in items:
                handler(item)  # type: ignore[operator]
            if sub.topic is ENGINE_EVENTS:
                events.extend(items)  # type: ignore[arg-type]
        if n:
            self.model.seq += 1
        return n, events

    def close(self) -> None:
        self.bus.unsubscribe(self._trades)
        for sub, _ in self._subs:
            self.bus.unsubscribe(sub)
        self._subs.clear()
