"""VelocityVenue: :class:`core.venue.Venue` on the Velocity program (docs/VELOCITY_VENUE.md).

* Sends go through the shared send path (:mod:`execution.solana_send`, the same as Drift's): the
  signed transaction is journaled before its first broadcast, rebroadcast (same bytes) until it
  lands or its blockhash expires, and never re-signed before the chain proves the previous copy
  cannot land. A call returns once the first broadcast was answered (or ``ack_wait_s`` passed): an
  order whose send timed out, failed after leaving, or stays unconfirmed is reported ``unknown``
  (with its signatures) until the chain decides; the outcome arrives as events.
* Instructions are pure builders (:mod:`execution.velocity.instructions`) from the program's IDL.
* The program check (:mod:`execution.velocity.program_check`) runs at start: trading is refused
  unless the deployed program's IDL matches the one the venue was built for; a cancel is still
  signed when its own instruction matches (the kill switch keeps working when only placing
  changed); nothing is signed for an unverified program.
* Orders are referred to by :class:`execution.velocity.book.OrderRef` (user order id + on-chain
  order id today; a CLOB reference later); the venue's ``order_id`` is the client tag, stable
  across ``modify_order`` (which re-creates the order with a new on-chain id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from solders.instruction import AccountMeta, Instruction

from core.journal_port import JournaledSend
from core.venue import Order, OrderRequest, OrderStatus, OrderUpdate, VenueError
from execution.drift.tracking import TERMINAL, TagBinding, Tracked
from execution.drift.user_state import BASE
from execution.solana_send.landing import Landing, Probe, Submission
from execution.solana_send.rpc import RpcError
from execution.solana_send.tx import SignedTx
from execution.velocity import instructions as ixs
from execution.velocity.book import OrderRef, VelocityBook
from execution.velocity.chain import ChainError
from execution.velocity.orders import modify_params, order_params, rounded_request

__all__ = ["OrderRef", "TagBinding", "VelocityVenue"]
log = logging.getLogger(__name__)
PLACING = ("place", "cancel_and_place")


class VelocityVenue(VelocityBook):
    """:class:`core.venue.Venue` on Velocity: the book (:class:`VelocityBook`) plus the sends."""

    confirms_async = True  # calls return once sent; the order shows up in events once on chain

    # ------------------------------------------------------------------ restart
    def resume(self, sends: Iterable[JournaledSend], requests: dict[str, OrderRequest]) -> list[Submission]:
        """Follow the journal's unresolved transactions of this venue again (after a restart). The
        orders they place are tracked as ``unknown`` until the chain decides."""
        out = []
        for rec in sends:
            if rec.venue != self.name or rec.market != self.market:
                continue
            placed = [t for tag in rec.refs if (t := self._resume_order(tag, requests)) is not None]
            sub = self.sender.resume(
                rec,
                probe=self._probe_placed(placed) if placed else None,
                address=self.chain.user_pubkey,
                on_change=self._on_send,
            )
            self._own(sub, rec.kind, placed)
            out.append(sub)
        return out

    # ------------------------------------------------------------------ sends
    def _remaining(self, readable_market: bool = True) -> list[AccountMeta]:
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
        kind: str,
        ix_list: Sequence[Instruction],
        orders: list[Tracked],
        refs: list[str],
        probe: Probe | None,
        *,
        resign: bool = True,
    ) -> Submission:
        """Sign, journal, broadcast; returns once the first broadcast was answered. Raises
        :class:`VenueError` when nothing was broadcast or the node refused it (never forwarded)."""

        async def sign() -> SignedTx:
            fee = await self.builder.priority_fee([self.chain.user_pubkey, self.chain.perp_market_pubkey])
            return await self.builder.build(ix_list, self.signer, fee)

        try:
            tx = await sign()
        except RpcError as e:
            raise VenueError(f"cannot build the transaction: {e}", retryable=e.retryable) from None
        try:
            sub = self.sender.submit(
                tx,
                kind=kind,
                market=self.market,
                refs=refs,
                resign=sign if resign else None,
                probe=probe,
                address=self.chain.user_pubkey,
                on_change=self._on_send,
            )
        except Exception as e:  # not journaled (storage): nothing was broadcast
            raise VenueError(
                f"cannot journal the signed transaction, not sent: {e}", retryable=True
            ) from None
        self._own(sub, kind, orders)
        await self.sender.wait_ack(sub)
        if sub.state == Landing.REFUSED:
            raise VenueError(sub.reason, retryable=isinstance(sub.error, RpcError) and sub.error.retryable)
        return sub

    def _own(self, sub: Submission, kind: str, orders: list[Tracked]) -> None:
        self._owners[id(sub)] = (kind, orders)
        for t in orders:
            t.signatures.append(sub.current.signature)
            if kind in PLACING:
                t.place = sub
        self._spawn(self._after(sub), f"velocity-{kind}-{sub.current.signature[:8]}")
        if sub.state == Landing.UNKNOWN:  # resumed after a restart
            self._on_send(sub)

    def _on_send(self, sub: Submission) -> None:
        """A send changed state (called from the sender's task): what it means for the orders."""
        kind, orders = self._owners.get(id(sub), ("", []))
        now = self.clock.now_ms()
        for t in orders:
            for s in sub.signatures:
                if s not in t.signatures:
                    t.signatures.append(s)
        if kind not in PLACING:
            return
        mine = [t for t in orders if t.place is sub and not t.seen and t.status not in TERMINAL]
        sigs = ", ".join(sub.signatures)
        if sub.state == Landing.UNKNOWN:
            for t in mine:
                t.ts, t.reported_unknown = now, True
                reason = f"maybe landed ({sub.reason}); signature {sigs}; waiting for the chain"
                self._events.append(OrderUpdate(order=t.snapshot(), reason=reason))
        elif sub.state == Landing.LANDED:
            for t in (t for t in mine if t.reported_unknown):
                t.ts = now
                self._events.append(OrderUpdate(order=t.snapshot(), reason=f"landed: {sub.signature}"))
        elif sub.state.final and (sub.state != Landing.REFUSED or sub.acked.is_set()):
            for t in mine:
                t.status, t.in_flight, t.ts = OrderStatus.REJECTED, False, now
                self._events.append(
                    OrderUpdate(order=t.snapshot(), reason=f"{sub.state}: {sub.reason} [{sigs}]")
                )

    async def _after(self, sub: Submission) -> None:
        """Once the chain decided: read the account (the order shows up, filled, cancelled...)."""
        await self.sender.wait(sub)
        kind, orders = self._owners.pop(id(sub), ("", []))
        for _ in range(3):
            try:
                await self.refresh()
                break
            except (RpcError, ChainError) as e:
                log.warning("refresh after %s failed: %s", sub.describe(), e)
                await asyncio.sleep(self.poll_s)
        if kind == "cancel" and not sub.landed:
            for t in orders:  # the order is still wanted gone: cancel it again
                if t.want_cancel and t.status not in TERMINAL and t.cancel is sub:
                    with contextlib.suppress(VenueError):
                        await self._cancel(t)

    def _seen(self, check: Any) -> Probe:
        """A probe: read the account, then ``check(snapshot)`` (None when it cannot be read)."""

        async def probe() -> bool | None:
            try:
                await self.refresh()
            except (RpcError, ChainError):
                return None
            user = self.chain.view.user
            return None if user is None else bool(check(user.snapshot))

        return probe

    def _probe_placed(self, ts: list[Tracked]) -> Probe:
        uids = {t.uid for t in ts}
        idx = self._index
        return self._seen(
            lambda s: (
                bool(uids & {o.user_order_id for o in s.orders.values() if o.market_index == idx})
                or any(t.status in TERMINAL and t.seen for t in ts)
            )
        )

    # ------------------------------------------------------------------ Venue calls
    def _prepare(self, req: OrderRequest) -> tuple[Tracked, dict[str, Any]]:
        try:
            spec = self.chain.market_spec()
        except ChainError as e:
            raise VenueError(str(e), retryable=True) from None
        uid = self._alloc_uid(req.user_order_id)
        params = order_params(req, spec, uid)
        oid = req.client_tag or f"uid{uid}@{self.clock.now_ms()}"
        rreq = rounded_request(req, params, uid)
        return Tracked(
            order_id=oid, tag=req.client_tag, uid=uid, request=rreq, ts=self.clock.now_ms()
        ), params

    def _register(self, t: Tracked) -> None:
        self._track(t)
        if t.tag and self.on_bind is not None:
            self.on_bind(TagBinding(t.tag, t.uid, t.order_id))

    def _unregister(self, ts: Iterable[Tracked]) -> None:
        for t in ts:
            self._orders.pop(t.order_id, None)
            if t.tag and self._by_tag.get(t.tag) is t:
                del self._by_tag[t.tag]

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
        ix = ixs.place_perp_order(self.chain.who, params, self._remaining())
        await self._send_new("place", [ix], [t])
        return t.snapshot()

    async def _send_new(
        self, kind: str, ix_list: list[Instruction], news: list[Tracked], refs: Sequence[str] = ()
    ) -> None:
        """Send a transaction that places ``news``: registered (their user order ids journaled) before
        it is signed; unregistered again only when it provably was not broadcast."""
        for t in news:
            self._register(t)
        sent = False
        try:
            await self._submit(
                kind, ix_list, news, [*(t.tag or t.order_id for t in news), *refs], self._probe_placed(news)
            )
            sent = True
        finally:
            if not sent and not any(t.place is not None and not t.place.final for t in news):
                self._unregister(news)

    async def cancel(self, order_id: str) -> None:
        t = self._find(order_id)
        self._check_can_sign("cancel_order")
        self._on_chain_now(t)
        t.want_cancel = True
        if t.cancel is not None and not t.cancel.final:
            return  # a cancel of it is in flight
        await self._cancel(t)

    async def _cancel(self, t: Tracked) -> None:
        chain_id = self._on_chain_now(t)
        ix = ixs.cancel_order(self.chain.who, chain_id, self._remaining(False))
        gone = self._seen(lambda s: chain_id not in s.orders)
        t.cancel = await self._submit("cancel", [ix], [t], [t.order_id], gone)

    async def cancel_all(self, market: str | None = None) -> int:
        """``cancel_orders(Perp, market)``: every order of this market, ours or not (the kill switch)."""
        if market is not None and market != self.market:
            return 0
        self._check_can_sign("cancel_orders")
        user = self.chain.view.user
        idx = self._index
        n = len([o for o in user.snapshot.orders.values() if o.market_index == idx]) if user else 0
        if n == 0:
            return 0
        ix = ixs.cancel_orders(self.chain.who, idx, self._remaining(False))
        none_left = self._seen(lambda s: not any(o.market_index == idx for o in s.orders.values()))
        await self._submit("cancel_all", [ix], [], [f"all:{self.market}"], none_left)
        return n

    async def modify(
        self,
        order_id: str,
        *,
        price: float | None = None,
        size: float | None = None,
        trigger_price: float | None = None,
    ) -> Order:
        """``modify_order``: the program cancels and re-places the order in one instruction. Never
        re-signed (a later copy could apply on top of a landed one)."""
        t = self._find(order_id)
        self._check_tradeable(t.request.reduce_only)
        chain_id = self._on_chain_now(t)
        if size is not None and size <= t.filled + 1e-12:
            raise VenueError(f"size {size} not above filled {t.filled}")
        try:
            spec = self.chain.market_spec()
        except ChainError as e:
            raise VenueError(str(e), retryable=True) from None
        mp = modify_params(t.request, spec, price=price, size=size, trigger_price=trigger_price)
        ix = ixs.modify_order(self.chain.who, chain_id, mp, self._remaining())
        want = (mp["price"], mp["trigger_price"])

        def modified(s: Any) -> bool:
            o = s.by_user_order_id(t.uid)
            return o is None or (
                (want[0] is None or o.price == want[0]) and (want[1] is None or o.trigger_price == want[1])
            )

        sub = await self._submit("modify", [ix], [t], [t.order_id], self._seen(modified), resign=False)
        changes: dict[str, float] = {}
        if mp["price"] is not None:
            changes["price"] = mp["price"] / 1e6
        if mp["base_asset_amount"] is not None:
            changes["size"] = mp["base_asset_amount"] / BASE
        if mp["trigger_price"] is not None:
            changes["trigger_price"] = mp["trigger_price"] / 1e6
        old_req = t.request
        t.request = msgspec.structs.replace(t.request, **changes)

        async def revert() -> None:
            await self.sender.wait(sub)
            if not sub.landed and t.status not in TERMINAL and t.request is not old_req:
                t.request = old_req
                self._events.append(OrderUpdate(order=t.snapshot(), reason=f"modify failed: {sub.reason}"))

        self._spawn(revert(), f"velocity-modify-{sub.current.signature[:8]}")
        return t.snapshot()

    async def cancel_and_place(self, cancel_ids: Sequence[str], reqs: Sequence[OrderRequest]) -> list[Order]:
        """``cancel_orders_by_ids`` and ``place_orders`` in ONE transaction: all or nothing."""
        targets = [self._find(oid) for oid in cancel_ids]
        gone = sorted({self._on_chain_now(t) for t in targets})
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
            ix_list.append(ixs.cancel_orders_by_ids(self.chain.who, gone, self._remaining(False)))
        if prepared:
            ix_list.append(ixs.place_orders(self.chain.who, [p for _, p in prepared], self._remaining()))
        for t in targets:
            t.want_cancel = True
        await self._send_new("cancel_and_place", ix_list, news, [t.order_id for t in targets])
        return [t.snapshot() for t in news]

    def order_ref(self, order_id: str) -> OrderRef:
        """How the program knows one of our orders (for the CLOB family's references)."""
        return OrderRef.of(self._find(order_id))
