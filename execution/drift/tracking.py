"""The Drift venue's bookkeeping of its own orders: what it sent, what the chain shows, and how a
User-account order slot maps back to an :class:`core.venue.OrderRequest`."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from core.venue import Order, OrderRequest, OrderStatus, OrderType, PostOnly, TriggerCondition
from execution.drift.user_state import BASE, QUOTE, ChainOrder
from execution.solana_send.landing import Landing, Submission

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
    place: Submission | None = None  # the transaction that places it
    cancel: Submission | None = None  # the last cancel sent for it
    want_cancel: bool = False  # a cancel was asked: re-sent by the venue until it is gone
    unseen_after_landing: int = 0  # refreshes since its transaction landed without showing it
    reported_unknown: bool = False  # an ``unknown`` update went out: its resolution is reported too
    signatures: list[str] = field(default_factory=list)

    @property
    def unknown(self) -> bool:
        """Its transaction may or may not have landed (and the account does not show it yet)."""
        p = self.place
        return not self.seen and self.status not in TERMINAL and p is not None and p.state == Landing.UNKNOWN

    def snapshot(self) -> Order:
        avg = self.cost / self.filled if self.filled > 0 else 0.0
        return Order(
            order_id=self.order_id,
            request=self.request,
            status=OrderStatus.UNKNOWN if self.unknown else self.status,
            filled=self.filled,
            avg_price=avg,
            ts=self.ts,
            signatures=tuple(dict.fromkeys(self.signatures)),
        )


def tracked_from_chain(o: ChainOrder, market: str, order_id: str, tag: str, ts: int) -> Tracked:
    """An order found on the account (after a restart, or placed elsewhere) as the venue tracks it."""
    return Tracked(order_id=order_id, tag=tag, uid=o.user_order_id, request=request_of(o, market, tag),
                   status=o.status, chain_id=o.order_id, seen=True, in_flight=False, filled=o.filled / BASE,
                   cost=o.quote_filled / QUOTE, ts=ts)


def request_of(o: ChainOrder, market: str, tag: str) -> OrderRequest:
    """The request an order slot of the User account stands for (prices and sizes as held)."""
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
        market=market,
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


def synthetic(t: Tracked, market_index: int) -> ChainOrder:
    """An order sent but never seen, as the account would hold it (for fill attribution)."""
    r = t.request
    return ChainOrder(
        order_id=-1,
        user_order_id=t.uid,
        market_index=market_index,
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
