"""The execution engine: drives one :class:`core.lifecycle.IntentLifecycle` per intent against a venue.

Inputs come from the bus (``engine:intents``, ``guards``, the book top, 1-minute bars for ATR(5m))
and from the venue (:meth:`Venue.events`). Every action the lifecycles ask for is executed against
the venue with retries for retryable :class:`VenueError` and timeouts; every transition is an
:class:`EngineEvent`, handed to ``on_event`` (the activity log: written before it is shown) and then
published on ``engine:events``.

Trading states: ``active`` (entries allowed), ``reducing`` (reduce-only orders only: new intents are
rejected, exits keep working), ``halted`` (after the kill switch: nothing is placed).

UNKNOWN orders (an on-chain send that may or may not have landed): while one is unknown in the
market, no new risk goes out there — new intents are rejected and only reduce-only orders are
placed — and ``order_unknown`` / ``order_resolved`` events say so, with the signatures.

Every venue call goes through :class:`execution.order_gateway.OrderGateway` (retries, ambiguous
outcomes, u8 user order ids, the write-ahead order journal). With a durable journal the engine
reconciles with the venue before it trades (:meth:`Engine.recover`, see :mod:`core.recovery`).

Usage: ``await engine.step()`` processes everything pending once (tests, replay); ``await
engine.run()`` loops until :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from core.bus import Bus, Topics
from core.clock import Clock
from core.engine_types import (
    ENGINE_EVENTS,
    Accepted,
    Action,
    Cancel,
    CancelAndPlace,
    CancelFailed,
    EngineConfig,
    EngineEvent,
    Filled,
    Flatten,
    Flattened,
    Halt,
    Input,
    Kill,
    Modified,
    Modify,
    ModifyFailed,
    OrderChanged,
    Place,
    PlaceFailed,
    Step,
    Tick,
)
from core.engine_types import TradingState as TradingState  # re-exported: execution.engine.TradingState
from core.guards import GUARDS, GuardReport
from core.indicators import Atr, Resampler
from core.intents import INTENTS, Intent, SignalVeto
from core.journal_port import JournalError, OrderJournal
from core.lifecycle import IntentLifecycle
from core.lifecycle_state import Phase
from core.models import Bar, BookTop
from core.preflight import PreflightContext
from core.storage_health import StorageHealth
from core.venue import (
    FillEvent,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Venue,
    VenueError,
    VenueState,
    VenueStatus,
)
from execution.day_pnl import DayPnl
from execution.engine_recovery import recover
from execution.killswitch import KillResult, KillSwitch, Sleep
from execution.order_gateway import OrderGateway, intent_of

log = logging.getLogger(__name__)
QTY_EPS = 1e-9
#: journal intent state for an ``intent_done`` outcome (anything else: ``done``)
_DONE_STATE = {"killed": "killed", "rejected": "rejected", "flatten_failed": "failed"}
_TERMINAL_EVENT = {
    OrderStatus.FILLED: "order_filled",
    OrderStatus.CANCELLED: "order_cancelled",
    OrderStatus.REJECTED: "order_rejected",
}


class Engine:
    def __init__(
        self,
        bus: Bus,
        venue: Venue,
        clock: Clock,
        cfg: EngineConfig | None = None,
        on_event: Callable[[EngineEvent], None] | None = None,
        *,
        equity: Callable[[], float | None] | None = None,
        equity_from_venue: bool = False,
        priority_fee: Callable[[], float | None] | None = None,
        sleep: Sleep = asyncio.sleep,
        journal: OrderJournal | None = None,
        on_latency: Callable[[float], None] | None = None,
        guard_now: Callable[[], GuardReport | None] | None = None,
        guard_tick: Callable[[], object] | None = None,
        storage_health: StorageHealth | None = None,
    ) -> None:
        self.bus = bus
        self.venue = venue
        self.clock = clock
        self.cfg = cfg = cfg if cfg is not None else EngineConfig()
        self.on_event = on_event
        self.priority_fee_fn = priority_fee
        #: evaluates the guards now (the monitor publishes only on change and once a minute; a
        #: decision needs a report no older than guard_max_age_s)
        self.guard_now = guard_now
        #: re-evaluates only the guard status (the monitor still publishes on change), used on a
        #: step where nothing reads the report: no intent waiting and no lifecycle entering
        self.guard_tick = guard_tick
        self.sleep = sleep
        self.gateway = OrderGateway(
            venue, cfg, journal, now_ms=clock.now_ms, sleep=sleep, on_latency=on_latency
        )
        self.journal = self.gateway.journal
        self.killswitch = KillSwitch(venue, clock, cfg, sleep, place=self._place_kill_order)
        self.trading_state = TradingState.ACTIVE
        self.trading_reason = ""
        #: durable writes (journal, venue state, activity log): failing → REDUCING (fail closed)
        self.storage = storage_health if storage_health is not None else StorageHealth()
        self.storage.subscribe(self._on_storage)
        #: set once the app leaves (``engine.on_exit``, :mod:`execution.leaving`): no new risk
        self.leaving = ""
        self.automation_on = cfg.automation == "on" or (cfg.automation == "auto" and cfg.venue == "paper")
        #: with a durable journal, nothing is traded before :meth:`recover` reconciled with the venue
        self.recovered = journal is None
        self.lifecycles: dict[str, IntentLifecycle] = {}
        self.venue_state = VenueState.ACTIVE
        self.venue_reason = ""
        self.guard: GuardReport | None = None
        self.bid: float | None = None
        self.ask: float | None = None
        self.atr: float | None = None
        self.equity_fn = equity
        #: the venue values the account (Drift): sizing, the leverage cap and the daily stop use it
        self.equity_from_venue = equity_from_venue
        self.equity_now: float | None = cfg.equity_usd if not equity_from_venue else None
        self.pnl = DayPnl(cfg.equity_usd, equity, from_equity=equity_from_venue)
        #: orders whose transaction may or may not have landed, by order id
        self.unknown: dict[str, Order] = {}
        self.automation_block = ""
        self._new_bar = False
        self._resampler = Resampler(cfg.atr_bar_minutes)
        self._atr = Atr(cfg.atr_period)
        self._intents: deque[Intent] = deque()
        self._last_pnl_check = -(10**18)
        self._pending: list[tuple[IntentLifecycle, Step]] = []
        self._plans: dict[str, dict[str, Any]] = {}  # protection plan last journaled, per intent
        self._running = False
        self._wake = asyncio.Event()
        self._offs = [
            bus.on(INTENTS, self._on_intent),
            bus.on(GUARDS, self._on_guard),
            bus.on(Topics.BOOK, self._on_book),
            bus.on(Topics.BARS, self._on_bar),
        ]

    @property
    def pending_intents(self) -> bool:
        return bool(self._intents)

    @property
    def day_pnl(self) -> float | None:
        return self.pnl.pct

    @property
    def start_equity(self) -> float:
        return self.pnl.start_equity

    # ------------------------------------------------------------------ bus inputs (sync)
    def _on_intent(self, intent: Intent) -> None:
        self._intents.append(intent)
        self._wake.set()

    def _on_guard(self, report: GuardReport) -> None:
        if self.guard is None or report.ts >= self.guard.ts:
            self.guard = report

    def _refresh_guard(self) -> None:
        if self.guard_now is not None:
            g = self.guard_now()
            if g is not None:
                self._on_guard(g)

    def _on_book(self, book: BookTop) -> None:
        if book.bid_px > 0 and book.ask_px > 0:
            self.bid, self.ask = book.bid_px, book.ask_px

    def _on_bar(self, bar: Bar) -> None:
        if not bar.closed:
            return
        for b in self._resampler.add(bar):
            v = self._atr.update_bar(b)
            if v is not None:
                self.on_atr(v)

    def on_atr(self, atr: float) -> None:
        """A new ATR(5m) value (a 5-minute bar closed): the trail is re-evaluated at the next step."""
        self.atr = atr
        self._new_bar = True
        self._wake.set()

    def wake(self) -> None:
        """Ask the run loop for a step now (new venue events, a command)."""
        self._wake.set()

    def close(self) -> None:
        for off in self._offs:
            off()
        self._offs = []

    # ------------------------------------------------------------------ control
    def _engine_event(self, kind: str, **data: Any) -> None:
        self._emit(EngineEvent(kind=kind, intent_id="", ts=self.clock.now_ms(), data=data))

    def record_veto(self, veto: SignalVeto) -> None:
        """A setup the signal detected and did not trade (a guard, the warm-up, the book): recorded
        like the engine's own events (activity log, then the bus), with each guard's value and
        threshold."""
        self._emit(EngineEvent(kind="signal_vetoed", intent_id=veto.id, ts=veto.ts, data={
            "side": veto.side, "bar_ts": veto.bar_ts, "by_guards": veto.guard_vetoed,
            "vetoes": [msgspec.to_builtins(v) for v in veto.vetoes]}))

    def record(self, kind: str, **data: Any) -> None:
        """An engine-level event (activity log first, then the bus)."""
        self._engine_event(kind, **data)

    def block_automation(self, reason: str) -> None:
        """Automation cannot be on while ``reason`` holds (e.g. the delegate was revoked); '' lifts it
        (automation stays as it is: the operator turns it on)."""
        self.automation_block = reason
        if reason and self.automation_on:
            self.automation_on = False
            self._engine_event("automation", on=False, reason=reason)

    def set_automation(self, on: bool) -> None:
        if on and self.trading_state == TradingState.HALTED:
            raise RuntimeError("the kill switch is engaged: resume trading first (r in the kill panel, "
                               "or `autotrader resume`)")
        if on and self.automation_block:
            raise RuntimeError(f"automation cannot be turned on: {self.automation_block}")
        if on != self.automation_on:
            self.automation_on = on
            self._engine_event("automation", on=on)

    def set_trading_state(self, state: TradingState, reason: str = "") -> None:
        """Operator control. Leaving ``halted`` re-arms the kill switch (automation stays off).
        While storage fails, ``active`` is not reachable: the engine goes ``reducing`` instead."""
        if state == TradingState.ACTIVE and self.storage.reason:
            state, reason = TradingState.REDUCING, self.storage.reason
        if state == self.trading_state:
            return
        self.trading_reason = "" if state == TradingState.ACTIVE else reason
        old, self.trading_state = self.trading_state, state
        if old == TradingState.HALTED:
            self.killswitch.reset()
        self._engine_event("trading_state", **{"from": str(old), "to": str(state), "reason": reason})
        if state != TradingState.ACTIVE:
            now = self.clock.now_ms()
            for lc in self.active():
                self._pending.append((lc, lc.abandon_entry(now, f"trading state {state}")))
            self._wake.set()

    def control_state(self) -> dict[str, Any]:
        """What must survive a restart: a kill stays engaged, automation stays as the operator left it."""
        return {
            "trading_state": str(self.trading_state),
            "trading_reason": self.trading_reason,
            "automation_on": self.automation_on,
            "kill_reason": self.killswitch.reason if self.killswitch.engaged else "",
        }

    def restore_control(self, state: dict[str, Any]) -> None:
        ts = str(state.get("trading_state", "active"))
        if ts in TradingState.__members__.values():
            self.trading_state = TradingState(ts)
            self.trading_reason = str(state.get("trading_reason") or "")
        self.automation_on = bool(state.get("automation_on", self.automation_on))
        if self.trading_state == TradingState.HALTED:
            self.automation_on = False
            self.killswitch.restore(str(state.get("kill_reason") or "kill switch engaged before restart"))
            self.trading_reason = self.trading_reason or self.killswitch.reason

    def _on_storage(self, store: str, failing: bool, error: str) -> None:
        """A store just failed (called from inside the failed write): REDUCING at once."""
        if failing:
            self._check_storage()
            self._wake.set()

    def _check_storage(self) -> None:
        """Fail closed: a write the storage refused stops new risk until the operator resumes."""
        why = self.storage.reason
        if why and self.trading_state == TradingState.ACTIVE:
            log.error("trading reducing: %s", why)
            self.set_trading_state(TradingState.REDUCING, why)

    def _reads_guard(self) -> bool:
        return any(lc.reads_guard for lc in self.lifecycles.values())

    def active(self) -> list[IntentLifecycle]:
        return [lc for lc in self.lifecycles.values() if not lc.terminal]

    async def kill(self, reason: str, flatten: bool | None = None, cancel_all: bool = False) -> KillResult:
        """Cancel entries and take-profits (the stop on an open position stays unless ``cancel_all``),
        disable automation, optionally flatten, record and broadcast why; retries until the venue
        confirms (:mod:`execution.killswitch`). Again: says what it cancelled this time."""
        flat = self.cfg.flatten_on_kill if flatten is None else flatten
        now = self.clock.now_ms()
        first = not self.killswitch.engaged
        self.trading_state = TradingState.HALTED
        self.automation_on = False
        if first:
            self.trading_reason = reason
            self.killswitch.restore(reason)  # engaged now: a concurrent kill() is not a first one
            steps = [lc.on(Kill(ts=now, reason=reason)) for lc in list(self.lifecycles.values())]
            # the cancels go out first; recording the kill (storage) never delays nor blocks them
            engaging = asyncio.ensure_future(self.killswitch.engage(reason, flat, cancel_all))
            await asyncio.sleep(0)
            self._engine_event("kill_switch", stage="engaged", reason=reason, flatten=flat)
            for st in steps:
                self._emit_step(st)
            result = await engaging
        else:
            result = await self.killswitch.engage(reason, flat, cancel_all)
        result = msgspec.structs.replace(result, already=not first)
        waited = 0.0
        limit = self.cfg.call_timeout_s * max(1, self.cfg.call_retries)
        while self.gateway.inflight and waited < limit:  # a call in flight may land after the cancel
            await asyncio.sleep(0.01)
            waited += 0.01
        if waited:
            again = await self.killswitch.engage(reason, flat, cancel_all)
            result = msgspec.structs.replace(
                again, cancelled=again.cancelled + result.cancelled, already=result.already,
                cancelled_orders=result.cancelled_orders + again.cancelled_orders)
        self._engine_event(
            "kill_switch",
            stage="confirmed" if result.confirmed else "unconfirmed",
            reason=result.reason,
            cancelled=result.cancelled,
            attempts=result.attempts,
            flattened=result.flattened,
            position=result.position,
            errors=list(result.errors),
            already=result.already,
            cancel_all=cancel_all,
            cancelled_ids=[o["order_id"] for o in result.cancelled_orders],  # the log names every order
            kept=[o["order_id"] for o in result.kept],
            unknown=result.unknown_orders,
            **({"unprotected": True} if result.unprotected else {}),
        )
        return result

    async def _place_kill_order(self, req: OrderRequest) -> Order:
        order = await self.gateway.place(req, intent_of(req.client_tag), "flat")
        self._order_submitted(intent_of(req.client_tag), "flat", order)
        return order

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        self._running = True
        while self._running:
            try:
                await self.step()
            except Exception as e:  # the loop must survive; the error is recorded
                log.exception("engine step failed")
                self._engine_event("error", stage="step", reason=repr(e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.poll_interval_s)
            self._wake.clear()

    def stop(self) -> None:
        self._running = False
        self._wake.set()

    async def step(self) -> None:
        """Process venue events, pending intents, one tick for every live lifecycle, the daily stop."""
        self._check_storage()
        if not self.recovered:
            await recover(self)
        if self.equity_from_venue and self.equity_fn is not None:
            self.equity_now = self.equity_fn()
        ks = self.killswitch
        if ks.engaged and ks.result is not None and not ks.result.confirmed:
            await self.kill(ks.reason, ks.last_flatten, ks.last_cancel_all)
        await self._pump_venue()
        pending, self._pending = self._pending, []
        for lc, st in pending:
            await self._drive(lc, st)
        if self.guard_tick is None or self._intents or self._reads_guard():
            self._refresh_guard()
        else:
            self.guard_tick()  # idle: the report is refreshed before anything reads it
        while self._intents:
            await self._handle_intent(self._intents.popleft())
            await self._pump_venue()
        tick = Tick(ts=self.clock.now_ms(), bid=self.bid, ask=self.ask, guard=self.guard, atr=self.atr,
                    new_bar=self._new_bar)
        self._new_bar = False
        for lc in self.active():
            await self._drive(lc, lc.on(tick))
        await self._pump_venue()
        await self._check_daily_stop()

    # ------------------------------------------------------------------ intents
    def _reject(self, intent: Intent, reasons: list[str]) -> None:
        self._emit(EngineEvent(kind="intent_rejected", intent_id=intent.id, ts=self.clock.now_ms(),
                               data={"reasons": reasons}))

    async def _handle_intent(self, intent: Intent) -> None:
        now = self.clock.now_ms()
        self._check_storage()
        if not self.journal.begin_intent(intent.id, msgspec.to_builtins(intent), ts_ms=now):
            self._emit(EngineEvent(kind="intent_rejected", intent_id=intent.id, ts=now,
                                   data={"reasons": ["duplicate intent id (never submitted twice)"],
                                         "duplicate": True}))
            return
        why: list[str] = []
        if self.trading_state != TradingState.ACTIVE:
            why.append(f"trading state is {self.trading_state}")
        if not self.automation_on and intent.source == "signal":
            why.append("automation is off")
        if self.venue_state != VenueState.ACTIVE:
            detail = f": {self.venue_reason}" if self.venue_reason else ""
            why.append(f"venue is {self.venue_state}{detail}")
        if self.active():
            why.append("another intent is in progress")
        unknown = self.unknown_note()
        if unknown:
            why.append(unknown)
        equity = self.start_equity
        if self.equity_from_venue:
            equity = self.equity_now if self.equity_now is not None else 0.0
            if self.equity_now is None:
                why.append("equity unknown (the venue's account value cannot be read)")
        if why:
            self._reject(intent, why)
            return
        await self._refresh_pnl(now, force=True)
        fee = self.priority_fee_fn() if self.priority_fee_fn is not None else None
        ctx = PreflightContext(now_ms=now, guard=self.guard, equity_usd=equity,
                               day_pnl_pct=self.day_pnl, priority_fee=fee)
        lc = IntentLifecycle(intent, self.cfg)
        lc.last = Tick(ts=now, bid=self.bid, ask=self.ask, guard=self.guard)
        self.lifecycles[intent.id] = lc
        await self._drive(lc, lc.start(ctx))

    # ------------------------------------------------------------------ driving
    def _emit(self, ev: EngineEvent) -> None:
        self._journal_intent(ev)
        if self.on_event is not None:
            try:
                self.on_event(ev)  # the activity log first: recorded before it is shown
            except Exception:
                log.exception("on_event handler failed for %s", ev.kind)
        self.bus.publish(ENGINE_EVENTS, ev)

    def _journal_intent(self, ev: EngineEvent) -> None:
        if not ev.intent_id or ev.kind not in ("intent_accepted", "intent_rejected", "intent_done"):
            return
        if ev.kind == "intent_accepted":
            state = "active"
        elif ev.kind == "intent_rejected":
            if ev.data.get("duplicate"):
                return
            state = "rejected"
        else:
            state = _DONE_STATE.get(str(ev.data.get("outcome", "")), "done")
        try:
            self.journal.intent_state(ev.intent_id, state, ts_ms=ev.ts)
        except JournalError as e:
            log.error("journal: %s", e)

    def _journal_protection(self, lc: IntentLifecycle) -> None:
        """Journal the lifecycle's protection plan (stop price, breakeven, TP ladder) when it changed:
        a restart completes a move or a ladder a crash interrupted (:mod:`core.recovery`)."""
        if lc.terminal or lc.entry_qty <= lc.eps:
            return
        plan = lc.protection()
        iid = lc.intent.id
        if self._plans.get(iid) == plan:
            return
        try:
            self.journal.set_protection(iid, plan, ts_ms=self.clock.now_ms())
        except JournalError as e:
            log.error("journal: %s", e)
            return
        self._plans[iid] = plan

    def _emit_step(self, st: Step) -> None:
        for ev in st.events:
            self._emit(ev)

    async def _drive(self, lc: IntentLifecycle, step: Step) -> None:
        todo: deque[Step] = deque([step])
        while todo:
            st = todo.popleft()
            self._emit_step(st)
            if st.actions:
                self._journal_protection(lc)  # the intent of a protective step, before acting on it
            for action in st.actions:
                for inp in await self._execute(lc, action):
                    todo.append(lc.on(inp))

    async def _pump_venue(self) -> None:
        for _ in range(100):  # bounded: each round may cause more events
            evs = self.venue.events()
            if not evs:
                return
            for ev in evs:
                if isinstance(ev, VenueStatus):
                    self._on_venue_status(ev)
                    continue
                now = self.clock.now_ms()
                inp: Input
                if isinstance(ev, OrderUpdate):
                    self.gateway.track(ev.order)
                    self.note_order(ev.order, ev.reason)
                    tag = ev.order.request.client_tag
                    if ev.order.status != OrderStatus.UNKNOWN:  # maybe landed is no confirmation
                        self.gateway.confirmed(tag, rejected=ev.order.status == OrderStatus.REJECTED)
                    inp = OrderChanged(ts=now, order=ev.order, reason=ev.reason)
                elif isinstance(ev, FillEvent):
                    tag = ev.fill.client_tag
                    self.gateway.confirmed(tag)
                    inp = Filled(fill=ev.fill)
                else:
                    continue
                lc = self._owner(tag)
                if lc is not None and tag in lc.slots:
                    await self._drive(lc, lc.on(inp))
                elif isinstance(ev, OrderUpdate):
                    self._untracked(ev)

    def _on_venue_status(self, ev: VenueStatus) -> None:
        if ev.state != self.venue_state or ev.reason != self.venue_reason:
            self.venue_state, self.venue_reason = ev.state, ev.reason
            self._engine_event("venue_status", state=str(ev.state), reason=ev.reason)

    def _untracked(self, ev: OrderUpdate) -> None:
        """An order no lifecycle slot owns (flatten, kill-switch, adopted orphan): still recorded."""
        o = ev.order
        kind = _TERMINAL_EVENT.get(o.status)
        if kind is None:
            return
        tag = o.request.client_tag
        self._emit(EngineEvent(kind=kind, intent_id=intent_of(tag), ts=self.clock.now_ms(), data={
            "role": tag.rsplit(":", 1)[-1] if tag else "unknown", "order_id": o.order_id, "filled": o.filled,
            "avg_price": o.avg_price, "reason": ev.reason}))

    def _owner(self, tag: str) -> IntentLifecycle | None:
        return self.lifecycles.get(intent_of(tag))

    def _order_submitted(self, intent_id: str, role: str, o: Order) -> None:
        r = o.request
        self._emit(EngineEvent(kind="order_submitted", intent_id=intent_id, ts=self.clock.now_ms(), data={
            "role": role, "order_id": o.order_id, "side": r.side, "type": str(r.type), "price": r.price,
            "size": r.size, "reduce_only": r.reduce_only, "user_order_id": r.user_order_id}))

    # ------------------------------------------------------------------ venue calls
    def _allowed(self, lc: IntentLifecycle, req: OrderRequest) -> str:
        if lc.phase == Phase.KILLED:
            return "kill switch engaged"
        if self.trading_state == TradingState.HALTED:
            return "trading halted"
        if self.trading_state == TradingState.REDUCING and not req.reduce_only:
            return "trading state is reducing (reduce-only orders only)"
        if self.storage.reason and not req.reduce_only:
            return self.storage.reason
        if self.leaving and not req.reduce_only:
            return "leaving: no new risk"
        if not req.reduce_only and self.unknown:
            return self.unknown_note()
        return ""

    # ------------------------------------------------------------------ unknown orders
    def note_order(self, o: Order, reason: str = "") -> None:
        """Follow an order's status: entering / leaving UNKNOWN is recorded (with the signatures)."""
        if o.status == OrderStatus.UNKNOWN:
            if o.order_id not in self.unknown:
                self.unknown[o.order_id] = o
                tag = o.request.client_tag
                self._emit(EngineEvent(kind="order_unknown", intent_id=intent_of(tag), ts=self.clock.now_ms(),
                                       data={"order_id": o.order_id,
                                             "role": tag.rsplit(":", 1)[-1] if tag else "",
                                             "signatures": list(o.signatures), "reason": reason,
                                             "market": o.request.market}))
            else:
                self.unknown[o.order_id] = o
        elif o.order_id in self.unknown:
            del self.unknown[o.order_id]
            tag = o.request.client_tag
            self._emit(EngineEvent(kind="order_resolved", intent_id=intent_of(tag), ts=self.clock.now_ms(),
                                   data={"order_id": o.order_id, "status": str(o.status),
                                         "signatures": list(o.signatures), "reason": reason}))

    def unknown_note(self) -> str:
        if not self.unknown:
            return ""
        o = next(iter(self.unknown.values()))
        sig = o.signatures[-1] if o.signatures else "?"
        more = f" (+{len(self.unknown) - 1} more)" if len(self.unknown) > 1 else ""
        return (f"order {o.order_id} is UNKNOWN (signature {sig}){more}: no new risk in {o.request.market} "
                "until the chain says whether it landed")

    async def _execute(self, lc: IntentLifecycle, a: Action) -> list[Input]:
        now = self.clock.now_ms
        gw = self.gateway
        if isinstance(a, Place):
            req = a.req
            why = self._allowed(lc, req)
            if why:
                return [PlaceFailed(ts=now(), tag=req.client_tag, reason=why)]
            slot = lc.slots.get(req.client_tag)
            try:
                order = await gw.place(req, lc.intent.id, slot.role if slot else "entry")
            except Exception as e:
                return [PlaceFailed(ts=now(), tag=req.client_tag, reason=str(e) or repr(e))]
            self.note_order(order, "sent; its landing is not known yet")
            return [Accepted(ts=now(), tag=req.client_tag, order=order)]
        if isinstance(a, Cancel):
            if lc.phase == Phase.KILLED:
                return []
            try:
                await gw.cancel(a.order_id)
            except Exception as e:
                if await gw.gone(a.order_id):
                    return []  # already finished; its final event comes from the venue
                return [CancelFailed(ts=now(), tag=a.tag_, reason=str(e))]
            return []
        if isinstance(a, Modify):
            if lc.phase == Phase.KILLED:
                return []
            try:
                order = await gw.call(lambda: self.venue.modify(
                    a.order_id, price=a.price, size=a.size, trigger_price=a.trigger_price))
            except Exception as e:
                return [ModifyFailed(ts=now(), tag=a.tag_, reason=str(e))]
            return [Modified(ts=now(), tag=a.tag_, order=order)]
        if isinstance(a, CancelAndPlace):
            bad = next((w for r in a.reqs if (w := self._allowed(lc, r))), "")
            if bad:
                return [PlaceFailed(ts=now(), tag=r.client_tag, reason=bad) for r in a.reqs]
            roles = [s.role if (s := lc.slots.get(r.client_tag)) else "entry" for r in a.reqs]
            try:
                orders = await gw.cancel_and_place(a.cancel_ids, a.reqs, lc.intent.id, roles)
            except Exception as e:
                return [PlaceFailed(ts=now(), tag=r.client_tag, reason=str(e)) for r in a.reqs]
            for o in orders:
                self.note_order(o, "sent; its landing is not known yet")
            return [Accepted(ts=now(), tag=o.request.client_tag, order=o) for o in orders]
        if isinstance(a, Flatten):
            ok, why = await self._flatten(a)
            return [Flattened(ts=now(), ok=ok, reason=why)]
        if isinstance(a, Halt):
            await self.kill(a.reason, flatten=True)
            return []
        return []

    async def _flatten(self, a: Flatten) -> tuple[bool, str]:
        gw = self.gateway
        for oid in a.cancel_ids:
            with contextlib.suppress(Exception):
                await gw.cancel(oid)
        last = ""
        m = self.cfg.market
        for i in range(max(1, self.cfg.call_retries)):
            try:
                pos = (await gw.call(lambda: self.venue.position(m))).size
                if abs(pos) <= QTY_EPS:
                    return True, a.reason
                req = OrderRequest(market=m, side="sell" if pos > 0 else "buy", type=OrderType.MARKET,
                                   size=abs(pos), reduce_only=True, client_tag=f"{a.intent_id}:flat{i + 1}")
                self._order_submitted(a.intent_id, "flat", await gw.place(req, a.intent_id, "flat"))
            except Exception as e:
                last = str(e)
            await self.sleep(self.cfg.retry_backoff_s)
        try:
            pos = (await self.venue.position(m)).size
        except VenueError as e:
            return False, f"{a.reason}; flatten unconfirmed: {e}"
        return abs(pos) <= QTY_EPS, f"{a.reason}; {last}" if last else a.reason

    # ------------------------------------------------------------------ daily stop
    async def _refresh_pnl(self, now: int, force: bool = False) -> None:
        if not force and now - self._last_pnl_check < self.cfg.pnl_check_interval_s * 1000:
            return
        self._last_pnl_check = now
        try:
            pos = await self.venue.position(self.cfg.market)
        except VenueError:
            self.pnl.update(now, None, None)  # unknown: preflight fails closed
            return
        mark = (self.bid + self.ask) / 2 if self.bid is not None and self.ask is not None else None
        self.pnl.update(now, pos, mark)

    async def _check_daily_stop(self) -> None:
        if self.trading_state == TradingState.HALTED:
            return
        await self._refresh_pnl(self.clock.now_ms())
        pct = self.day_pnl
        if pct is not None and pct <= -self.cfg.daily_stop_pct:
            await self.kill(f"daily stop: day PnL {pct:.2f}% <= -{self.cfg.daily_stop_pct:g}%",
                            flatten=self.cfg.flatten_on_kill)

    def snapshot(self) -> dict[str, Any]:
        """State for status commands and the UI."""
        res = self.killswitch.result
        return {
            "trading_state": str(self.trading_state),
            "trading_reason": self.trading_reason,
            "automation_on": self.automation_on,
            "storage": self.storage.as_dict(),
            "venue_state": str(self.venue_state),
            "venue_reason": self.venue_reason,
            "recovered": self.recovered,
            "day_pnl_pct": self.day_pnl,
            "start_equity": self.start_equity,
            "unknown_orders": [
                {"order_id": o.order_id, "tag": o.request.client_tag, "side": o.request.side,
                 "type": str(o.request.type), "size": o.request.size, "reduce_only": o.request.reduce_only,
                 "signatures": list(o.signatures)}
                for o in self.unknown.values()
            ],
            "kill": None if not self.killswitch.engaged else {
                "reason": self.killswitch.reason,
                "confirmed": None if res is None else res.confirmed,
                "ts": None if res is None else res.ts,
            },
            "active": [
                {"intent_id": lc.intent.id, "side": lc.intent.side, "phase": str(lc.phase),
                 "position": lc.position, "stop": lc.stop_price,
                 "orders": [s.tag for s in lc.open_orders()]}
                for lc in self.active()
            ],
        }
