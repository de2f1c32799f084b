"""The Drift venue's book of its own orders, kept from the User account: account reads and their
reconciliation into ``core.venue`` events, status and pause checks, equity, restart bindings, and
the reads of the :class:`core.venue.Venue` protocol. :class:`execution.drift.venue.DriftVenue` adds
the sends on top (see its docstring and docs/DRIFT_VENUE.md)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from core.clock import Clock
from core.venue import (
    Fill,
    FillEvent,
    Order,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    Position,
    VenueError,
    VenueEvent,
    VenueState,
    VenueStatus,
)
from execution.drift.chain import ChainError, DriftChain
from execution.drift.status import DriftStatus
from execution.drift.tracking import TERMINAL, TagBinding, Tracked, request_of, synthetic, tracked_from_chain
from execution.drift.user_state import (
    BASE,
    QUOTE,
    FillDelta,
    OrderChange,
    PerpPos,
    UserSnapshot,
    diff,
    fill_price,
)
from execution.signers.base import Signer
from execution.solana_send.landing import Landing
from execution.solana_send.rpc import RpcError
from execution.solana_send.sender import TxSender

log = logging.getLogger(__name__)
#: refreshes after a placing transaction landed without the order showing (filled or skipped at once)
UNSEEN_LIMIT = 3


class DriftBook:
    def __init__(
        self,
        chain: DriftChain,
        sender: TxSender,
        signer: Signer,
        clock: Clock,
        *,
        name: str = "drift",
        poll_s: float = 1.0,
        max_age_s: float = 15.0,
        on_bind: Callable[[TagBinding], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.chain = chain
        self.sender = sender
        self.builder = sender.builder
        self.signer = signer
        self.clock = clock
        self.poll_s = poll_s
        self.max_age_s = max_age_s
        self.on_bind = on_bind
        self.monotonic = monotonic
        self.market = chain.market_name
        self._orders: dict[str, Tracked] = {}  # by venue order id
        self._by_tag: dict[str, Tracked] = {}
        self._restored: dict[int, TagBinding] = {}
        self._owners: dict[int, tuple[str, list[Tracked]]] = {}  # id(submission) -> (kind, orders)
        self._fills: list[Fill] = []
        self._events: list[VenueEvent] = []
        self._status = VenueStatus(venue=name, state=VenueState.DOWN, reason="not started", ts=clock.now_ms())
        self._drift_status: DriftStatus | None = None
        self._next_uid = 1
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._fees = 0.0
        self._unexplained = 0  # position change (base units) not yet credited to an order of ours
        self.status_listeners: list[Callable[[VenueStatus, DriftStatus | None], None]] = []
        self.account_listeners: list[Callable[[UserSnapshot], None]] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self, poll: bool = True) -> None:
        """First account read (fails loudly when the accounts are missing), then polling."""
        await self.refresh()
        if poll and self._poller is None:
            self._poller = asyncio.create_task(self._poll_loop(), name="drift-venue-poll")

    async def close(self) -> None:
        tasks = [t for t in [self._poller, *self._tasks] if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._poller = None
        self._tasks.clear()
        await self.sender.close()

    async def _poll_loop(self) -> None:
        delay = self.poll_s
        while True:
            await asyncio.sleep(delay)
            try:
                await self.refresh()
                delay = self.poll_s
            except (RpcError, ChainError) as e:
                log.warning("drift account poll failed: %s", e)
                self._check_age()
                delay = min(delay * 2, 30.0)

    async def wait_idle(self) -> None:
        """Until every send is resolved and its follow-up done (tests, shutdown, the CLI)."""
        while self._tasks or self.sender.pending():
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            await self.sender.wait_idle()

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ status
    def _set_status(self, st: VenueStatus) -> None:
        if st.state != self._status.state or st.reason != self._status.reason:
            self._status = st
            self._events.append(st)
            for fn in self.status_listeners:
                try:
                    fn(st, self._drift_status)
                except Exception:
                    log.exception("status listener failed")

    def _check_age(self) -> None:
        age = self.monotonic() - self.chain.view.fetched_at
        if self.chain.view.fetched_at and age > self.max_age_s:
            self._set_status(
                VenueStatus(
                    venue=self.name,
                    state=VenueState.DOWN,
                    reason=f"Drift account data is {age:.0f} s old",
                    ts=self.clock.now_ms(),
                )
            )

    def drift_status(self) -> DriftStatus | None:
        """The decoded pause state (for ``autotrader venue status`` and the UI top bar)."""
        return self._drift_status

    async def status(self) -> VenueStatus:
        self._check_age()
        return self._status

    def _check_tradeable(self, reduce_only: bool) -> None:
        self._check_age()
        st = self._status
        if st.state == VenueState.DOWN:
            raise VenueError(f"Drift venue is down: {st.reason}", retryable=True)
        if st.state == VenueState.PAUSED:
            raise VenueError(f"Drift is paused, order refused: {st.reason}")
        if st.state == VenueState.REDUCE_ONLY and not reduce_only:
            raise VenueError(f"Drift allows reduce-only orders only, order refused: {st.reason}")

    def _check_cancels(self) -> None:
        st = self._drift_status
        if st is not None and not st.cancels_allowed:
            raise VenueError(f"Drift is fully paused, cancel refused: {self._status.reason}", retryable=True)

    def equity(self) -> float | None:
        """Total collateral in USD (initial weights, see :mod:`execution.drift.chain`); None when
        unknown (no fresh account data, an oracle unreadable)."""
        self._check_age()
        if self._status.state == VenueState.DOWN:
            return None
        return self.chain.view.equity

    def delegate(self) -> str | None:
        u = self.chain.view.user
        return None if u is None else u.delegate

    # ------------------------------------------------------------------ account refresh
    async def refresh(self) -> None:
        """Read the accounts once; emit status, order and fill events."""
        async with self._lock:
            old, stale = self.chain.view.user, self.chain.view.stale_reads
            view = await self.chain.refresh(self.monotonic())
            if view.stale_reads != stale:
                return  # answered from an older slot than the view's: nothing learned
            self._drift_status = self.chain.status()
            self._set_status(self._drift_status.venue_status(self.name, self.clock.now_ms()))
            assert view.user is not None
            self._adopt_restored(view.user)
            if old is not None:
                self._reconcile(old, view.user)
            self._mark_seen(view.user)
            for fn in self.account_listeners:
                try:
                    fn(view.user)
                except Exception:
                    log.exception("account listener failed")

    def _ours(self) -> dict[int, Tracked]:
        """Our live orders by user order id (orders without one are followed by on-chain id)."""
        return {t.uid: t for t in self._orders.values() if t.status not in TERMINAL and t.uid}

    def _reconcile(self, old: UserSnapshot, new: UserSnapshot) -> None:
        """Fills and order changes between two account reads. A position change no order of ours
        accounts for is kept (``_unexplained``) and credited only to an order whose transaction is
        *proven* landed but that never showed open (it landed and filled between two reads) —
        never to one merely in flight: that may be another order's fill, or nothing of ours."""
        ours = self._ours()
        idx = self.chain.market_index
        d = diff(old, new, idx, ours)
        self._unexplained += d.unexplained
        self._apply_diff(d.fills, d.changes, ours)
        landed = [
            t
            for t in ours.values()
            if not t.seen and t.in_flight and t.place is not None and t.place.state == Landing.LANDED
        ]
        if landed and self._unexplained:
            zero = UserSnapshot(slot=new.slot, authority="", delegate="", sub_account_id=0)
            moved = dataclasses.replace(zero, positions={idx: PerpPos(idx, base=self._unexplained)})
            credit = diff(zero, moved, idx, {}, extra_vanished=[synthetic(t, idx) for t in landed])
            self._unexplained = credit.unexplained
            self._apply_diff(credit.fills, credit.changes, ours)
        if not any(t.in_flight and not t.seen for t in self._ours().values()):
            self._unexplained = 0  # nothing of ours can explain it any more: not ours (another client)

    def _apply_diff(
        self, fills: list[FillDelta], changes: list[OrderChange], ours: dict[int, Tracked]
    ) -> None:
        now = self.clock.now_ms()
        taker, rebate = self.chain.fee_rates()
        for f in fills:
            t = ours.get(f.order.user_order_id)
            if t is None:
                continue
            size, px = f.size / BASE, fill_price(f) or (self.chain.oracle_price() or 0.0)
            fee = -rebate * size * px if f.maker else taker * size * px
            t.filled += size
            t.cost += size * px
            t.seen = True
            t.ts = now
            self._fees += fee
            fill = Fill(
                order_id=t.order_id,
                client_tag=t.tag,
                market=self.market,
                side=t.request.side,
                price=px,
                size=size,
                fee=fee,
                maker=f.maker,
                ts=now,
            )
            self._fills.append(fill)
            self._events.append(FillEvent(fill=fill))
        for c in changes:
            t = ours.get(c.order.user_order_id)
            if t is None:
                continue
            if c.status == OrderStatus.FILLED:
                t.filled = max(t.filled, t.request.size)
            t.status, t.ts, t.seen = c.status, now, True
            if c.status not in TERMINAL:
                t.chain_id = c.order.order_id
            else:
                t.in_flight = t.want_cancel = False
            self._events.append(OrderUpdate(order=t.snapshot(), reason=c.reason))

    def _mark_seen(self, snap: UserSnapshot) -> None:
        idx = self.chain.market_index
        for t in self._orders.values():  # orders without a user order id (placed elsewhere)
            if (
                not t.uid
                and t.status not in TERMINAL
                and t.chain_id is not None
                and t.chain_id not in snap.orders
            ):
                t.status, t.in_flight, t.ts = OrderStatus.CANCELLED, False, self.clock.now_ms()
                self._events.append(OrderUpdate(order=t.snapshot(), reason="no longer on the account"))
        for t in self._ours().values():
            o = snap.by_user_order_id(t.uid)
            if o is not None and o.in_perp(idx):
                if not t.seen:
                    t.seen, t.chain_id = True, o.order_id
                    if o.filled == 0:
                        self._events.append(OrderUpdate(order=t.snapshot(), reason="accepted"))
                t.chain_id = o.order_id
            elif (
                not t.seen
                and t.place is not None
                and t.place.state == Landing.LANDED
                and self.chain.view.slot >= t.place.slot  # a read from before it landed proves nothing
            ):
                t.unseen_after_landing += 1
                if t.unseen_after_landing >= UNSEEN_LIMIT:  # landed, then gone before any read
                    t.status, t.in_flight, t.ts = OrderStatus.CANCELLED, False, self.clock.now_ms()
                    why = f"landed ({t.place.signature}) but never open on the account: cancelled or skipped"
                    self._events.append(OrderUpdate(order=t.snapshot(), reason=why))

    # ------------------------------------------------------------------ restart
    def restore(self, bindings: Iterable[TagBinding]) -> None:
        """Bindings from the journal (after a restart): open orders carrying these user order ids
        are reported with their client tag and venue order id again."""
        for b in bindings:
            if b.user_order_id:
                self._restored[b.user_order_id] = b

    def _resume_order(self, tag: str, requests: dict[str, OrderRequest]) -> Tracked | None:
        req = requests.get(tag)
        if req is None or not req.user_order_id:
            return None
        t = self._by_tag.get(tag)
        if t is None:
            t = Tracked(order_id=tag, tag=tag, uid=req.user_order_id, request=req, ts=self.clock.now_ms())
            self._orders[t.order_id] = t
            self._by_tag[tag] = t
            self._restored.pop(t.uid, None)
        return t

    def bindings(self) -> list[TagBinding]:
        return [TagBinding(t.tag, t.uid, t.order_id) for t in self._ours().values() if t.tag]

    def user_order_id_of(self, client_tag: str) -> int:
        t = self._by_tag.get(client_tag)
        return t.uid if t is not None else 0

    def _adopt_restored(self, snap: UserSnapshot) -> None:
        ours = self._ours()
        for o in snap.orders.values():
            if not o.in_perp(self.chain.market_index) or o.user_order_id in ours or not o.user_order_id:
                continue
            b = self._restored.pop(o.user_order_id, None)
            if b is None:
                continue
            t = tracked_from_chain(o, self.market, b.order_id, b.client_tag, self.clock.now_ms())
            self._orders[t.order_id] = t
            if t.tag:
                self._by_tag[t.tag] = t
            log.info("re-bound %s to user order id %d (order %s)", t.tag, t.uid, t.order_id)

    # ------------------------------------------------------------------ orders of ours
    def _alloc_uid(self, wanted: int = 0) -> int:
        """``wanted`` (the engine's choice, already journaled) when it is free, else the next free."""
        used = {t.uid for t in self._orders.values() if t.status not in TERMINAL or t.in_flight}
        snap = self.chain.view.user
        if snap is not None:
            used |= {o.user_order_id for o in snap.orders.values()}
        used |= set(self._restored)
        if wanted and wanted not in used:
            return wanted
        for _ in range(255):
            uid = self._next_uid
            self._next_uid = self._next_uid % 255 + 1
            if uid not in used:
                return uid
        raise VenueError("no free user order id (255 orders in use)")

    def _find(self, order_id: str) -> Tracked:
        t = self._orders.get(order_id)
        if t is None and order_id.startswith("chain:") and self.chain.view.user is not None:
            o = self.chain.view.user.orders.get(int(order_id.split(":", 1)[1]))
            if o is not None and o.in_perp(self.chain.market_index):
                t = tracked_from_chain(o, self.market, order_id, "", self.clock.now_ms())
                self._orders[order_id] = t
        if t is None:
            raise VenueError(f"unknown order {order_id}")
        if t.status in TERMINAL:
            raise VenueError(f"order {order_id} is not open ({t.status})")
        return t

    def _on_chain_now(self, t: Tracked) -> int:
        if t.chain_id is None or not t.seen:
            what = "unknown (it may or may not land)" if t.unknown else "in flight"
            raise VenueError(
                f"order {t.order_id} is not on chain yet (its transaction is {what})", retryable=True
            )
        return t.chain_id

    # ------------------------------------------------------------------ reads
    async def open_orders(self, market: str | None = None) -> list[Order]:
        if market is not None and market != self.market:
            return []
        self._check_age()
        if self._status.state == VenueState.DOWN:
            raise VenueError(f"Drift venue is down: {self._status.reason}", retryable=True)
        live = [t for t in self._orders.values() if t.status not in TERMINAL]
        out: list[Order] = [t.snapshot() for t in live]
        snap = self.chain.view.user
        if snap is not None:
            ours = {t.uid for t in live if t.uid}
            tracked_ids = {t.chain_id for t in live if t.chain_id is not None}
            for o in snap.orders.values():
                if (
                    o.in_perp(self.chain.market_index)
                    and o.order_id not in tracked_ids
                    and (not o.user_order_id or o.user_order_id not in ours)
                ):
                    b = self._restored.get(o.user_order_id)
                    out.append(
                        Order(
                            order_id=b.order_id if b else f"chain:{o.order_id}",
                            request=request_of(o, self.market, b.client_tag if b else ""),
                            status=o.status,
                            filled=o.filled / BASE,
                            ts=self.clock.now_ms(),
                        )
                    )
        return out

    def cancel_signature(self, order_id: str) -> str | None:
        """The signature of the (last) cancel sent for an order: the landed one when known."""
        t = self._orders.get(order_id)
        if t is None or t.cancel is None:
            return None
        return t.cancel.signature or t.cancel.current.signature

    def unknown_orders(self) -> list[Order]:
        """Orders whose transaction may or may not have landed (status, the UI, ``autotrader status``)."""
        return [t.snapshot() for t in self._orders.values() if t.unknown]

    async def position(self, market: str) -> Position:
        if market != self.market:
            return Position(market=market)
        self._check_age()
        if self._status.state == VenueState.DOWN:
            raise VenueError(f"Drift venue is down: {self._status.reason}", retryable=True)
        snap = self.chain.view.user
        if snap is None:
            raise VenueError("no User account data yet", retryable=True)
        p = snap.position(self.chain.market_index)
        size = p.base / BASE
        avg = (-p.quote_entry / QUOTE) / size if size else 0.0
        net = (p.quote - p.quote_entry + p.settled_pnl) / QUOTE  # realized - fees + funding (all-in)
        return Position(
            market=market, size=size, avg_price=avg, realized_pnl=net + self._fees, fees=self._fees
        )

    async def fills(self, since_ts: int = 0) -> list[Fill]:
        return [f for f in self._fills if f.ts >= since_ts]

    def events(self) -> list[VenueEvent]:
        out, self._events = self._events, []
        return out
