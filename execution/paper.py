"""The paper venue: the default venue, matching Drift-style orders on the live or replayed market.

Market input (sync, called by the runtime from bus handlers): :meth:`PaperVenue.on_book`,
:meth:`~PaperVenue.on_trade`, :meth:`~PaperVenue.on_mark`, :meth:`~PaperVenue.on_funding`.
The async :class:`core.venue.Venue` calls act immediately; outcomes are drained from
:meth:`~PaperVenue.events`.

Fill model (the market is the real one; paper orders never move it):

* **Resting limits** (maker fee). A trade printing *through* a resting buy's price (trade price <
  limit, any aggressor) fills it at its own price up to the trade's quantity; the rest stays open.
  A trade *at* its price (sell aggressor for a buy) first consumes the *queue ahead* of the order;
  only the volume beyond it fills. Several paper orders share one trade's quantity in price-time
  priority. A book whose opposite touch is strictly through the order (best ask < buy price) fills
  it at its price up to the touch quantity.
* **Queue ahead** is set when the order starts working: the touch quantity when it joins the touch,
  0 when it improves on it, ``queue_behind_factor × touch qty`` when it rests behind the touch
  (the depth in between is unknown: a conservative estimate); 0 when no book is known yet. Later
  books cap it at the displayed quantity of its level, and set it to 0 once the book no longer
  shows a level as good as the order (the level ahead of it was traded or cancelled away).
* **Takers** (market orders, fired ``trigger_market`` orders, limits that cross; taker fee) walk a
  book known only at its touch: ``touch qty`` at the touch, the next ``touch qty`` ``slippage_ticks``
  ticks worse, and so on; a limit price (or a market order's optional ``price`` cap) stops the walk
  and the rest rests (limit) or is cancelled (market); so does the end of the modelled book
  (``max_walk_levels`` chunks). Without a book the mark (or last trade)
  is the price with unlimited size. Each call sees the book as last reported (paper fills do not
  deplete it).
* **Post-only**: ``must`` crossing → the call raises :class:`PaperVenueError` ``post_only_would_cross``;
  ``try`` → the order is returned ``cancelled`` with that reason (no error); ``slide`` → repriced to
  one tick behind the opposite touch and rested.
* **Triggers** fire when the mark is strictly through the trigger price (``above``: mark > trigger,
  ``below``: mark < trigger, as Drift), also at placement if already through. A fired
  ``trigger_market`` takes; a fired ``trigger_limit`` works as a post-only-none limit (may take).
  A working trigger order has status ``triggered``.
* **Reduce-only** orders are rejected when flat or on the increasing side, sized down to the
  position at placement, clipped to the position at each fill, and cancelled (``reduce_only``) when
  a fill attempt finds nothing to reduce.
* **Limits**: at most 255 live orders; a non-zero ``user_order_id`` must be unique among live orders.
* **Venue state** (:meth:`PaperVenue.set_status`): ``paused`` refuses place/modify and allows cancels;
  ``reduce_only`` accepts only reduce-only orders; ``down`` refuses every call but ``status``
  (retryable).
* **Modify** keeps the order id; a new price or a larger size re-queues the order (new queue
  estimate, loses time priority), a smaller size keeps its place. Post-only applies to a new
  price: ``must`` refuses the modify (the order is unchanged), ``try`` cancels the order.
  ``cancel_and_place`` is all-or-nothing: any refusal restores the state before the call.
* **Funding** (``funding=True``): a :class:`Funding` with ``next_funding_ts`` announces the rate of the
  current interval; when a later one arrives at or after that time, the announced rate is paid on
  the positions (longs pay ``rate × size × mark`` when positive). A :class:`Funding` without
  ``next_funding_ts`` is a settled payment, applied at once.
* ``latency_ms``: calls yield once to the loop, and a placed or re-queued order ignores market data
  stamped before ``now + latency_ms``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import replace as dc_replace
from typing import Literal

import msgspec

from core.clock import Clock
from core.venue import (
    MAX_USER_ORDER_ID,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PostOnly,
    VenueEvent,
    VenueState,
    VenueStatus,
)
from execution import paper_state
from execution.paper_book import QTY_EPS, crosses, queue_ahead, slide_price
from execution.paper_ledger import Ledger
from execution.paper_matching import PaperMatcher, PaperVenueError

__all__ = ["MAX_LIVE_ORDERS", "FaultKind", "PaperVenue", "PaperVenueError"]

log = logging.getLogger(__name__)
FaultKind = Literal["error", "timeout", "timeout_applied", "post_only_reject"]
MAX_LIVE_ORDERS = MAX_USER_ORDER_ID


class PaperVenue(PaperMatcher):
    """Paper trading venue implementing :class:`core.venue.Venue` (see the module docstring)."""

    def __init__(
        self,
        name: str = "paper",
        *,
        clock: Clock,
        maker_fee_bps: float = -0.25,
        taker_fee_bps: float = 3.5,
        tick_size: float = 0.01,
        start_equity: float = 10_000.0,
        funding: bool = False,
        latency_ms: int = 0,
        slippage_ticks: float = 1.0,
        queue_behind_factor: float = 1.0,
        mark_from_mid: bool = False,
        max_walk_levels: int = 100,
        persist: Callable[[bytes], None] | None = None,
    ) -> None:
        super().__init__(
            clock=clock,
            maker_fee_bps=maker_fee_bps,
            taker_fee_bps=taker_fee_bps,
            tick_size=tick_size,
            start_equity=start_equity,
            funding=funding,
            latency_ms=latency_ms,
            slippage_ticks=slippage_ticks,
            queue_behind_factor=queue_behind_factor,
            mark_from_mid=mark_from_mid,
            max_walk_levels=max_walk_levels,
        )
        self.name = name
        self._state = VenueState.ACTIVE
        self._state_reason = ""
        self._state_ts = clock.now_ms()
        self._faults: deque[str] = deque()
        self._po_rejects = 0
        #: called with the account state after every change the engine can see (a call that
        #: acted, events drained), so a restart finds the account as the engine last knew it
        self.persist = persist
        self.persist_failures = 0

    # ------------------------------------------------------------------ control and accessors

    def set_status(self, state: VenueState, reason: str = "") -> None:
        """Simulate an exchange state (paused, reduce-only, down) or return to active."""
        self._state, self._state_reason, self._state_ts = state, reason, self.clock.now_ms()
        self._events.append(VenueStatus(venue=self.name, state=state, reason=reason, ts=self._state_ts))

    def inject_fault(self, kind: FaultKind, n: int = 1) -> None:
        """Make the next ``n`` mutating calls (place, cancel, cancel_all, modify, cancel_and_place)
        fail: ``error`` raises before acting, ``timeout`` raises a retryable error before acting,
        ``timeout_applied`` acts and then raises a retryable error (outcome unknown to the
        caller); ``post_only_reject`` makes the next ``n`` post-only limits behave as crossing."""
        if n < 0:
            raise ValueError("n must be >= 0")
        if kind == "post_only_reject":
            self._po_rejects += n
        elif kind in ("error", "timeout", "timeout_applied"):
            self._faults.extend([kind] * n)
        else:
            raise ValueError(f"unknown fault kind {kind!r}")

    def equity(self) -> float:
        return self._ledger.equity(self.mark_price())

    def unrealized_pnl(self) -> float:
        return self._ledger.unrealized(self.mark_price())

    def realized_pnl(self) -> float:
        return self._ledger.realized()

    def total_fees(self) -> float:
        return self._ledger.fees()

    def total_funding(self) -> float:
        return self._ledger.funding()

    def get_position(self, market: str) -> Position:
        return self._ledger.position(market)

    def get_order(self, order_id: str) -> Order | None:
        w = self._live.get(order_id) or self._done.get(order_id)
        return w.snapshot() if w is not None else None

    @property
    def pending_events(self) -> bool:
        """Something to report (a fill, a trigger, a cancel) since the last :meth:`events`."""
        return bool(self._events)

    def fill_history(self) -> list[Fill]:
        return list(self._fills)

    def live_order_count(self) -> int:
        return len(self._live)

    def events(self) -> list[VenueEvent]:
        out, self._events = self._events, []
        if out:
            self._save()
        return out

    def save_state(self) -> bytes:
        return paper_state.dump(self)

    def load_state(self, blob: bytes) -> dict[str, object]:
        """Restore a saved account (see :mod:`execution.paper_state`)."""
        return paper_state.load(self, blob)

    def _save(self) -> None:
        """Hand the account to ``persist``. A failure never undoes what happened on the venue nor
        drops its events: it is counted and logged (the runtime's persist callback keeps the state
        in memory and reports the storage failure itself)."""
        if self.persist is None:
            return
        try:
            self.persist(paper_state.dump(self))
        except Exception as exc:
            self.persist_failures += 1
            log.error("paper account not saved: %s", exc)

    # ------------------------------------------------------------------ async Venue calls

    async def place(self, req: OrderRequest) -> Order:
        await self._latency()
        after = self._pre_call()
        order = self._place(req, self.clock.now_ms())
        self._post_call(after)
        return order

    async def cancel(self, order_id: str) -> None:
        await self._latency()
        after = self._pre_call()
        self._cancel(order_id, self.clock.now_ms(), "cancelled")
        self._post_call(after)

    async def cancel_all(self, market: str | None = None) -> int:
        await self._latency()
        after = self._pre_call()
        now = self.clock.now_ms()
        ids = [w.order_id for w in self._live.values() if market is None or w.req.market == market]
        for oid in ids:
            self._cancel(oid, now, "cancel_all")
        self._post_call(after)
        return len(ids)

    async def modify(
        self,
        order_id: str,
        *,
        price: float | None = None,
        size: float | None = None,
        trigger_price: float | None = None,
    ) -> Order:
        await self._latency()
        after = self._pre_call()
        order = self._modify(order_id, price, size, trigger_price, self.clock.now_ms())
        self._post_call(after)
        return order

    async def cancel_and_place(self, cancel_ids: Sequence[str], reqs: Sequence[OrderRequest]) -> list[Order]:
        await self._latency()
        after = self._pre_call()
        now = self.clock.now_ms()
        saved = self._checkpoint()
        try:
            for oid in cancel_ids:
                self._cancel(oid, now, "cancel_and_place")
            out = [self._place(r, now) for r in reqs]
        except Exception:
            self._restore(saved)
            raise
        self._post_call(after)
        return out

    async def open_orders(self, market: str | None = None) -> list[Order]:
        self._check_up()
        ws = sorted(self._live.values(), key=lambda w: w.seq)
        return [w.snapshot() for w in ws if market is None or w.req.market == market]

    async def position(self, market: str) -> Position:
        self._check_up()
        return self._ledger.position(market)

    async def fills(self, since_ts: int = 0) -> list[Fill]:
        self._check_up()
        return [f for f in self._fills if f.ts >= since_ts]

    async def status(self) -> VenueStatus:
        return VenueStatus(venue=self.name, state=self._state, reason=self._state_reason, ts=self._state_ts)

    # ------------------------------------------------------------------ internals: calls

    async def _latency(self) -> None:
        if self.latency_ms > 0:
            await asyncio.sleep(0)

    def _check_up(self) -> None:
        if self._state == VenueState.DOWN:
            raise PaperVenueError("venue_down", self._state_reason, retryable=True)

    def _pre_call(self) -> bool:
        """Venue-down and injected faults; True when the call must raise a timeout after acting."""
        self._check_up()
        if not self._faults:
            return False
        kind = self._faults.popleft()
        if kind == "error":
            raise PaperVenueError("injected_error")
        if kind == "timeout":
            raise PaperVenueError("timeout", "injected", retryable=True)
        return True

    def _post_call(self, timeout_after: bool) -> None:
        self._save()
        if timeout_after:
            raise PaperVenueError("timeout", "injected after the call took effect", retryable=True)

    def _check_accepting(self, reduce_only: bool) -> None:
        if self._state == VenueState.PAUSED:
            raise PaperVenueError("venue_paused", self._state_reason)
        if self._state == VenueState.REDUCE_ONLY and not reduce_only:
            raise PaperVenueError("venue_reduce_only", self._state_reason)

    def _place(self, req: OrderRequest, now: int) -> Order:
        self._check_accepting(req.reduce_only)
        if req.type == OrderType.MARKET and req.post_only != PostOnly.NONE:
            raise PaperVenueError("invalid", "a market order cannot be post-only")
        if len(self._live) >= MAX_LIVE_ORDERS:
            raise PaperVenueError("too_many_orders", f"{MAX_LIVE_ORDERS} live orders")
        uid = req.user_order_id
        if uid and any(w.req.user_order_id == uid for w in self._live.values()):
            raise PaperVenueError("duplicate_user_order_id", str(uid))
        if req.reduce_only:
            allowed = self._reducible(req.market, req.side)
            if allowed <= QTY_EPS:
                raise PaperVenueError("reduce_only", "no position to reduce on this side")
            if req.size > allowed:
                req = msgspec.structs.replace(req, size=allowed)
        if req.type == OrderType.MARKET and self._touch(req.side) is None:
            raise PaperVenueError("no_market_data", "no book, mark or trade yet")
        if req.type == OrderType.LIMIT and req.post_only != PostOnly.NONE:
            price = req.price or 0.0
            would_cross = crosses(req.side, price, self._top)
            if self._po_rejects > 0:
                self._po_rejects -= 1
                would_cross = True
            if would_cross:
                if req.post_only == PostOnly.TRY:
                    w = self._new(req, now, emit=False)
                    self._close(w, OrderStatus.CANCELLED, "post_only_would_cross", now)
                    return w.snapshot()
                if req.post_only == PostOnly.MUST or self._top is None:
                    raise PaperVenueError("post_only_would_cross", f"{req.side} {price}")
                slid = slide_price(req.side, self._top, self.tick_size)
                if slid <= 0:
                    raise PaperVenueError("post_only_would_cross", "no price to slide to")
                req = msgspec.structs.replace(req, price=slid)
        w = self._new(req, now, emit=True)
        if req.type == OrderType.MARKET:
            self._take_ioc(w, now, req.price)
        elif req.type == OrderType.LIMIT:
            self._work_limit(w, now)
        elif self._mark is not None and self._fires(w, self._mark):
            self._fire(w, now)
        return w.snapshot()

    def _cancel(self, order_id: str, now: int, reason: str) -> None:
        w = self._live.get(order_id)
        if w is None:
            code = "order_not_open" if order_id in self._done else "unknown_order"
            raise PaperVenueError(code, order_id)
        self._close(w, OrderStatus.CANCELLED, reason, now)

    def _modify(
        self, order_id: str, price: float | None, size: float | None, trigger: float | None, now: int
    ) -> Order:
        w = self._live.get(order_id)
        if w is None:
            code = "order_not_open" if order_id in self._done else "unknown_order"
            raise PaperVenueError(code, order_id)
        self._check_accepting(w.req.reduce_only)
        req = w.req
        changes: dict[str, float] = {}
        if price is not None and price != req.price:
            if req.type not in (OrderType.LIMIT, OrderType.TRIGGER_LIMIT):
                raise PaperVenueError("invalid", f"a {req.type} order has no limit price")
            changes["price"] = price
        if trigger is not None and trigger != req.trigger_price:
            if not w.armed:
                raise PaperVenueError("invalid", "only an untriggered trigger order has a trigger price")
            changes["trigger_price"] = trigger
        if size is not None and size != req.size:
            if size <= w.filled + QTY_EPS:
                raise PaperVenueError("invalid", f"size {size} not above filled {w.filled}")
            if req.reduce_only and size > req.size:
                allowed = self._reducible(req.market, req.side)
                if allowed <= QTY_EPS:
                    raise PaperVenueError("reduce_only", "no position to reduce on this side")
                size = min(size, w.filled + allowed)
            changes["size"] = size
        if not changes:
            return w.snapshot()
        try:
            new = msgspec.structs.replace(req, **changes)
        except ValueError as e:
            raise PaperVenueError("invalid", str(e)) from None
        repriced = "price" in changes and w.resting
        if repriced and req.type == OrderType.LIMIT and req.post_only != PostOnly.NONE:
            assert new.price is not None
            if crosses(req.side, new.price, self._top):
                if req.post_only == PostOnly.MUST or self._top is None:
                    raise PaperVenueError("post_only_would_cross", f"{req.side} {new.price}")
                if req.post_only == PostOnly.TRY:
                    w.req = new
                    self._close(w, OrderStatus.CANCELLED, "post_only_would_cross", now)
                    return w.snapshot()
                slid = slide_price(req.side, self._top, self.tick_size)
                if slid <= 0:
                    raise PaperVenueError("post_only_would_cross", "no price to slide to")
                new = msgspec.structs.replace(new, price=slid)
        w.req, w.ts = new, now
        if repriced or new.size > req.size:  # re-queued: loses time priority
            self._seq += 1
            w.seq, w.active_from = self._seq, now + self.latency_ms
            if w.resting and not repriced:
                w.queue = queue_ahead(new.side, new.price or 0.0, self._top, self.queue_behind_factor)
        self._emit(w, "modified")
        if repriced:
            self._work_limit(w, now)
        elif w.armed and self._mark is not None and self._fires(w, self._mark):
            self._fire(w, now)
        return w.snapshot()

    def _checkpoint(self) -> tuple[object, ...]:
        live = {k: dc_replace(w) for k, w in self._live.items()}
        return (
            live,
            OrderedDict(self._done),
            self._ledger.copy(),
            len(self._fills),
            len(self._events),
            self._next_id,
            self._seq,
            self._po_rejects,
        )

    def _restore(self, saved: tuple[object, ...]) -> None:
        live, done, ledger, n_fills, n_events, next_id, seq, po = saved
        assert isinstance(live, dict) and isinstance(done, OrderedDict) and isinstance(ledger, Ledger)
        assert isinstance(n_fills, int) and isinstance(n_events, int)
        assert isinstance(next_id, int) and isinstance(seq, int) and isinstance(po, int)
        self._live, self._done, self._ledger = live, done, ledger
        del self._fills[n_fills:]
        del self._events[n_events:]
        self._next_id, self._seq, self._po_rejects = next_id, seq, po
