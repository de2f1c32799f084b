"""The venue protocol: what the engine needs from a venue (paper or Drift).

Shaped on Drift's order semantics so a Drift venue fits without adapters:

* post-only modes: ``must`` (MustPostOnly: rejected if it would take), ``try`` (TryPostOnly:
  silently skipped if it would take), ``slide`` (reprice one tick behind the touch), ``none``;
* trigger orders (``trigger_market`` for stops, ``trigger_limit`` for take-profits) with an
  ``above``/``below`` trigger condition, usually ``reduce_only``;
* user order ids are a u8 (1..255, 0 = none), at most 255 live orders per account;
* ``modify`` changes price/size/trigger in place; ``cancel_and_place`` cancels and places in one
  atomic step (one transaction on Drift).

Everything a venue reports after a call comes as :class:`VenueEvent` values (the call results
are only the immediate acceptance), so fills and cancels are handled in one place.

An on-chain venue may answer a call with an order in status ``unknown``: its transaction may or
may not land (see :mod:`execution.solana_send`); an ``OrderUpdate`` follows once the chain says.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Literal, Protocol

import msgspec

OrderSide = Literal["buy", "sell"]
MAX_USER_ORDER_ID = 255


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    TRIGGER_MARKET = "trigger_market"
    TRIGGER_LIMIT = "trigger_limit"


class PostOnly(StrEnum):
    NONE = "none"
    MUST = "must"  # MustPostOnly: reject when it would cross
    TRY = "try"  # TryPostOnly: skip (cancel, no error) when it would cross
    SLIDE = "slide"  # reprice to rest one tick behind the opposite touch


class TriggerCondition(StrEnum):
    ABOVE = "above"
    BELOW = "below"


class OrderStatus(StrEnum):
    #: its transaction may have landed or not (no answer, an HTTP error, statuses unavailable): the
    #: venue follows it until the chain says; nothing new that adds risk is sent in its market
    UNKNOWN = "unknown"
    OPEN = "open"
    TRIGGERED = "triggered"  # a trigger order that fired and is now working
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class VenueState(StrEnum):
    ACTIVE = "active"
    REDUCE_ONLY = "reduce_only"  # only reduce-only orders accepted
    PAUSED = "paused"  # nothing accepted (e.g. exchange or market paused)
    DOWN = "down"  # unreachable / unknown


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine asks for. ``user_order_id`` in 1..255 (u8) or 0 for none."""

    market: str
    side: OrderSide
    type: OrderType
    size: float
    price: float | None = None  # limit price (limit / trigger_limit)
    trigger_price: float | None = None
    trigger_condition: TriggerCondition | None = None
    post_only: PostOnly = PostOnly.NONE
    reduce_only: bool = False
    user_order_id: int = 0
    client_tag: str = ""  # engine's idempotency key (intent id + role), echoed in events

    def __post_init__(self) -> None:
        if not 0 <= self.user_order_id <= MAX_USER_ORDER_ID:
            raise ValueError(f"user_order_id must be a u8 (0..255), got {self.user_order_id}")
        if not self.size > 0:
            raise ValueError(f"size must be > 0, got {self.size}")
        if self.type in (OrderType.LIMIT, OrderType.TRIGGER_LIMIT) and not (self.price and self.price > 0):
            raise ValueError(f"{self.type} order needs a positive price")
        is_trigger = self.type in (OrderType.TRIGGER_MARKET, OrderType.TRIGGER_LIMIT)
        has_trigger = bool(self.trigger_price and self.trigger_price > 0) and bool(self.trigger_condition)
        if is_trigger and not has_trigger:
            raise ValueError(f"{self.type} order needs trigger_price and trigger_condition")


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's view of an order."""

    order_id: str
    request: OrderRequest
    status: OrderStatus
    filled: float = 0.0
    avg_price: float = 0.0
    ts: int = 0
    #: on-chain venues: the signatures of the transactions that placed / changed / cancelled it
    signatures: tuple[str, ...] = ()

    @property
    def remaining(self) -> float:
        return max(0.0, self.request.size - self.filled)


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    client_tag: str
    market: str
    side: OrderSide
    price: float
    size: float
    fee: float  # quote currency; negative = rebate
    maker: bool
    ts: int


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """Signed base size (+ long, − short), average entry, realized PnL and fees so far."""

    market: str
    size: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    funding: float = 0.0


class VenueStatus(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    state: VenueState
    reason: str = ""
    ts: int = 0


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """An order changed (accepted, partially filled, filled, cancelled, rejected, triggered)."""

    order: Order
    reason: str = ""


class FillEvent(msgspec.Struct, frozen=True, kw_only=True):
    fill: Fill


VenueEvent = OrderUpdate | FillEvent | VenueStatus


class VenueError(Exception):
    """A call the venue refused (paused, invalid, unknown order, rate limited...)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class Venue(Protocol):
    """Async venue interface. Calls raise :class:`VenueError` when refused; outcomes (fills,
    cancels, triggers) arrive as events from :meth:`events`."""

    name: str

    async def place(self, req: OrderRequest) -> Order: ...

    async def cancel(self, order_id: str) -> None: ...

    async def cancel_all(self, market: str | None = None) -> int: ...

    async def modify(
        self,
        order_id: str,
        *,
        price: float | None = None,
        size: float | None = None,
        trigger_price: float | None = None,
    ) -> Order: ...

    async def cancel_and_place(
        self, cancel_ids: Sequence[str], reqs: Sequence[OrderRequest]
    ) -> list[Order]: ...

    async def open_orders(self, market: str | None = None) -> list[Order]: ...

    async def position(self, market: str) -> Position: ...

    async def fills(self, since_ts: int = 0) -> list[Fill]: ...

    async def status(self) -> VenueStatus: ...

    def events(self) -> list[VenueEvent]:
        """Drain the events produced since the last call (non-blocking)."""
        ...
