"""The kill switch — one meaning everywhere (every venue, the UI key, ``autotrader kill`` with or
without a running instance):

* cancel every order that opens or adds risk (entries) and the take-profits;
* keep the reduce-only stop(s) protecting an open position (a stop is kept only while there is a
  position: flat, it is cancelled too);
* ``flatten``: also close the position with a reduce-only market order (then the stop goes);
* ``cancel_all``: remove the stop too (the position is left without protection: an explicit choice);
* retried with backoff until fresh venue data confirms it; an order whose transaction may or may
  not have landed (``unknown``) is waited for (it may land) and then cancelled.

Automation off and HALTED are the engine's part (:meth:`execution.engine.Engine.kill`). Engaging
again re-runs it and says what it cancelled *this* time (``already=True``). Concurrent callers
are serialized. Any exception from the venue is recorded and retried, never raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec

from core.clock import Clock
from core.engine_types import EngineConfig
from core.venue import Order, OrderRequest, OrderStatus, OrderType, TriggerCondition, Venue

QTY_EPS = 1e-9
Sleep = Callable[[float], Awaitable[None]]
log = logging.getLogger(__name__)


class KillResult(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    ts: int
    confirmed: bool  # fresh venue data: nothing left to cancel, nothing unknown (and flat if asked)
    cancelled: int  # orders cancelled by this run
    attempts: int
    open_orders: int  # orders left to cancel at the last check (0 when confirmed; -1 unknown)
    flatten: bool
    flattened: bool  # position flat at the last check
    position: float | None  # signed size at the last check (None = unknown)
    already: bool = False  # the switch was engaged before this run
    errors: tuple[str, ...] = ()
    cancel_all: bool = False
    cancelled_orders: tuple[dict[str, object], ...] = ()  # what this run cancelled (with signatures)
    kept: tuple[dict[str, object], ...] = ()  # what stays on the venue (the stop)
    unknown_orders: int = 0  # orders still unknown at the last check
    unprotected: bool = False  # a position is left without any stop on the venue


def is_protective_stop(o: Order, position: float) -> bool:
    """A reduce-only trigger order on the losing side of ``position`` (closing it)."""
    r = o.request
    if abs(position) <= QTY_EPS or not r.reduce_only:
        return False
    if r.type not in (OrderType.TRIGGER_MARKET, OrderType.TRIGGER_LIMIT):
        return False
    if position > 0:
        return r.side == "sell" and r.trigger_condition == TriggerCondition.BELOW
    return r.side == "buy" and r.trigger_condition == TriggerCondition.ABOVE


def closing(o: Order) -> bool:
    return o.request.type == OrderType.MARKET and o.request.reduce_only


def describe(o: Order) -> dict[str, object]:
    r = o.request
    return {"order_id": o.order_id, "tag": r.client_tag, "side": r.side, "type": str(r.type), "size": r.size,
            "price": r.price, "trigger_price": r.trigger_price, "reduce_only": r.reduce_only,
            "status": str(o.status), "signatures": list(o.signatures)}


class KillSwitch:
    """``place`` sends the flatten orders (the engine passes its journaled, recorded path)."""

    def __init__(
        self,
        venue: Venue,
        clock: Clock,
        cfg: EngineConfig,
        sleep: Sleep = asyncio.sleep,
        place: Callable[[OrderRequest], Awaitable[Order]] | None = None,
    ) -> None:
        self.venue = venue
        self.clock = clock
        self.cfg = cfg
        self.sleep = sleep
        self.place = place if place is not None else venue.place
        self.engaged = False
        self.engaged_ts = 0
        self._flat_seq = 0  # flatten orders sent by this switch (client tags are never reused)
        self.reason = ""
        self.result: KillResult | None = None
        self.last_flatten = False  # what the last kill asked (its retries ask the same)
        self.last_cancel_all = False
        self._lock = asyncio.Lock()

    def reset(self) -> None:
        """Re-arm after an operator resumes trading."""
        self.engaged = False
        self.reason = ""
        self.result = None

    def restore(self, reason: str) -> None:
        """Engaged before a restart: stays engaged (the next :meth:`engage` re-checks the venue)."""
        self.engaged, self.reason, self.engaged_ts = True, reason, self.clock.now_ms()

    async def engage(self, reason: str, flatten: bool, cancel_all: bool = False) -> KillResult:
        self.last_flatten, self.last_cancel_all = flatten, cancel_all
        async with self._lock:
            already = self.engaged
            if not self.engaged:
                self.engaged, self.reason, self.engaged_ts = True, reason, self.clock.now_ms()
            res = await self._run(self.reason, flatten, cancel_all)
            self.result = msgspec.structs.replace(res, already=already)
            return self.result

    async def _run(self, reason: str, flatten: bool, cancel_all: bool) -> KillResult:
        market = self.cfg.market
        attempts = 0
        errors: list[str] = []
        cancelled: dict[str, Order] = {}
        delay = self.cfg.kill_backoff_s
        pos: float | None = None
        left, unknown = -1, 0
        kept: list[Order] = []
        done = False
        while attempts < self.cfg.kill_max_tries and not done:
            attempts += 1
            try:
                orders = await self.venue.open_orders(market)
                pos = (await self.venue.position(market)).size
            except Exception as e:  # any venue failure: recorded, retried
                errors.append(f"read: {e}")
                await self._pause(delay)
                delay = min(delay * 2, self.cfg.kill_backoff_max_s)
                continue
            if flatten and abs(pos) > QTY_EPS:
                await self._flatten_once(pos, orders, errors)
            todo, kept, unknown = self._split(orders, pos, cancel_all)
            for o in todo:
                try:
                    await self.venue.cancel(o.order_id)
                    cancelled.setdefault(o.order_id, o)
                except Exception as e:
                    errors.append(f"cancel {o.order_id}: {e}")
            try:
                orders = await self.venue.open_orders(market)
                pos = (await self.venue.position(market)).size
                todo, kept, unknown = self._split(orders, pos, cancel_all)
                left = len(todo)
            except Exception as e:
                errors.append(f"read: {e}")
                left = -1
            flat_ok = not flatten or (pos is not None and abs(pos) <= QTY_EPS)
            done = left == 0 and unknown == 0 and flat_ok
            if not done:
                await self._pause(delay)
                delay = min(delay * 2, self.cfg.kill_backoff_max_s)
        final = {o.order_id: o for o in cancelled.values()}
        for o in kept:
            final.pop(o.order_id, None)
        flat = pos is not None and abs(pos) <= QTY_EPS
        return KillResult(
            reason=reason,
            ts=self.clock.now_ms(),
            confirmed=done,
            cancelled=len(final),
            attempts=attempts,
            open_orders=left,
            flatten=flatten,
            flattened=flat,
            position=pos,
            errors=tuple(errors[-10:]),
            cancel_all=cancel_all,
            cancelled_orders=tuple(describe(o) for o in final.values()),
            kept=tuple(describe(o) for o in kept),
            unknown_orders=unknown,
            unprotected=pos is not None and not flat and not kept,
        )

    async def _pause(self, delay: float) -> None:
        try:
            await self.sleep(delay)
        except Exception:  # a broken sleep must not stop the kill
            await asyncio.sleep(0)

    @staticmethod
    def _split(orders: list[Order], pos: float, cancel_all: bool) -> tuple[list[Order], list[Order], int]:
        """(to cancel, kept, unknown): unknown orders are waited for, the stop kept on a position;
        a reduce-only market order (a flatten on its way) is neither cancelled nor waited for."""
        orders = [o for o in orders if not closing(o)]
        unknown = [o for o in orders if o.status == OrderStatus.UNKNOWN]
        known = [o for o in orders if o.status != OrderStatus.UNKNOWN]
        kept = [] if cancel_all else [o for o in known if is_protective_stop(o, pos)]
        keep_ids = {o.order_id for o in kept}
        return [o for o in known if o.order_id not in keep_ids], kept, len(unknown)

    async def _flatten_once(self, pos: float, orders: list[Order], errors: list[str]) -> None:
        if any(closing(o) for o in orders):
            return  # a close is on its way (or unknown): never a second one meanwhile
        req = OrderRequest(
            market=self.cfg.market,
            side="sell" if pos > 0 else "buy",
            type=OrderType.MARKET,
            size=abs(pos),
            reduce_only=True,
            client_tag=f"kill-{self.engaged_ts}:flat{self._flat_seq + 1}",
        )
        self._flat_seq += 1
        try:
            await self.place(req)
        except Exception as e:
            errors.append(f"flatten: {e}")
