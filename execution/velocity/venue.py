"""VelocityVenue: :class:`core.venue.Venue` on the Velocity program (docs/VELOCITY_VENUE.md).

* Writes go through a :class:`execution.velocity.send.TxPort` (sign, send, follow); calls return
  once the transaction has left; the outcome arrives as events: the order shows up in the User
  account (``OrderUpdate`` open), or ``OrderUpdate`` rejected once nothing sent can still land.
* The program check (:mod:`execution.velocity.program_check`) runs at start: trading is refused
  unless the deployed program's IDL matches the one the venue was built for; a cancel is still
  signed when its own instruction matches (the kill switch keeps working when only placing
  changed); nothing is signed for an unverified program.
* Orders are referred to by :class:`OrderRef` (user order id + on-chain order id today; a CLOB
  reference for the program's CLOB family later); the venue's ``order_id`` is the client tag,
  stable across ``modify_order`` (which re-creates the order with a new on-chain id).
* Reconciliation from the User account (fills, triggers, cancels, orders that finished between two
  reads) is the Drift venue's (:func:`execution.drift.user_state.diff`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from solders.instruction import Instruction

from core.clock import Clock
from core.venue import (
    Fill,
    FillEvent,
    Order,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    Position,
    PostOnly,
    TriggerCondition,
    VenueError,
    VenueEvent,
    VenueState,
    VenueStatus,
)
from core.venue import OrderType as OT
from execution.drift.rpc import RpcError
from execution.drift.user_state import BASE, QUOTE, ChainOrder, UserSnapshot, diff, fill_price
from execution.velocity import instructions as ixs
from execution.velocity.chain import ChainError, VelocityChain
from execution.velocity.orders import modify_params, order_params, rounded_request
from execution.velocity.program_check import check_program
from execution.velocity.send import SendOutcome, SendRefused, TxPort
from execution.velocity.status import VelocityStatus

log = logging.getLogger(__name__)
TERMINAL = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)
_TYPES = {
    "Limit": OT.LIMIT,
    "Market": OT.MARKET,
    "TriggerMarket": OT.TRIGGER_MARKET,
    "TriggerLimit": OT.TRIGGER_LIMIT,
}


class TagBinding(msgspec.Struct, frozen=True):
    """What the journal keeps to find an order again after a restart."""

    client_tag: str
    user_order_id: int
    order_id: str


@dataclass(frozen=True)
class OrderRef:
    """How the program knows an order: a user order id and the on-chain order id (a resting order
    of the CLOB family would add its CLOB reference here)."""

    user_order_id: int
    order_id: int | None = None


@dataclass
class Tracked:
    order_id: str
    tag: str
    uid: int
    request: OrderRequest
    status: OrderStatus = OrderStatus.OPEN
    chain_id: int | None = None
    seen: bool = False
    in_flight: bool = True
    filled: float = 0.0
    cost: float = 0.0
    ts: int = 0

    @property
    def ref(self) -> OrderRef:
        return OrderRef(self.uid, self.chain_id)

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


class VelocityVenue:
    def __init__(
        self,
        chain: VelocityChain,
        port: TxPort,
        clock: Clock,
        *,
        name: str = "velocity",
        poll_s: float = 1.0,
        max_age_s: float = 15.0,
        check_program: bool = True,
        on_bind: Callable[[TagBinding], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.chain, self.port, self.clock = name, chain, port, clock
        self.poll_s, self.max_age_s, self.on_bind, self.monotonic = poll_s, max_age_s, on_bind, monotonic
        self.run_program_check = check_program
        self.market = chain.market_name
        self._orders: dict[str, Tracked] = {}
        self._by_tag: dict[str, Tracked] = {}
        self._restored: dict[int, TagBinding] = {}
        self._fills: list[Fill] = []
        self._events: list[VenueEvent] = []
        self._status = VenueStatus(venue=name, state=VenueState.DOWN, reason="not started", ts=clock.now_ms())
        self._vstatus: VelocityStatus | None = None
        self._next_uid = 1
        self._fees = 0.0
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self.status_listeners: list[Callable[[VenueStatus, VelocityStatus | None], None]] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self, poll: bool = True) -> None:
        """Program check, first account read (fails loudly when accounts are missing), polling."""
        if self.run_program_check:
            self.chain.check = await check_program(self.chain.rpc, self.chain.program_id)
            log.info("velocity program check: %s", self.chain.check.summary())
        await self.refresh()
        if poll and self._poller is None:
            self._poller = asyncio.create_task(self._poll_loop(), name="velocity-venue-poll")

    async def close(self) -> None:
        tasks = [t for t in [self._poller, *self._tasks] if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._poller = None
        self._tasks.clear()
        await self.port.close()
        await self.chain.rpc.close()  # its own session, if it made one (a shared one is not closed)

    async def _poll_loop(self) -> None:
        delay = self.poll_s
        while True:
            await asyncio.sleep(delay)
            try:
                await self.refresh()
                delay = self.poll_s
            except (RpcError, ChainError) as e:
                log.warning("velocity account poll failed: %s", e)
                self._check_age()
                delay = min(delay * 2, 30.0)

    async def wait_idle(self) -> None:
        """Wait until every transaction sent has an outcome (tests, shutdown)."""
        await self.port.wait_idle()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ status
    def _set_status(self, st: VenueStatus) -> None:
        if st.state != self._status.state or st.reason != self._status.reason:
            self._status = st
            self._events.append(st)
            for fn in self.status_listeners:
                try:
                    fn(st, self._vstatus)
                except Exception:
                    log.exception("status listener failed")

    def _check_age(self) -> None:
        fetched = self.chain.view.fetched_at
        age = self.monotonic() - fetched
        if fetched and age > self.max_age_s:
            self._set_status(
                VenueStatus(
                    venue=self.name,
                    state=VenueState.DOWN,
                    reason=f"Velocity account data is {age:.0f} s old",
                    ts=self.clock.now_ms(),
                )
            )

    def velocity_status(self) -> VelocityStatus | None:
        return self._vstatus

    async def status(self) -> VenueStatus:
        self._check_age()
        return self._status

    def _check_tradeable(self, reduce_only: bool) -> None:
        self._check_age()
        st = self._status
        if st.state == VenueState.DOWN:
            raise VenueError(f"Velocity venue is down: {st.reason}", retryable=True)
        if st.state == VenueState.PAUSED:
            raise VenueError(f"Velocity is paused, order refused: {st.reason}")
        if st.state == VenueState.REDUCE_ONLY and not reduce_only:
            raise VenueError(f"Velocity market is reduce-only, order refused: {st.reason}")

    def _check_can_sign(self, instruction: str) -> None:
        """Cancels: the instruction itself must match the deployed program and the exchange must
        not be fully paused (the program rejects even cancels then)."""
        if not self.chain.check.instruction_ok(instruction):
            raise VenueError(f"{instruction} refused: program check: {self.chain.check.summary()}")
        if self._vstatus is not None and not self._vstatus.cancels_allowed:
            raise VenueError(
                f"Velocity is fully paused, {instruction} refused: {self._status.reason}", retryable=True
            )

    # ------------------------------------------------------------------ account refresh
    async def refresh(self) -> None:
        async with self._lock:
            old = self.chain.view.user.snapshot if self.chain.view.user else None
            view = await self.chain.refresh(self.monotonic())
            self._vstatus = self.chain.status()
            self._set_status(self._vstatus.venue_status(self.name, self.clock.now_ms()))
            assert view.user is not None
            snap = view.user.snapshot
            self._adopt_restored(snap)
            if old is not None:
                self._reconcile(old, snap)
            self._mark_seen(snap)

    def _ours(self) -> dict[int, Tracked]:
        return {t.uid: t for t in self._orders.values() if t.status not in TERMINAL}

    def _reconcile(self, old: UserSnapshot, new: UserSnapshot) -> None:
        ours = self._ours()
        extra = [self._synthetic(t) for t in ours.values() if not t.seen and t.in_flight]
        d = diff(old, new, self._index, ours, extra_vanished=extra)
        now = self.clock.now_ms()
        taker, rebate = self.chain.fee_rates()
        for f in d.fills:
            t = ours.get(f.order.user_order_id)
            if t is None:
                continue
            size, px = f.size / BASE, fill_price(f)
            fee = -rebate * size * px if f.maker else taker * size * px
            t.filled, t.cost, t.seen, t.ts = t.filled + size, t.cost + size * px, True, now
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

    @property
    def _index(self) -> int:
        return self.chain.market_index or 0

    def _synthetic(self, t: Tracked) -> ChainOrder:
        r = t.request
        return ChainOrder(
            order_id=-1,
            user_order_id=t.uid,
            market_index=self._index,
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
            if o is not None and o.market_index == self._index:
                if not t.seen:
                    t.seen = True
                    if o.filled == 0:
                        t.chain_id = o.order_id
                        self._events.append(OrderUpdate(order=t.snapshot(), reason="accepted"))
                t.chain_id = o.order_id

    # ------------------------------------------------------------------ restart bindings
    def restore(self, bindings: Iterable[TagBinding]) -> None:
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
            if o.market_index != self._index or o.user_order_id in ours or not o.user_order_id:
                continue
            b = self._restored.pop(o.user_order_id, None)
            if b is not None:
                self._track_chain(o, b.client_tag, b.order_id)

    def _track_chain(self, o: ChainOrder, tag: str, order_id: str) -> Tracked:
        t = Tracked(
            order_id=order_id,
            tag=tag,
            uid=o.user_order_id,
            request=self._request_of(o, tag),
            status=o.status,
            chain_id=o.order_id,
            seen=True,
            in_flight=False,
            filled=o.filled / BASE,
            ts=self.clock.now_ms(),
        )
        self._orders[order_id] = t
        if tag:
            self._by_tag[tag] = t
        return t

    def _request_of(self, o: ChainOrder, tag: str) -> OrderRequest:
        kind = _TYPES.get(o.order_type, OT.MARKET)
        trigger = o.trigger_price / 1e6 if kind in (OT.TRIGGER_MARKET, OT.TRIGGER_LIMIT) else None
        cond = None
        if trigger:
            cond = TriggerCondition.ABOVE if o.trigger_condition.endswith("Above") else TriggerCondition.BELOW
        return OrderRequest(
            market=self.market,
            side="buy" if o.direction == "Long" else "sell",
            type=kind,
            size=o.base / BASE,
            price=(o.price / 1e6) or None,
            trigger_price=trigger,
            trigger_condition=cond,
            post_only=PostOnly.MUST if o.post_only else PostOnly.NONE,
            reduce_only=o.reduce_only,
            user_order_id=o.user_order_id,
            client_tag=tag,
        )

    # ------------------------------------------------------------------ helpers
    def _alloc_uid(self, wanted: int = 0) -> int:
        used = {t.uid for t in self._orders.values() if t.status not in TERMINAL or t.in_flight}
        if self.chain.view.user is not None:
            used |= {o.user_order_id for o in self.chain.view.user.snapshot.orders.values()}
        used |= set(self._restored)
        if wanted and wanted not in used:
            return wanted
        for _ in range(255):
            uid, self._next_uid = self._next_uid, self._next_uid % 255 + 1
            if uid not in used:
                return uid
        raise VenueError("no free user order id (255 orders in use)")

    def _find(self, order_id: str) -> Tracked:
        t = self._orders.get(order_id)
        user = self.chain.view.user
        if t is None and order_id.startswith("chain:") and user is not None:
            o = user.snapshot.orders.get(int(order_id.split(":", 1)[1]))
            if o is not None:
                return self._track_chain(o, "", order_id)
        if t is None:
            raise VenueError(f"unknown order {order_id}")
        if t.status in TERMINAL:
            raise VenueError(f"order {order_id} is not open ({t.status})")
        return t

    def _remaining(self, readable_market: bool = True) -> list[Any]:
        try:
            return ixs.remaining_accounts(
                self.chain.markets(),
                self.chain.view.user,
                readable_perp=[self._index] if readable_market else [],
            )
        except ixs.MissingMarketError as e:
            raise VenueError(f"cannot build the instruction: {e}", retryable=True) from None

    async def _submit(
        self,
        ix_list: Sequence[Instruction],
        label: str,
        landed: Callable[[UserSnapshot], bool],
        done: Callable[[SendOutcome], None],
    ) -> None:
        """Send; the outcome is applied after one more account read. Refused -> VenueError."""

        async def on_chain() -> bool:
            await self.refresh()
            user = self.chain.view.user
            return user is not None and landed(user.snapshot)

        async def finished(out: SendOutcome) -> None:
            with contextlib.suppress(RpcError, ChainError):
                await self.refresh()
            done(out)

        try:
            await self.port.submit(ix_list, label=label, landed=on_chain, done=finished)
        except SendRefused as e:
            raise VenueError(str(e), retryable=e.retryable) from None

    def _fail(self, ts: Sequence[Tracked], out: SendOutcome) -> None:
        for t in ts:
            if out.landed or t.seen or t.status in TERMINAL:
                t.in_flight = t.in_flight and not t.seen
                continue
            t.status, t.in_flight, t.ts = OrderStatus.REJECTED, False, self.clock.now_ms()
            self._events.append(OrderUpdate(order=t.snapshot(), reason=out.reason or "not confirmed"))

    def _prepare(self, req: OrderRequest) -> tuple[Tracked, dict[str, Any]]:
        try:
            spec = self.chain.market_spec()
        except ChainError as e:
            raise VenueError(str(e), retryable=True) from None
        uid = self._alloc_uid(req.user_order_id)
        params = order_params(req, spec, uid)
        oid = req.client_tag or f"uid{uid}@{self.clock.now_ms()}"
        return Tracked(
            order_id=oid,
            tag=req.client_tag,
            uid=uid,
            request=rounded_request(req, params, uid),
            ts=self.clock.now_ms(),
        ), params

    def _register(self, t: Tracked) -> None:
        self._orders[t.order_id] = t
        if t.tag:
            self._by_tag[t.tag] = t
            if self.on_bind is not None:
                self.on_bind(TagBinding(t.tag, t.uid, t.order_id))

    def _unregister(self, ts: Iterable[Tracked]) -> None:
        for t in ts:
            self._orders.pop(t.order_id, None)
            self._by_tag.pop(t.tag, None)

    def _existing(self, req: OrderRequest) -> Order | None:
        t = self._by_tag.get(req.client_tag) if req.client_tag else None
        if t is None:
            return None
        if t.status == OrderStatus.REJECTED:
            raise VenueError(f"order {req.client_tag} already failed; it is never placed twice")
        return t.snapshot()

    def _on_chain_order(self, t: Tracked) -> int:
        if t.chain_id is None or not t.seen:
            raise VenueError(
                f"order {t.order_id} is not on chain yet (its transaction is in flight)", retryable=True
            )
        return t.chain_id

    # ------------------------------------------------------------------ Venue calls
    async def place(self, req: OrderRequest) -> Order:
        if req.market != self.market:
            raise VenueError(f"unknown market {req.market} (this venue trades {self.market})")
        found = self._existing(req)
        if found is not None:
            return found
        self._check_tradeable(req.reduce_only)
        t, params = self._prepare(req)
        ix = ixs.place_perp_order(self.chain.who, params, self._remaining())
        self._register(t)
        try:
            await self._submit(
                [ix],
                "place",
                lambda s: s.by_user_order_id(t.uid) is not None,
                lambda out: self._fail([t], out),
            )
        except VenueError:
            self._unregister([t])
            raise
        return t.snapshot()

    async def cancel(self, order_id: str) -> None:
        t = self._find(order_id)
        self._check_can_sign("cancel_order")
        chain_id = self._on_chain_order(t)
        ix = ixs.cancel_order(self.chain.who, chain_id, self._remaining(False))
        await self._submit([ix], "cancel", lambda s: chain_id not in s.orders, lambda out: None)

    async def cancel_all(self, market: str | None = None) -> int:
        if market is not None and market != self.market:
            return 0
        self._check_can_sign("cancel_orders")
        user = self.chain.view.user
        idx = self._index
        n = len([o for o in user.snapshot.orders.values() if o.market_index == idx]) if user else 0
        if n == 0:
            return 0
        ix = ixs.cancel_orders(self.chain.who, idx, self._remaining(False))
        await self._submit(
            [ix],
            "cancel-all",
            lambda s: not any(o.market_index == idx for o in s.orders.values()),
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
        """``modify_order``: the program cancels and re-places the order in one instruction."""
        t = self._find(order_id)
        self._check_tradeable(t.request.reduce_only)
        chain_id = self._on_chain_order(t)
        if size is not None and size <= t.filled + 1e-12:
            raise VenueError(f"size {size} not above filled {t.filled}")
        mp = modify_params(
            t.request, self.chain.market_spec(), price=price, size=size, trigger_price=trigger_price
        )
        ix = ixs.modify_order(self.chain.who, chain_id, mp, self._remaining())
        old_req = t.request
        changes: dict[str, float] = {}
        if mp["price"] is not None:
            changes["price"] = mp["price"] / 1e6
        if mp["base_asset_amount"] is not None:
            changes["size"] = mp["base_asset_amount"] / BASE
        if mp["trigger_price"] is not None:
            changes["trigger_price"] = mp["trigger_price"] / 1e6
        want = (mp["price"], mp["trigger_price"])

        def modified(s: UserSnapshot) -> bool:
            o = s.by_user_order_id(t.uid)
            return o is None or (
                (want[0] is None or o.price == want[0]) and (want[1] is None or o.trigger_price == want[1])
            )

        def done(out: SendOutcome) -> None:
            if not out.landed and t.status not in TERMINAL:
                t.request = old_req
                self._events.append(OrderUpdate(order=t.snapshot(), reason=f"modify failed: {out.reason}"))

        t.request = msgspec.structs.replace(t.request, **changes)
        try:
            await self._submit([ix], "modify", modified, done)
        except VenueError:
            t.request = old_req
            raise
        return t.snapshot()

    async def cancel_and_place(self, cancel_ids: Sequence[str], reqs: Sequence[OrderRequest]) -> list[Order]:
        """``cancel_orders_by_ids`` and ``place_orders`` in ONE transaction: all or nothing."""
        targets = [self._find(oid) for oid in cancel_ids]
        gone = {self._on_chain_order(t) for t in targets}
        for r in reqs:
            if r.market != self.market:
                raise VenueError(f"unknown market {r.market}")
            if r.client_tag and r.client_tag in self._by_tag:
                raise VenueError(f"client tag {r.client_tag} already used")
            self._check_tradeable(r.reduce_only)
        if targets:
            self._check_can_sign("cancel_orders_by_ids")
        prepared = []
        for r in reqs:
            t, params = self._prepare(r)
            self._orders[t.order_id] = t  # reserves the uid for the next _prepare
            prepared.append((t, params))
        news = [t for t, _ in prepared]
        self._unregister(news)
        ix_list = []
        if gone:
            ix_list.append(ixs.cancel_orders_by_ids(self.chain.who, sorted(gone), self._remaining(False)))
        if prepared:
            ix_list.append(ixs.place_orders(self.chain.who, [p for _, p in prepared], self._remaining()))
        for t in news:
            self._register(t)
        uids = {t.uid for t in news}

        def landed(s: UserSnapshot) -> bool:
            return uids <= {o.user_order_id for o in s.orders.values()} and not (gone & set(s.orders))

        try:
            await self._submit(ix_list, "cancel-and-place", landed, lambda out: self._fail(news, out))
        except VenueError:
            self._unregister(news)
            raise
        return [t.snapshot() for t in news]

    async def open_orders(self, market: str | None = None) -> list[Order]:
        if market is not None and market != self.market:
            return []
        self._check_age()
        if self._status.state == VenueState.DOWN:
            raise VenueError(f"Velocity venue is down: {self._status.reason}", retryable=True)
        out = [t.snapshot() for t in self._ours().values()]
        user = self.chain.view.user
        if user is not None:
            ours = {t.uid for t in self._ours().values()}
            for o in user.snapshot.orders.values():
                if o.market_index == self._index and o.user_order_id not in ours:
                    b = self._restored.get(o.user_order_id)
                    out.append(
                        Order(
                            order_id=b.order_id if b else f"chain:{o.order_id}",
                            request=self._request_of(o, b.client_tag if b else ""),
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
            raise VenueError(f"Velocity venue is down: {self._status.reason}", retryable=True)
        user = self.chain.view.user
        if user is None:
            raise VenueError("no User account data yet", retryable=True)
        p = user.snapshot.position(self._index)
        size = p.base / BASE
        avg = (-p.quote_entry / QUOTE) / size if size else 0.0
        net = (p.quote - p.quote_entry + p.settled_pnl) / QUOTE
        return Position(
            market=market, size=size, avg_price=avg, realized_pnl=net + self._fees, fees=self._fees
        )

    def equity(self) -> float:
        """Account equity in USDT from the last read (collateral + unrealized PnL)."""
        try:
            return self.chain.equity()[0]
        except ChainError as e:
            raise VenueError(str(e), retryable=True) from None

    async def fills(self, since_ts: int = 0) -> list[Fill]:
        return [f for f in self._fills if f.ts >= since_ts]

    def events(self) -> list[VenueEvent]:
        out, self._events = self._events, []
        return out
