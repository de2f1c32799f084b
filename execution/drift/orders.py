"""OrderRequest -> driftpy ``OrderParams`` / ``ModifyOrderParams`` in venue precision.

Precisions: base 1e9 (``BASE_PRECISION``), price 1e6 (``PRICE_PRECISION``). Rounding uses the
market account's ``amm.order_tick_size`` (price) and ``amm.order_step_size`` (base):

* size rounds *down* to the step (never more than asked); below ``amm.min_order_size`` refuses;
* a limit price rounds *away from the touch* (buy down, sell up) so a post-only order stays
  post-only and a reduce-only take-profit is never worse than asked;
* a trigger price rounds to the nearest tick.

Mapping: side buy/sell -> Long/Short; post-only none/must/try/slide -> ``PostOnlyParam`` None /
MustPostOnly / TryPostOnly / Slide; trigger condition above/below -> Above/Below; reduce-only ->
``reduce_only``; ``user_order_id`` is the u8 the venue assigned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from driftpy.types import (
    MarketType,
    ModifyOrderParams,
    OrderParams,
    OrderTriggerCondition,
    PositionDirection,
    PostOnlyParams,
)
from driftpy.types import OrderType as DriftOrderType

from core.venue import OrderRequest, OrderType, PostOnly, TriggerCondition, VenueError

BASE_PRECISION = 1_000_000_000
PRICE_PRECISION = 1_000_000
QUOTE_PRECISION = 1_000_000

POST_ONLY = {
    PostOnly.NONE: PostOnlyParams.NONE,
    PostOnly.MUST: PostOnlyParams.MustPostOnly,
    PostOnly.TRY: PostOnlyParams.TryPostOnly,
    PostOnly.SLIDE: PostOnlyParams.Slide,
}
ORDER_TYPE = {
    OrderType.LIMIT: DriftOrderType.Limit,
    OrderType.MARKET: DriftOrderType.Market,
    OrderType.TRIGGER_MARKET: DriftOrderType.TriggerMarket,
    OrderType.TRIGGER_LIMIT: DriftOrderType.TriggerLimit,
}


@dataclass(frozen=True)
class MarketSpec:
    """What rounding needs from a PerpMarket account (integers in venue precision)."""

    market_index: int = 0
    tick: int = 100  # price units (1e-6): 0.0001 USD
    step: int = 1_000_000  # base units (1e-9): 0.001 SOL
    min_size: int = 1_000_000
    name: str = "SOL-PERP"

    @classmethod
    def from_perp_market(cls, market: object, name: str) -> MarketSpec:
        amm = market.amm  # type: ignore[attr-defined]
        return cls(
            market_index=int(market.market_index),  # type: ignore[attr-defined]
            tick=max(1, int(amm.order_tick_size)),
            step=max(1, int(amm.order_step_size)),
            min_size=max(1, int(amm.min_order_size)),
            name=name,
        )


def to_base(size: float, spec: MarketSpec) -> int:
    """Size in base units rounded down to the step; refuses a size below the minimum."""
    raw = math.floor(size * BASE_PRECISION / spec.step + 1e-6) * spec.step
    if raw < spec.min_size or raw <= 0:
        raise VenueError(
            f"size {size:g} is below the market minimum {spec.min_size / BASE_PRECISION:g} "
            f"(step {spec.step / BASE_PRECISION:g})"
        )
    return int(raw)


def round_price(price: float, spec: MarketSpec, mode: str) -> int:
    """Price in 1e-6 units on the tick: mode ``down``, ``up`` or ``nearest``."""
    if not (math.isfinite(price) and price > 0):
        raise VenueError(f"invalid price {price!r}")
    units = price * PRICE_PRECISION / spec.tick
    if mode == "down":
        n = math.floor(units + 1e-6)
    elif mode == "up":
        n = math.ceil(units - 1e-6)
    else:
        n = round(units)
    out = int(n) * spec.tick
    if out <= 0:
        raise VenueError(f"price {price:g} rounds to zero on tick {spec.tick / PRICE_PRECISION:g}")
    return out


def limit_price(req_side: str, price: float, spec: MarketSpec) -> int:
    return round_price(price, spec, "down" if req_side == "buy" else "up")


def to_order_params(req: OrderRequest, spec: MarketSpec, user_order_id: int) -> OrderParams:
    """The driftpy ``OrderParams`` for ``req`` (perp market ``spec.market_index``)."""
    if not 1 <= user_order_id <= 255:
        raise VenueError(f"user_order_id must be 1..255, got {user_order_id}")
    if req.type == OrderType.MARKET and req.post_only != PostOnly.NONE:
        raise VenueError("a market order cannot be post-only")
    base = to_base(req.size, spec)
    price = 0
    if req.type in (OrderType.LIMIT, OrderType.TRIGGER_LIMIT):
        assert req.price is not None  # OrderRequest validates
        price = limit_price(req.side, req.price, spec)
    elif req.type == OrderType.MARKET and req.price:
        price = limit_price(req.side, req.price, spec)  # optional worst-price cap
    trigger_price: int | None = None
    condition = OrderTriggerCondition.Above()
    if req.type in (OrderType.TRIGGER_MARKET, OrderType.TRIGGER_LIMIT):
        assert req.trigger_price is not None
        trigger_price = round_price(req.trigger_price, spec, "nearest")
        condition = (
            OrderTriggerCondition.Above()
            if req.trigger_condition == TriggerCondition.ABOVE
            else OrderTriggerCondition.Below()
        )
    return OrderParams(
        order_type=ORDER_TYPE[req.type](),
        market_type=MarketType.Perp(),
        direction=PositionDirection.Long() if req.side == "buy" else PositionDirection.Short(),
        user_order_id=user_order_id,
        base_asset_amount=base,
        price=price,
        market_index=spec.market_index,
        reduce_only=req.reduce_only,
        post_only=POST_ONLY[req.post_only](),
        trigger_price=trigger_price,
        trigger_condition=condition,
    )


def to_modify_params(
    req: OrderRequest,
    spec: MarketSpec,
    *,
    price: float | None = None,
    size: float | None = None,
    trigger_price: float | None = None,
) -> ModifyOrderParams:
    """``ModifyOrderParams`` changing only what is given (others stay ``None`` = unchanged)."""
    mp = ModifyOrderParams()
    if price is not None:
        if req.type not in (OrderType.LIMIT, OrderType.TRIGGER_LIMIT):
            raise VenueError(f"a {req.type} order has no limit price")
        mp.price = limit_price(req.side, price, spec)
    if size is not None:
        mp.base_asset_amount = to_base(size, spec)
    if trigger_price is not None:
        if req.type not in (OrderType.TRIGGER_MARKET, OrderType.TRIGGER_LIMIT):
            raise VenueError(f"a {req.type} order has no trigger price")
        mp.trigger_price = round_price(trigger_price, spec, "nearest")
    return mp


def rounded_request(req: OrderRequest, params: OrderParams, user_order_id: int) -> OrderRequest:
    """``req`` as the venue will hold it (rounded size/prices, the assigned user order id)."""
    import msgspec

    changes: dict[str, object] = {
        "size": params.base_asset_amount / BASE_PRECISION,
        "user_order_id": user_order_id,
    }
    if req.price is not None and params.price:
        changes["price"] = params.price / PRICE_PRECISION
    if params.trigger_price is not None:
        changes["trigger_price"] = params.trigger_price / PRICE_PRECISION
    return msgspec.structs.replace(req, **changes)
