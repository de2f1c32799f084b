"""Every venue call the engine makes goes through here: timeouts, retries on retryable errors,
recovery of ambiguous outcomes (a timeout after the venue acted), u8 user order ids, and the
write-ahead order journal (an order is journaled ``submitting`` before the venue sees it, so a
crash at any point never leads to the same order being sent twice).

Submit-to-confirm latency (``on_latency``): from the submit to the venue's confirmation. A venue
whose calls return once the order is confirmed (paper: the acknowledgement) is measured at the
return; a venue whose calls return once a transaction is *sent* says so with
``confirms_async = True`` (Drift) and is measured at the first event that shows the order on
chain (:meth:`OrderGateway.confirmed`, from the engine's venue events); a rejection is not a
confirmation and is not measured.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import msgspec

from core.engine_types import EngineConfig
from core.journal_port import JournalError, MemoryJournal, OrderJournal
from core.venue import MAX_USER_ORDER_ID, Order, OrderRequest, OrderStatus, Venue, VenueError

log = logging.getLogger(__name__)
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

#: journal order state of a venue order
JOURNAL_STATE = {
    OrderStatus.UNKNOWN: "unknown",
    OrderStatus.OPEN: "open",
    OrderStatus.TRIGGERED: "triggered",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REJECTED: "rejected",
}
TERMINAL = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


def journal_state(o: Order) -> str:
    if o.status == OrderStatus.OPEN and o.filled > 0:
        return "partially_filled"
    return JOURNAL_STATE[o.status]


def intent_of(tag: str) -> str:
    """``<intent id>:<role>`` → intent id ('' when the tag is not one of ours)."""
    return tag.rsplit(":", 1)[0] if ":" in tag else ""


class OrderGateway:
    def __init__(
        self,
        venue: Venue,
        cfg: EngineConfig,
        journal: OrderJournal | None = None,
        *,
        now_ms: Callable[[], int],
        sleep: Sleep = asyncio.sleep,
        on_latency: Callable[[float], None] | None = None,
    ) -> None:
        self.venue = venue
        self.cfg = cfg
        self.journal: OrderJournal = journal if journal is not None else MemoryJournal()
        self.now_ms = now_ms
        self.sleep = sleep
        self.on_latency = on_latency
        self.inflight = 0
        self._uids: dict[int, str] = {}  # live user order id -> client tag
        self._next_uid = 1
        self.confirms_async = bool(getattr(venue, "confirms_async", False))
        self._confirming: dict[str, float] = {}  # client tag -> submit time, until confirmed

    # ------------------------------------------------------------------ retries
    async def call(
        self, fn: Callable[[], Awaitable[T]], recover: Callable[[], Awaitable[T | None]] | None = None
    ) -> T:
        """Call with a timeout and retries on retryable errors. ``recover`` runs before a retry and
        may return the outcome of an ambiguous earlier attempt (so nothing is done twice)."""
        delay = self.cfg.retry_backoff_s
        tries = max(1, self.cfg.call_retries)
        self.inflight += 1
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
            self.inflight -= 1

    # ------------------------------------------------------------------ user order ids (u8)
    def _assign_uid(self, req: OrderRequest) -> OrderRequest:
        if req.user_order_id:
            self._uids[req.user_order_id] = req.client_tag
            return req
        for k in range(MAX_USER_ORDER_ID):
            uid = (self._next_uid - 1 + k) % MAX_USER_ORDER_ID + 1
            if uid not in self._uids:
                self._next_uid = uid % MAX_USER_ORDER_ID + 1
                self._uids[uid] = req.client_tag
                return msgspec.structs.replace(req, user_order_id=uid)
        raise VenueError(f"no free user order id: {MAX_USER_ORDER_ID} orders are live")

    def track(self, o: Order) -> None:
        """Follow a venue order (an update, or one found at start): journal state and user ids."""
        uid, tag = o.request.user_order_id, o.request.client_tag
        if o.status in TERMINAL:
            if uid and self._uids.get(uid) == tag:
                del self._uids[uid]
        elif uid:
            self._uids[uid] = tag
        if tag and self.journal.find_order(client_tag=tag) is not None:
            try:
                state = journal_state(o)
                self.journal.update_order(tag, order_id=o.order_id, state=state, ts_ms=self.now_ms())
            except JournalError as e:
                log.error("journal update failed for %s: %s", tag, e)

    # ------------------------------------------------------------------ orders
    async def find_by_tag(self, req: OrderRequest) -> Order | None:
        """The venue's order for ``req.client_tag`` (open, or reconstructed from its fills)."""
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
        status = OrderStatus.FILLED if qty >= req.size - 1e-9 else OrderStatus.OPEN
        return Order(order_id=fills[0].order_id, request=req, status=status, filled=qty, avg_price=avg,
                     ts=fills[-1].ts)

    async def place(self, req: OrderRequest, intent_id: str, role: str) -> Order:
        """Journal (``submitting``), then place with retries; the journal gets the outcome."""
        j = self.journal
        if j.get_intent(intent_id) is None:
            # an engine-level order (kill-switch flatten): bookkeeping only, never recovered as an intent
            j.begin_intent(intent_id, {"engine": role}, state="done", ts_ms=self.now_ms())
        req = self._assign_uid(req)
        first = j.record_order(intent_id, role, req.client_tag, None, "submitting",
                               user_order_id=req.user_order_id, request=msgspec.to_builtins(req),
                               ts_ms=self.now_ms())
        if not first:  # sent before (a restart, or a repeat): never send it again
            found = await self.find_by_tag(req)
            if found is not None:
                return found
            self._release(req)
            raise VenueError(f"order {req.client_tag} was submitted before; not sending it twice")
        t0 = time.perf_counter()
        try:
            order = await self.call(lambda: self.venue.place(req), lambda: self.find_by_tag(req))
        except Exception:
            self._release(req)
            j.update_order(req.client_tag, state="failed", ts_ms=self.now_ms())
            raise
        self._submitted(req.client_tag, t0)
        self.track(order)
        return order

    def _submitted(self, tag: str, t0: float) -> None:
        if self.on_latency is None:
            return
        if not self.confirms_async:
            self.on_latency(time.perf_counter() - t0)
        elif tag:
            if len(self._confirming) >= 1024:  # never confirmed (lost, restarted): bounded
                self._confirming.pop(next(iter(self._confirming)))
            self._confirming[tag] = t0

    def confirmed(self, tag: str, rejected: bool = False) -> None:
        """A venue event showed the order ``tag`` (on chain) or its rejection."""
        t0 = self._confirming.pop(tag, None)
        if t0 is not None and not rejected and self.on_latency is not None:
            self.on_latency(time.perf_counter() - t0)

    async def cancel_and_place(
        self,
        cancel_ids: tuple[str, ...],
        reqs: tuple[OrderRequest, ...],
        intent_id: str,
        roles: Sequence[str],
    ) -> list[Order]:
        reqs = tuple(self._assign_uid(r) for r in reqs)
        t0 = time.perf_counter()
        for r, role in zip(reqs, roles, strict=True):
            self.journal.record_order(intent_id, role, r.client_tag, None, "submitting",
                                      user_order_id=r.user_order_id, request=msgspec.to_builtins(r),
                                      ts_ms=self.now_ms())
        try:
            orders = await self.call(lambda: self.venue.cancel_and_place(cancel_ids, reqs))
        except Exception:
            for r in reqs:
                self._release(r)
                self.journal.update_order(r.client_tag, state="failed", ts_ms=self.now_ms())
            raise
        for r in reqs:
            self._submitted(r.client_tag, t0)
        for o in orders:
            self.track(o)
        return orders

    def _release(self, req: OrderRequest) -> None:
        uid = req.user_order_id
        if uid and self._uids.get(uid) == req.client_tag:
            del self._uids[uid]

    async def cancel(self, order_id: str) -> None:
        async def once() -> bool:
            await self.venue.cancel(order_id)
            return True

        await self.call(once, lambda: self.gone(order_id))

    async def gone(self, order_id: str) -> bool | None:
        """True when the order is no longer open (None when that cannot be told)."""
        try:
            return all(o.order_id != order_id for o in await self.venue.open_orders(self.cfg.market)) or None
        except VenueError:
            return None
