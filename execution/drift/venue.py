"""DriftVenue: :class:`core.venue.Venue` on Drift v2 through driftpy (see docs/DRIFT_VENUE.md).

* Calls return once the transaction is *sent* (the RPC accepted it); confirmation follows the
  schedule in :mod:`execution.drift.sender` in a background task, and the outcome arrives as
  events: the order shows up in the User account (``OrderUpdate`` open), or a failure
  (``OrderUpdate`` rejected, "not confirmed ...") once nothing in flight can still land.
* Order ids: the venue's ``order_id`` is stable across Drift's modify (which re-creates the
  order with a new on-chain id and the same user order id): it is the client tag when there is
  one, else ``chain:<on-chain id>``. The u8 ``user_order_id`` is allocated here; the
  ``client_tag <-> user_order_id`` bindings are reported through ``on_bind`` (for the order
  journal) and restored with :meth:`DriftVenue.restore` after a restart.
* Never a duplicate: a second ``place`` with a client tag already in flight returns the same
  order; an ambiguous send (timeout, dropped connection) is followed by the confirmation task
  (re-broadcast of the same bytes, re-sign only after blockhash expiry), never re-placed.
* Status: State/PerpMarket pause bits (:mod:`execution.drift.status`); a paused venue refuses
  every order with a :class:`VenueError` saying why; account data older than ``max_age_s``
  makes the venue ``down`` (refusals are retryable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import msgspec
from driftpy.types import MarketType, OrderParams

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
from execution.drift.orders import rounded_request, to_modify_params, to_order_params
from execution.drift.rpc import RpcError
from execution.drift.sender import Outcome, SignedTx, TxSender
from execution.drift.status import DriftStatus
from execution.drift.user_state import BASE, QUOTE, ChainOrder, UserSnapshot, diff, fill_price
from execution.signers.base import Signer

log = logging.getLogger(__name__)
TERMINAL = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


class TagBinding(msgspec.Struct, frozen=True):
    """What the journal keeps to find an order again after a restart."""

    client_tag: str
    user_order_id: int
    order_id: str


@dataclass
class Tracked:
    order_id: str
    tag: str
    uid: int
    request: OrderRequest
    status: OrderStatus = OrderStatus.OPEN
    chain_id: int | None = None
    seen: bool = False  # visible in the User account at least once
    in_flight: bool = True  # its placing transaction may still land
    filled: float = 0.0
    cost: float = 0.0
    ts: int = 0

    def snapshot(self) -> Order:
        avg = self.cost / self.filled if self.filled > 0 else 0.0
        return Order(
            order_id=self.order_id,
            request=self.request,
            status=self.status,
            filled=self.filled,
            avg_price=avg,
            ts=self.ts,
        )


class DriftVenue:
    confirms_async = True  # calls return once sent; the order shows up in events once on chain

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
        self._fills: list[Fill] = []
        self._events: list[VenueEvent] = []
        self._status = VenueStatus(venue=name, state=VenueState.DOWN, reason="not started", ts=clock.now_ms())
        self._drift_status: DriftStatus | None = None
        self._next_uid = 1
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._fees = 0.0
        self.status_listeners: list[Callable[[VenueStatus, DriftStatus | None], None]] = []

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
        """Wait for every confirmation task (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

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
            raise VenueError(f"Drift market is reduce-only, order refused: {st.reason}")

    # ------------------------------------------------------------------ account refresh
    async def refresh(self) -> None:
        """Read the accounts once; emit status, order and fill events."""
        async with self._lock:
            old = self.chain.view.user
            view = await self.chain.refresh(self.monotonic())
            self._drift_status = self.chain.status()
            self._set_status(self._drift_status.venue_status(self.name, self.clock.now_ms()))
            assert view.user is not None
            self._adopt_restored(view.user)
            if old is not None:
                self._reconcile(old, view.user)
            self._mark_seen(view.user)

    def _ours(self) -> dict[int, Tracked]:
        return {t.uid: t for t in self._orders.values() if t.status not in TERMINAL}

    def _reconcile(self, old: UserSnapshot, new: UserSnapshot) -> None:
        ours = self._ours()
        extra = [self._synthetic(t) for t in ours.values() if not t.seen and t.in_flight]
        d = diff(old, new, self.chain.market_index, ours, extra_vanished=extra)
        now = self.clock.now_ms()
        taker, rebate = self.chain.fee_rates()
        for f in d.fills:
            t = ours.get(f.order.user_order_id)
            if t is None:
                continue
            size, px = f.size / BASE, fill_price(f)
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
        for c in d.changes:
            t = ours.get(c.order.user_order_id)
            if t is None:
                continue
            if c.status == OrderStatus.FILLED:
                t.filled = max(t.filled, t.request.size)
            t.status, t.ts, t.seen = c.status, now, True
            if c.status not in TERMINAL:
                t.chain_id = c.order.order_id
            else:
                t.in_flight = False
            self._events.append(OrderUpdate(order=t.snapshot(), reason=c.reason))

    def _synthetic(self, t: Tracked) -> ChainOrder:
        r = t.request
        return ChainOrder(
            order_id=-1,
            user_order_id=t.uid,
            market_index=self.chain.market_index,
            order_type="Limit" if r.price else "Market",
            direction="Long" if r.side == "buy" else "Short",
            base=round(r.size * BASE),
            filled=0,
            quote_filled=0,
            price=round((r.price or 0) * 1e6),
            trigger_price=round((r.trigger_price or 0) * 1e6),
            trigger_condition="Above",
            reduce_only=r.reduce_only,
            post_only=r.post_only != "none",
        )

    def _mark_seen(self, snap: UserSnapshot) -> None:
        for t in self._ours().values():
            o = snap.by_user_order_id(t.uid)
            if o is not None and o.market_index == self.chain.market_index:
                if not t.seen:
                    t.seen, t.chain_id = True, o.order_id
                    if o.filled == 0:
                        self._events.append(OrderUpdate(order=t.snapshot(), reason="accepted"))
                t.chain_id = o.order_id

    # ------------------------------------------------------------------ restart bindings
    def restore(self, bindings: Iterable[TagBinding]) -> None:
        """Bindings from the journal (after a restart): open orders carrying these user order ids
        are reported with their client tag and venue order id again."""
        for b in bindings:
            if b.user_order_id:
                self._restored[b.user_order_id] = b

    def bindings(self) -> list[TagBinding]:
        return [TagBinding(t.tag, t.uid, t.order_id) for t in self._ours().values() if t.tag]

    def user_order_id_of(self, client_tag: str) -> int:
        t = self._by_tag.get(client_tag)
        return t.uid if t is not None else 0

    def _adopt_restored(self, snap: UserSnapshot) -> None:
        ours = self._ours()
        for o in snap.orders.values():
            if o.market_index != self.chain.market_index or o.user_order_id in ours or not o.user_order_id:
                continue
            b = self._restored.pop(o.user_order_id, None)
            if b is None:
                continue
            t = self._track_chain(o, b.client_tag, b.order_id)
            log.info("re-bound %s to user order id %d (order %s)", t.tag, t.uid, t.order_id)

    def _track_chain(self, o: ChainOrder, tag: str, order_id: str) -> Tracked:
        req = self._request_of(o, tag)
        t = Tracked(
            order_id=order_id,
            tag=tag,
            uid=o.user_order_id,
            request=req,
            status=o.status,
            chain_id=o.order_id,
            seen=True,
            in_flight=False,
            filled=o.filled / BASE,
            cost=o.quote_filled / QUOTE,
            ts=self.clock.now_ms(),
        )
        self._orders[order_id] = t
        if tag:
            self._by_tag[tag] = t
        return t

    def _request_of(self, o: ChainOrder, tag: str) -> OrderRequest:
        from core.venue import OrderType, PostOnly, TriggerCondition

        kind = {
            "Limit": OrderType.LIMIT,
            "TriggerMarket": OrderType.TRIGGER_MARKET,
            "TriggerLimit": OrderType.TRIGGER_LIMIT,
        }.get(o.order_type, OrderType.MARKET)
        trig = o.trigger_price / 1e6 if kind in (OrderType.TRIGGER_MARKET, OrderType.TRIGGER_LIMIT) else None
        cond = None
        if trig:
            cond = TriggerCondition.ABOVE if o.trigger_condition.endswith("Above") else TriggerCondition.BELOW
        return OrderRequest(
            market=self.market,
            side="buy" if o.direction == "Long" else "sell",
            type=kind,
            size=o.base / BASE,
            price=(o.price / 1e6) or None,
            trigger_price=trig,
            trigger_condition=cond,
            post_only=PostOnly.MUST if o.post_only else PostOnly.NONE,
            reduce_only=o.reduce_only,
            user_order_id=o.user_order_id,
            client_tag=tag,
        )

    # ------------------------------------------------------------------ helpers
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
            if o is not None:
                return self._track_chain(o, "", order_id)
        if t is None:
            raise VenueError(f"unknown order {order_id}")
        if t.status in TERMINAL:
            raise VenueError(f"order {order_id} is not open ({t.status})")
        return t

    async def _fee(self) -> int:
        return await self.sender.priority_fee([self.chain.user_pubkey, self.chain.perp_market_pubkey])

    async def _send(self, build: Callable[[], Awaitable[SignedTx]]) -> SignedTx:
        """Build, sign, send. A refusal by the RPC raises VenueError (nothing was accepted);
        an ambiguous failure (timeout, dropped) returns the tx: it may be in flight."""
        try:
            tx = await build()
        except RpcError as e:
            raise VenueError(f"cannot build the transaction: {e}", retryable=e.retryable) from None
        try:
            await self.sender.send(tx)
        except RpcError as e:
            if e.code is None:  # no answer: it may have been forwarded
                log.warning("send of %s ambiguous (%s): following it", tx.signature, e)
                return tx
            raise VenueError(f"sendTransaction refused: {e}", retryable=e.retryable) from None
        return tx

    def _follow(
        self,
        tx: SignedTx,
        rebuild: Callable[[], Awaitable[SignedTx]],
        landed: Callable[[], Awaitable[bool]],
        done: Callable[[Outcome], None],
    ) -> None:
        async def run() -> None:
            out = await self.sender.confirm(tx, rebuild, landed)
            try:
                await self.refresh()
            except (RpcError, ChainError) as e:
                log.warning("refresh after confirmation failed: %s", e)
            done(out)

        task = asyncio.create_task(run(), name=f"drift-confirm-{tx.signature[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_chain(self, pred: Callable[[UserSnapshot], bool]) -> bool:
        await self.refresh()
        snap = self.chain.view.user
        return snap is not None and pred(snap)

    def _fail(self, ts: Sequence[Tracked], out: Outcome) -> None:
        for t in ts:
            if out.landed or t.seen or t.status in TERMINAL:
                t.in_flight = False if t.seen else t.in_flight
                continue
            t.status, t.in_flight, t.ts = OrderStatus.REJECTED, False, self.clock.now_ms()
            self._events.append(OrderUpdate(order=t.snapshot(), reason=out.reason or "not confirmed"))

    # ------------------------------------------------------------------ Venue calls
    def _prepare(self, req: OrderRequest) -> tuple[Tracked, OrderParams]:
        spec = self.chain.market_spec()
        uid = self._alloc_uid(req.user_order_id)
        params = to_order_params(req, spec, uid)
        rreq = rounded_request(req, params, uid)
        oid = req.client_tag or f"uid{uid}@{self.clock.now_ms()}"
        t = Tracked(order_id=oid, tag=req.client_tag, uid=uid, request=rreq, ts=self.clock.now_ms())
        return t, params

    def _register(self, t: Tracked) -> None:
        self._orders[t.order_id] = t
        if t.tag:
            self._by_tag[t.tag] = t
            if self.on_bind is not None:
                self.on_bind(TagBinding(t.tag, t.uid, t.order_id))

    def _existing(self, req: OrderRequest) -> Order | None:
        t = self._by_tag.get(req.client_tag) if req.client_tag else None
        if t is None:
            return None
        if t.status == OrderStatus.REJECTED:
            raise VenueError(f"order {req.client_tag} already failed; it is never placed twice")
        return t.snapshot()

    async def place(self, req: OrderRequest) -> Order:
        if req.market != self.market:
            raise VenueError(f"unknown market {req.market} (this venue trades {self.market})")
        found = self._existing(req)
        if found is not None:
            return found
        self._check_tradeable(req.reduce_only)
        t, params = self._prepare(req)
        fee = await self._fee()
        ix = self.chain.client.get_place_perp_order_ix(params, self.chain.sub_account_id)

        async def build() -> SignedTx:
            return await self.sender.build([ix], self.signer, fee)

        self._register(t)
        try:
            tx = await self._send(build)
        except VenueError:
            self._orders.pop(t.order_id, None)
            self._by_tag.pop(t.tag, None)
            raise
        self._follow(
            tx,
            build,
            lambda: self._on_chain(lambda s: s.by_user_order_id(t.uid) is not None),
            lambda out: self._fail([t], out),
        )
        return t.snapshot()

    async def cancel(self, order_id: str) -> None:
        t = self._find(order_id)
        st = self._drift_status
        if st is not None and not st.cancels_allowed:
            raise VenueError(f"Drift is fully paused, cancel refused: {self._status.reason}", retryable=True)
        if t.chain_id is None or not t.seen:
            raise VenueError(
                f"order {order_id} is not on chain yet (its transaction is in flight)", retryable=True
            )
        chain_id = t.chain_id
        fee = await self._fee()
        ix = self.chain.client.get_cancel_order_ix(chain_id, self.chain.sub_account_id)

        async def build() -> SignedTx:
            return await self.sender.build([ix], self.signer, fee)

        tx = await self._send(build)
        self._follow(tx, build, lambda: self._on_chain(lambda s: chain_id not in s.orders), lambda out: None)

    async def cancel_all(self, market: str | None = None) -> int:
        if market is not None and market != self.market:
            return 0
        st = self._drift_status
        if st is not None and not st.cancels_allowed:
            raise VenueError(f"Drift is fully paused, cancel refused: {self._status.reason}", retryable=True)
        snap = self.chain.view.user
        idx = self.chain.market_index
        n = len([o for o in snap.orders.values() if o.market_index == idx]) if snap is not None else 0
        if n == 0:
            return 0
        fee = await self._fee()
        ix = self.chain.client.get_cancel_orders_ix(
            MarketType.Perp(),
            idx,
            None,  # type: ignore[arg-type]
            self.chain.sub_account_id,
        )

        async def build() -> SignedTx:
            return await self.sender.build([ix], self.signer, fee)

        tx = await self._send(build)
        self._follow(
            tx,
            build,
            lambda: self._on_chain(lambda s: not any(o.market_index == idx for o in s.orders.values())),
            lambda out: None,
        )
        return n

    async def modify(
        self,
        order_id: str,
        *,
        price: float | None = None,
        size: float | None = None,
        trigger_price: float | None = None,
    ) -> Order:
        t = self._find(order_id)
        self._check_tradeable(t.request.reduce_only)
        if t.chain_id is None or not t.seen:
            raise VenueError(
                f"order {order_id} is not on chain yet (its transaction is in flight)", retryable=True
            )
        if size is not None and size <= t.filled + 1e-12:
            raise VenueError(f"size {size} not above filled {t.filled}")
        spec = self.chain.market_spec()
        mp = to_modify_params(t.request, spec, price=price, size=size, trigger_price=trigger_price)
        fee = await self._fee()
        ix = self.chain.client.get_modify_order_ix(t.chain_id, mp, self.chain.sub_account_id)

        async def build() -> SignedTx:
            return await self.sender.build([ix], self.signer, fee)

        tx = await self._send(build)
        changes: dict[str, float] = {}
        if mp.price is not None:
            changes["price"] = mp.price / 1e6
        if mp.base_asset_amount is not None:
            changes["size"] = mp.base_asset_amount / BASE
        if mp.trigger_price is not None:
            changes["trigger_price"] = mp.trigger_price / 1e6
        old_req = t.request
        t.request = msgspec.structs.replace(t.request, **changes)
        want = (mp.price, mp.trigger_price)

        def modified(s: UserSnapshot) -> bool:
            o = s.by_user_order_id(t.uid)
            return o is None or (
                (want[0] is None or o.price == want[0]) and (want[1] is None or o.trigger_price == want[1])
            )

        def done(out: Outcome) -> None:
            if not out.landed and t.status not in TERMINAL:
                t.request = old_req
                self._events.append(OrderUpdate(order=t.snapshot(), reason=f"modify failed: {out.reason}"))

        self._follow(tx, build, lambda: self._on_chain(modified), done)
        return t.snapshot()

    async def cancel_and_place(self, cancel_ids: Sequence[str], reqs: Sequence[OrderRequest]) -> list[Order]:
        """Cancels (by on-chain id) and a ``place_orders`` in ONE transaction: all or nothing."""
        targets = [self._find(oid) for oid in cancel_ids]
        for t in targets:
            if t.chain_id is None or not t.seen:
                raise VenueError(f"order {t.order_id} is not on chain yet", retryable=True)
        for r in reqs:
            if r.market != self.market:
                raise VenueError(f"unknown market {r.market}")
            if r.client_tag and r.client_tag in self._by_tag:
                raise VenueError(f"client tag {r.client_tag} already used")
            self._check_tradeable(r.reduce_only)
        prepared = []
        for r in reqs:
            t, params = self._prepare(r)
            self._orders[t.order_id] = t  # reserve the uid for the next _prepare
            prepared.append((t, params))
        for t, _ in prepared:
            self._orders.pop(t.order_id, None)
        fee = await self._fee()
        c = self.chain.client
        ixs = [c.get_cancel_order_ix(t.chain_id, self.chain.sub_account_id) for t in targets]
        if prepared:
            ixs.append(c.get_place_orders_ix([p for _, p in prepared], self.chain.sub_account_id))

        async def build() -> SignedTx:
            return await self.sender.build(ixs, self.signer, fee)

        news = [t for t, _ in prepared]
        for t in news:
            self._register(t)
        try:
            tx = await self._send(build)
        except VenueError:
            for t in news:
                self._orders.pop(t.order_id, None)
                self._by_tag.pop(t.tag, None)
            raise
        gone = {t.chain_id for t in targets}
        uids = {t.uid for t in news}

        def landed(s: UserSnapshot) -> bool:
            have = {o.user_order_id for o in s.orders.values()}
            return uids <= have and not (gone & set(s.orders))

        self._follow(tx, build, lambda: self._on_chain(landed), lambda out: self._fail(news, out))
        return [t.snapshot() for t in news]

    async def open_orders(self, market: str | None = None) -> list[Order]:
        if market is not None and market != self.market:
            return []
        self._check_age()
        if self._status.state == VenueState.DOWN:
            raise VenueError(f"Drift venue is down: {self._status.reason}", retryable=True)
        out: list[Order] = [t.snapshot() for t in self._ours().values()]
        snap = self.chain.view.user
        if snap is not None:
            ours = {t.uid for t in self._ours().values()}
            for o in snap.orders.values():
                if o.market_index == self.chain.market_index and o.user_order_id not in ours:
                    b = self._restored.get(o.user_order_id)
                    req = self._request_of(o, b.client_tag if b else "")
                    out.append(
                        Order(
                            order_id=b.order_id if b else f"chain:{o.order_id}",
                            request=req,
                            status=o.status,
                            filled=o.filled / BASE,
                            ts=self.clock.now_ms(),
                        )
                    )
        return out

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
