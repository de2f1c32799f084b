"""The execution engine: drives one :class:`core.lifecycle.IntentLifecycle` per intent against a venue.

Inputs come from the bus (``engine:intents``, ``guards``, the book top, 1-minute bars for ATR(5m))
and from the venue (:meth:`Venue.events`). Every action the lifecycles ask for is executed against
the venue with retries for retryable :class:`VenueError` and timeouts; every transition is an
:class:`EngineEvent`, handed to ``on_event`` (the activity log: written before it is shown) and then
published on ``engine:events``.

Trading states: ``active`` (entries allowed), ``reducing`` (reduce-only orders only: new intents are
rejected, exits keep working), ``halted`` (after the kill switch: nothing is placed).

Usage: ``await engine.step()`` processes everything pending once (tests, replay); ``await
engine.run()`` loops until :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

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
from core.guards import GUARDS, GuardReport
from core.indicators import Atr, Resampler
from core.intents import INTENTS, Intent
from core.lifecycle import IntentLifecycle, Phase
from core.models import Bar, BookTop
from core.preflight import PreflightContext, day_pnl_pct, realized_net
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
from execution.killswitch import KillResult, KillSwitch, Sleep

log = logging.getLogger(__name__)
T = TypeVar("T")
DAY_MS = 86_400_000
QTY_EPS = 1e-9


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class Engine:
    def __init__(
        self,
        bus: Bus,
        venue: Venue,
        clock: Clock,
        cfg: EngineConfig | None = None,
        on_event: Callable[[EngineEvent], None] | None = None,
        *,
        equity: Callable[[], float] | None = None,
        priority_fee: Callable[[], float | None] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.bus = bus
        self.venue = venue
        self.clock = clock
        self.cfg = cfg = cfg if cfg is not None else EngineConfig()
        self.on_event = on_event
        self.equity_fn = equity
        self.priority_fee_fn = priority_fee
        self.sleep = sleep
        self.killswitch = KillSwitch(venue, clock, cfg, sleep)
        self.trading_state = TradingState.ACTIVE
        self.automation_on = True
        self.lifecycles: dict[str, IntentLifecycle] = {}
        self.seen_intents: set[str] = set()
        self.venue_state = VenueState.ACTIVE
        self.guard: GuardReport | None = None
        self.bid: float | None = None
        self.ask: float | None = None
        self.atr: float | None = None
        self.day_pnl: float | None = None
        self.start_equity = cfg.equity_usd
        self._new_bar = False
        self._resampler = Resampler(cfg.atr_bar_minutes)
        self._atr = Atr(cfg.atr_period)
        self._intents: deque[Intent] = deque()
        self._day: int | None = None
        self._baseline_net = 0.0
        self._last_pnl_check = -(10**18)
        self._inflight = 0
        self._pending: list[tuple[IntentLifecycle, Step]] = []
        self._running = False
        self._wake = asyncio.Event()
        self._offs = [
            bus.on(INTENTS, self._on_intent),
            bus.on(GUARDS, self._on_guard),
            bus.on(Topics.BOOK, self._on_book),
            bus.on(Topics.BARS, self._on_bar),
        ]

    # ------------------------------------------------------------------ bus inputs (sync)
    def _on_intent(self, intent: Intent) -> None:
        self._intents.append(intent)
        self._wake.set()

    def _on_guard(self, report: GuardReport) -> None:
        if self.guard is None or report.ts >= self.guard.ts:
            self.guard = report

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

    def close(self) -> None:
        for off in self._offs:
            off()
        self._offs = []

    # ------------------------------------------------------------------ control
    def set_automation(self, on: bool) -> None:
        if on and self.trading_state == TradingState.HALTED:
            raise RuntimeError("the kill switch is engaged: resume trading first (set_trading_state)")
        if on != self.automation_on:
            self.automation_on = on
            self._emit(EngineEvent(kind="automation", intent_id="", ts=self.clock.now_ms(), data={"on": on}))

    def set_trading_state(self, state: TradingState, reason: str = "") -> None:
        """Operator control. Leaving ``halted`` re-arms the kill switch (automation stays off)."""
        if state == self.trading_state:
            return
        old, self.trading_state = self.trading_state, state
        if old == TradingState.HALTED:
            self.killswitch.reset()
        self._emit(
            EngineEvent(
                kind="trading_state",
                intent_id="",
                ts=self.clock.now_ms(),
                data={"from": str(old), "to": str(state), "reason": reason},
            )
        )
        if state != TradingState.ACTIVE:
            now = self.clock.now_ms()
            for lc in self.active():
                self._pending.append((lc, lc.abandon_entry(now, f"trading state {state}")))
            self._wake.set()

    def active(self) -> list[IntentLifecycle]:
        return [lc for lc in self.lifecycles.values() if not lc.terminal]

    async def kill(self, reason: str, flatten: bool | None = None) -> KillResult:
        """Cancel every open order, disable automation, optionally flatten, record and broadcast why;
        retries until the venue confirms. Idempotent."""
        flat = self.cfg.flatten_on_kill if flatten is None else flatten
        now = self.clock.now_ms()
        first = not self.killswitch.engaged
        self.trading_state = TradingState.HALTED
        self.automation_on = False
        if first:
            self._emit(
                EngineEvent(
                    kind="kill_switch",
                    intent_id="",
                    ts=now,
                    data={"stage": "engaged", "reason": reason, "flatten": flat},
                )
            )
            for lc in list(self.lifecycles.values()):
                self._emit_step(lc.on(Kill(ts=now, reason=reason)))
        result = await self.killswitch.engage(reason, flat)
        waited = 0.0
        limit = self.cfg.call_timeout_s * max(1, self.cfg.call_retries)
        while self._inflight and waited < limit:  # a call in flight may land after the cancel
            await asyncio.sleep(0.01)
            waited += 0.01
        if not result.already or waited:
            result = await self.killswitch.engage(reason, flat) if waited else result
            self._emit(
                EngineEvent(
                    kind="kill_switch",
                    intent_id="",
                    ts=self.clock.now_ms(),
                    data={
                        "stage": "confirmed" if result.confirmed else "unconfirmed",
                        "reason": result.reason,
                        "cancelled": result.cancelled,
                        "attempts": result.attempts,
                        "flattened": result.flattened,
                        "position": result.position,
                        "errors": list(result.errors),
                    },
                )
            )
        return result

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        self._running = True
        while self._running:
            try:
                await self.step()
            except Exception as e:  # the loop must survive; the error is recorded
                log.exception("engine step failed")
                self._emit(
                    EngineEvent(
                        kind="error",
                        intent_id="",
                        ts=self.clock.now_ms(),
                        data={"stage": "step", "reason": repr(e)},
                    )
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.poll_interval_s)
            self._wake.clear()

    def stop(self) -> None:
        self._running = False
        self._wake.set()

    async def step(self) -> None:
        """Process venue events, pending intents, one tick for every live lifecycle, the daily stop."""
        if (
            self.killswitch.engaged
            and self.killswitch.result is not None
            and not (self.killswitch.result.confirmed)
        ):
            await self.kill(self.killswitch.reason)
        await self._pump_venue()
        pending, self._pending = self._pending, []
        for lc, st in pending:
            await self._drive(lc, st)
        while self._intents:
            await self._handle_intent(self._intents.popleft())
            await self._pump_venue()
        tick = Tick(
            ts=self.clock.now_ms(),
            bid=self.bid,
            ask=self.ask,
            guard=self.guard,
            atr=self.atr,
            new_bar=self._new_bar,
        )
        self._new_bar = False
        for lc in self.active():
            await self._drive(lc, lc.on(tick))
        await self._pump_venue()
        await self._check_daily_stop()

    # ------------------------------------------------------------------ intents
    def _reject(self, intent: Intent, reasons: list[str]) -> None:
        self._emit(
            EngineEvent(
                kind="intent_rejected", intent_id=intent.id, ts=self.clock.now_ms(), data={"reasons": reasons}
            )
        )

    async def _handle_intent(self, intent: Intent) -> None:
        if intent.id in self.seen_intents:
            self._reject(intent, ["duplicate intent id (never submitted twice)"])
            return
        self.seen_intents.add(intent.id)
        why: list[str] = []
        if self.trading_state != TradingState.ACTIVE:
            why.append(f"trading state is {self.trading_state}")
        if not self.automation_on and intent.source == "signal":
            why.append("automation is off")
        if self.venue_state != VenueState.ACTIVE:
            why.append(f"venue is {self.venue_state}")
        if self.active():
            why.append("another intent is in progress")
        if why:
            self._reject(intent, why)
            return
        now = self.clock.now_ms()
        await self._refresh_pnl(now, force=True)
        fee = self.priority_fee_fn() if self.priority_fee_fn is not None else None
        ctx = PreflightContext(
            now_ms=now,
            guard=self.guard,
            equity_usd=self.start_equity,
            day_pnl_pct=self.day_pnl,
            priority_fee=fee,
        )
        lc = IntentLifecycle(intent, self.cfg)
        lc.last = Tick(ts=now, bid=self.bid, ask=self.ask, guard=self.guard)
        self.lifecycles[intent.id] = lc
        await self._drive(lc, lc.start(ctx))

    # ------------------------------------------------------------------ driving
    def _emit(self, ev: EngineEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(ev)  # the activity log first: recorded before it is shown
            except Exception:
                log.exception("on_event handler failed for %s", ev.kind)
        self.bus.publish(ENGINE_EVENTS, ev)

    def _emit_step(self, st: Step) -> None:
        for ev in st.events:
            self._emit(ev)

    async def _drive(self, lc: IntentLifecycle, step: Step) -> None:
        todo: deque[Step] = deque([step])
        while todo:
            st = todo.popleft()
            self._emit_step(st)
            for action in st.actions:
                for inp in await self._execute(lc, action):
                    todo.append(lc.on(inp))

    async def _pump_venue(self) -> None:
        for _ in range(100):  # bounded: each round may cause more events
            evs = self.venue.events()
            if not evs:
                return
            for ev in evs:
                now = self.clock.now_ms()
                if isinstance(ev, VenueStatus):
                    if ev.state != self.venue_state:
                        self.venue_state = ev.state
                        self._emit(
                            EngineEvent(
                                kind="venue_status",
                                intent_id="",
                                ts=now,
                                data={"state": str(ev.state), "reason": ev.reason},
                            )
                        )
                    continue
                inp: Input
                if isinstance(ev, OrderUpdate):
                    tag = ev.order.request.client_tag
                    inp = OrderChanged(ts=now, order=ev.order, reason=ev.reason)
                elif isinstance(ev, FillEvent):
                    tag = ev.fill.client_tag
                    inp = Filled(fill=ev.fill)
                else:
                    continue
                lc = self._owner(tag)
                if lc is not None:
                    await self._drive(lc, lc.on(inp))

    def _owner(self, tag: str) -> IntentLifecycle | None:
        if ":" not in tag:
            return None
        return self.lifecycles.get(tag.rsplit(":", 1)[0])

    # ------------------------------------------------------------------ venue calls
    async def _call(
        self, fn: Callable[[], Awaitable[T]], recover: Callable[[], Awaitable[T | None]] | None = None
    ) -> T:
        """Call with a timeout and retries on retryable errors. ``recover`` runs before a retry and
        may return the outcome of an ambiguous earlier attempt (so nothing is done twice)."""
        delay = self.cfg.retry_backoff_s
        tries = max(1, self.cfg.call_retries)
        self._inflight += 1
        try:
            for i in range(tries):
                try:
                    return await asyncio.wait_for(fn(), self.cfg.call_timeout_s)
                except VenueError as e:
                    if not e.retryable or i == tries - 1:
                        raise
                except TimeoutError:
                    if i == tries - 1:
                        raise VenueError("timeout", retryable=True) from None
                await self.sleep(delay)
                delay *= 2
                if recover is not None:
                    found = await recover()
                    if found is not None:
                        return found
            raise VenueError("retries exhausted", retryable=True)
        finally:
            self._inflight -= 1

    async def _find_by_tag(self, req: OrderRequest) -> Order | None:
        try:
            for o in await self.venue.open_orders(req.market):
                if o.request.client_tag == req.client_tag:
                    return o
            fills = [f for f in await self.venue.fills(0) if f.client_tag == req.client_tag]
        except VenueError:
            return None
        if not fills:
            return None
        qty = sum(f.size for f in fills)
        avg = sum(f.size * f.price for f in fills) / qty
        return Order(
            order_id=fills[0].order_id,
            request=req,
            status=OrderStatus.OPEN,
            filled=qty,
            avg_price=avg,
            ts=fills[-1].ts,
        )

    def _allowed(self, lc: IntentLifecycle, req: OrderRequest) -> str:
        if lc.phase == Phase.KILLED:
            return "kill switch engaged"
        if self.trading_state == TradingState.HALTED:
            return "trading halted"
        if self.trading_state == TradingState.REDUCING and not req.reduce_only:
            return "trading state is reducing (reduce-only orders only)"
        return ""

    async def _execute(self, lc: IntentLifecycle, a: Action) -> list[Input]:
        now = self.clock.now_ms
        if isinstance(a, Place):
            req = a.req
            why = self._allowed(lc, req)
            if why:
                return [PlaceFailed(ts=now(), tag=req.client_tag, reason=why)]
            try:
                order = await self._call(lambda: self.venue.place(req), lambda: self._find_by_tag(req))
            except VenueError as e:
                return [PlaceFailed(ts=now(), tag=req.client_tag, reason=str(e))]
            except Exception as e:
                return [PlaceFailed(ts=now(), tag=req.client_tag, reason=repr(e))]
            return [Accepted(ts=now(), tag=req.client_tag, order=order)]
        if isinstance(a, Cancel):
            if lc.phase == Phase.KILLED:
                return []
            try:
                await self._call(lambda: self._cancel_call(a.order_id), lambda: self._gone(a.order_id))
            except Exception as e:
                if await self._gone(a.order_id):
                    return []  # already finished; its final event comes from the venue
                return [CancelFailed(ts=now(), tag=a.tag_, reason=str(e))]
            return []
        if isinstance(a, Modify):
            if lc.phase == Phase.KILLED:
                return []
            try:
                order = await self._call(
                    lambda: self.venue.modify(
                        a.order_id, price=a.price, size=a.size, trigger_price=a.trigger_price
                    )
                )
            except Exception as e:
                return [ModifyFailed(ts=now(), tag=a.tag_, reason=str(e))]
            return [Modified(ts=now(), tag=a.tag_, order=order)]
        if isinstance(a, CancelAndPlace):
            bad = [r for r in a.reqs if self._allowed(lc, r)]
            if bad:
                return [PlaceFailed(ts=now(), tag=r.client_tag, reason=self._allowed(lc, r)) for r in a.reqs]
            try:
                orders = await self._call(lambda: self.venue.cancel_and_place(a.cancel_ids, a.reqs))
            except Exception as e:
                return [PlaceFailed(ts=now(), tag=r.client_tag, reason=str(e)) for r in a.reqs]
            return [Accepted(ts=now(), tag=o.request.client_tag, order=o) for o in orders]
        if isinstance(a, Flatten):
            ok, why = await self._flatten(a)
            return [Flattened(ts=now(), ok=ok, reason=why)]
        if isinstance(a, Halt):
            await self.kill(a.reason, flatten=True)
            return []
        return []

    async def _cancel_call(self, order_id: str) -> bool:
        await self.venue.cancel(order_id)
        return True

    async def _gone(self, order_id: str) -> bool | None:
        """True when the order is no longer open (None when that cannot be told)."""
        try:
            return all(o.order_id != order_id for o in await self.venue.open_orders(self.cfg.market)) or None
        except VenueError:
            return None

    async def _flatten(self, a: Flatten) -> tuple[bool, str]:
        for oid in a.cancel_ids:
            with contextlib.suppress(Exception):
                await self._call(functools.partial(self._cancel_call, oid))
        last = ""
        for i in range(max(1, self.cfg.call_retries)):
            try:
                pos = (await self._call(lambda: self.venue.position(self.cfg.market))).size
                if abs(pos) <= QTY_EPS:
                    return True, a.reason
                req = OrderRequest(
                    market=self.cfg.market,
                    side="sell" if pos > 0 else "buy",
                    type=OrderType.MARKET,
                    size=abs(pos),
                    reduce_only=True,
                    client_tag=f"{a.intent_id}:flat{i + 1}",
                )
                await self._call(functools.partial(self.venue.place, req))
            except Exception as e:
                last = str(e)
            await self.sleep(self.cfg.retry_backoff_s)
        try:
            pos = (await self.venue.position(self.cfg.market)).size
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
            self.day_pnl = None  # unknown: preflight fails closed
            return
        mark = (self.bid + self.ask) / 2 if self.bid is not None and self.ask is not None else None
        day = now // DAY_MS
        if self._day is None or day != self._day:
            if self._day is not None:
                self.start_equity = (
                    self.equity_fn()
                    if self.equity_fn is not None
                    else (self.start_equity * (1 + (self.day_pnl or 0.0) / 100))
                )
            elif self.equity_fn is not None:
                self.start_equity = self.equity_fn()
            self._day = day
            self._baseline_net = realized_net(pos)
        self.day_pnl = day_pnl_pct(pos, mark, self._baseline_net, self.start_equity)

    async def _check_daily_stop(self) -> None:
        if self.trading_state == TradingState.HALTED:
            return
        await self._refresh_pnl(self.clock.now_ms())
        if self.day_pnl is not None and self.day_pnl <= -self.cfg.daily_stop_pct:
            await self.kill(
                f"daily stop: day PnL {self.day_pnl:.2f}% <= -{self.cfg.daily_stop_pct:g}%",
                flatten=self.cfg.flatten_on_kill,
            )

    def snapshot(self) -> dict[str, Any]:
        """State for status commands and the UI."""
        return {
            "trading_state": str(self.trading_state),
            "automation_on": self.automation_on,
            "venue_state": str(self.venue_state),
            "day_pnl_pct": self.day_pnl,
            "start_equity": self.start_equity,
            "kill": None
            if self.killswitch.result is None
            else {"reason": self.killswitch.result.reason, "confirmed": self.killswitch.result.confirmed},
            "active": [
                {
                    "intent_id": lc.intent.id,
                    "phase": str(lc.phase),
                    "position": lc.position,
                    "stop": lc.stop_price,
                }
                for lc in self.active()
            ],
        }
