"""A UI model shared over the control socket (``autotrader ui``).

The instance keeps a model of its own (:class:`ModelTap`, fed synchronously by the bus) so a UI
that attaches starts from everything a UI started with the instance would show: it receives a
:class:`ModelSnapshot`, then the same topics as they arrive, which :class:`QueueFeed` applies in
order (a new snapshot replaces the model: a restarted instance starts the screen again).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from core.bus import Bus, Topics
from core.engine_types import ENGINE_EVENTS, EngineEvent
from core.guards import GuardReport
from core.intents import Regime
from core.market_history import MAX_LIQS
from core.models import Bar, Basis, BookTop, FeedStatus, Funding, Liquidation, OpenInterest, Trade
from core.ui_port import LinkState
from tui.state import MAX_BARS, MAX_EVENTS, UI_TOPICS, UiModel, model_handlers


class ModelSnapshot(msgspec.Struct, kw_only=True):
    """Everything a :class:`UiModel` holds, as plain data (sent to a UI that attaches)."""

    book: BookTop | None = None
    funding: Funding | None = None
    oi: OpenInterest | None = None
    basis: Basis | None = None
    guard: GuardReport | None = None
    regime: Regime | None = None
    feeds: list[FeedStatus] = msgspec.field(default_factory=list)
    bars: list[Bar] = msgspec.field(default_factory=list)
    liqs: list[Liquidation] = msgspec.field(default_factory=list)
    #: the market windows' open interest: per (venue, symbol) the value of each minute
    #: ``(venue, symbol, minute, ts, USD)``, and the latest OI and funding of each instrument
    oi_minutes: list[tuple[str, str, int, int, float]] = msgspec.field(default_factory=list)
    oi_latest: list[OpenInterest] = msgspec.field(default_factory=list)
    funding_latest: list[Funding] = msgspec.field(default_factory=list)
    windows_now_ms: int = 0
    events: list[EngineEvent] = msgspec.field(default_factory=list)
    clusters: list[tuple[float, float]] = msgspec.field(default_factory=list)
    clusters_seen: bool = False
    now_ms: int = 0
    first_ms: int = 0
    trading_state: str = ""
    automation_on: bool | None = None
    partial: Bar | None = None


def snapshot_of(model: UiModel, events: list[EngineEvent] | None = None) -> ModelSnapshot:
    """The model as plain data; ``events`` (oldest first) replace the model's own when given."""
    m = model
    w = m.windows
    return ModelSnapshot(
        book=m.book, funding=m.funding, oi=m.oi, basis=m.basis, guard=m.guard,
        regime=m.regime, feeds=[m.feeds[k] for k in sorted(m.feeds)],
        bars=[m.bars[k] for k in sorted(m.bars)], liqs=list(m.liqs),
        oi_minutes=[(v, sym, minute, ts, usd) for (v, sym), per in sorted(w.oi_minutes.items())
                    for minute, (ts, usd) in sorted(per.items())],
        oi_latest=[w.derivs.oi[k] for k in sorted(w.derivs.oi)],
        funding_latest=[w.derivs.funding[k] for k in sorted(w.derivs.funding)], windows_now_ms=w.now_ms,
        events=list(m.events) if events is None else events[-MAX_EVENTS:],
        clusters=list(m.clusters), clusters_seen=m.clusters_seen, now_ms=m.now_ms,
        first_ms=m.first_ms, trading_state=m.trading_state, automation_on=m.automation_on,
        partial=m.partial)


def model_from(s: ModelSnapshot, seq: int = 0) -> UiModel:
    """A model from a snapshot; ``seq`` above the replaced model's, so everything repaints."""
    m = UiModel(book=s.book, funding=s.funding, oi=s.oi, basis=s.basis, guard=s.guard, regime=s.regime,
                feeds={f.feed: f for f in s.feeds},
                clusters=[(p, n) for p, n in s.clusters], clusters_seen=s.clusters_seen, now_ms=s.now_ms,
                first_ms=s.first_ms, trading_state=s.trading_state, automation_on=s.automation_on,
                partial=s.partial, seq=seq + 1)
    w = m.windows
    w.bars.update((b.timestamp, b) for b in s.bars[-MAX_BARS:])
    w.liqs.extend(s.liqs[-MAX_LIQS:])
    for venue, sym, minute, ts, usd in s.oi_minutes:
        w.oi_minutes.setdefault((venue, sym), {})[minute] = (ts, usd)
    for o in s.oi_latest:
        w.derivs.on_open_interest(o)
    for f in s.funding_latest:
        w.derivs.on_funding(f)
    w.now_ms = s.windows_now_ms
    m.events.extend(s.events[-MAX_EVENTS:])
    return m


class QueueFeed:
    """The feed of a UI attached over the control socket: the link pushes a snapshot, the topics
    as they arrive and its own state changes; :meth:`drain` applies them in that order (a new
    snapshot replaces the model: a restarted instance starts the screen again)."""

    def __init__(self) -> None:
        self.model = UiModel()
        self._queue: deque[tuple[str, Any]] = deque()
        self._links: list[LinkState] = []

    def push(self, topic: str, item: Any) -> None:
        self._queue.append((topic, item))

    def load(self, snapshot: ModelSnapshot) -> None:
        self._queue.append(("", snapshot))

    def set_link(self, state: LinkState) -> None:
        self._queue.append(("", state))

    def take_link_changes(self) -> list[LinkState]:
        out, self._links = self._links, []
        return out

    def drain(self) -> tuple[int, list[EngineEvent]]:
        n = 0
        events: list[EngineEvent] = []
        handlers = model_handlers(self.model)
        queue = self._queue
        while queue:
            topic, item = queue.popleft()
            n += 1
            if isinstance(item, ModelSnapshot):
                self.model = model_from(item, self.model.seq)
                handlers = model_handlers(self.model)
                events.clear()  # what happened before the snapshot is in it
            elif isinstance(item, LinkState):
                self._links.append(item)
            else:
                handler = handlers.get(topic)
                if handler is not None:
                    handler(item)
                    if topic == ENGINE_EVENTS.name:
                        events.append(item)
        if n:
            self.model.seq += 1
        return n, events

    def close(self) -> None:
        self._queue.clear()


class ModelTap:
    """A model kept current by synchronous bus handlers (no queue, nothing to drain): what the
    instance sends a UI that attaches."""

    def __init__(self, bus: Bus) -> None:
        self.model = m = UiModel()
        self.dirty = False
        handlers = model_handlers(m)
        self._offs = [bus.on(t, self._counted(handlers[t.name])) for t, _, _ in UI_TOPICS]
        self._offs.append(bus.on(Topics.TRADES, self._on_trade))

    def _counted(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        def on_msg(msg: Any) -> None:
            handler(msg)
            self.model.seq += 1

        return on_msg

    def _on_trade(self, t: Trade) -> None:
        self.model.add_trade(t)
        self.dirty = True

    def partial(self) -> Bar | None:
        """The bar in progress (built once per call after new trades)."""
        if self.dirty:
            self.dirty = False
            return self.model.refresh_partial()
        return self.model.partial

    def close(self) -> None:
        for off in self._offs:
            off()
        self._offs.clear()
