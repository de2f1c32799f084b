"""OrderRequest -> Velocity ``OrderParams`` / ``ModifyOrderParams`` (the IDL's values) in venue
precision: base 1e9, price 1e6, rounded to the market's ``order_step_size`` / ``order_tick_size``
(read from the PerpMarket account), the minimum ``market_stats.min_order_size``.

Rounding (as the Drift venue does): size down to the step (refused below the minimum); a limit
price away from the touch (buy down, sell up) so a post-only order stays post-only and a
take-profit is never worse than asked; a trigger price to the nearest tick. post-only
none/must/try/slide -> None/MustPostOnly/TryPostOnly/Slide; stops TriggerMarket, take-profits
Limit or TriggerLimit; trigger condition above/below -> Above/Below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec

from core.venue import OrderRequest, OrderType, PostOnly, TriggerCondition, VenueError

BASE_PRECISION = 1_000_000_000
PRICE_PRECISION = 1_000_000

POST_ONLY = {
    PostOnly.NONE: "None",
    PostOnly.MUST: "MustPostOnly",
    PostOnly.TRY: "TryPostOnly",
    PostOnly.SLIDE: "Slide",
}
ORDER_TYPE = {
    OrderType.LIMIT: "Limit",
    OrderType.MARKET: "Market",
    OrderType.TRIGGER_MARKET: "TriggerMarket",
    OrderType.TRIGGER_LIMIT: "TriggerLimit",
}


@dataclass(frozen=True)
class MarketSpec:
    market_index: int
    tick: int
    step: int
    min_size: int
    name: str


def to_base(size: float, spec: MarketSpec) -> int:
    raw = math.floor(size * BASE_PRECISION / spec.step + 1e-6) * spec.step
    if raw < spec.min_size or raw <= 0:
        raise VenueError(
            f"size {size:g} is below the market minimum {spec.min_size / BASE_PRECISION:g} "
            f"(step {spec.step / BASE_PRECISION:g})"
        )
    return int(raw)


def round_price(price: float, spec: MarketSpec, mode: str) -> int:
    if not (math.isfinite(price) and price > 0):
        raise VenueError(f"invalid price {price!r}")
    units = price * PRICE_PRECISION / spec.tick
    n = (
        math.floor(units + 1e-6)
        if mode == "down"
        else math.ceil(units - 1e-6)
        if mode == "up"
        else round(units)
    )
    out = int(n) * spec.tick
    if out <= 0:
        raise VenueError(f"price {price:g} rounds to zero on tick {spec.tick / PRICE_PRECISION:g}")
    return out


def _limit(side: str, price: float, spec: MarketSpec) -> int:
    return round_price(price, spec, "down" if side == "buy" else "up")


def order_params(req: OrderRequest, spec: MarketSpec, user_order_id: int) -> dict[str, Any]:
    """The IDL ``OrderParams`` value for ``req`` (perp market ``spec.market_index``)."""
    if not 1 <= user_order_id <= 255:
        raise VenueError(f"user_order_id must be 1..255, got {user_order_id}")
    if req.type == OrderType.MARKET and req.post_only != PostOnly.NONE:
        raise VenueError("a market order cannot be post-only")
    price = 0
    if req.type in (OrderType.LIMIT, OrderType.TRIGGER_LIMIT) or (req.type == OrderType.MARKET and req.price):
        assert req.price is not None
        price = _limit(req.side, req.price, spec)
    trigger: int | None = None
    condition = "Above"
    if req.type in (OrderType.TRIGGER_MARKET, OrderType.TRIGGER_LIMIT):
        assert req.trigger_price is not None
        trigger = round_price(req.trigger_price, spec, "nearest")
        condition = "Above" if req.trigger_condition == TriggerCondition.ABOVE else "Below"
    return {
        "order_type": ORDER_TYPE[req.type],
        "market_type": "Perp",
        "direction": "Long" if req.side == "buy" else "Short",
        "user_order_id": user_order_id,
        "base_asset_amount": to_base(req.size, spec),
        "price": price,
        "market_index": spec.market_index,
        "reduce_only": req.reduce_only,
        "post_only": POST_ONLY[req.post_only],
        "bit_flags": 0,
        "max_ts": None,
        "trigger_price": trigger,
        "trigger_condition": condition,
        "oracle_price_offset": None,
        "auction_duration": None,
        "auction_start_price": None,
        "auction_end_price": None,
        "builder_idx": None,
        "builder_fee_tenth_bps": None,
    }


def modify_params(
    req: OrderRequest,
    spec: MarketSpec,
    *,
    price: float | None = None,
    size: float | None = None,
    trigger_price: float | None = None,
) -> dict[str, Any]:
    """``ModifyOrderParams`` changing only what is given (``None`` = unchanged)."""
    mp: dict[str, Any] = {
        k: None
        for k in (
            "direction",
            "base_asset_amount",
            "price",
            "reduce_only",
            "post_only",
            "bit_flags",
            "max_ts",
            "trigger_price",
            "trigger_condition",
            "oracle_price_offset",
            "auction_duration",
            "auction_start_price",
            "auction_end_price",
            "policy",
        )
    }
    if price is not None:
        if req.type not in (OrderType.LIMIT, OrderType.TRIGGER_LIMIT):
            raise VenueError(f"a {req.type} order has no limit price")
        mp["price"] = _limit(req.side, price, spec)
    if size is not None:
        mp["base_asset_amount"] = to_base(size, spec)
    if trigger_price is not None:
        if req.type not in (OrderType.TRIGGER_MARKET, OrderType.TRIGGER_LIMIT):
            raise VenueError(f"a {req.type} order has no trigger price")
        mp["trigger_price"] = round_price(trigger_price, spec, "nearest")
    return mp


def rounded_request(req: OrderRequest, params: dict[str, Any], user_order_id: int) -> OrderRequest:
    """``req`` as the venue will hold it (rounded size and prices, the assigned user order id)."""
    changes: dict[str, object] = {
        "size": params["base_asset_amount"] / BASE_PRECISION,
        "user_order_id": user_order_id,
    }
    if req.price is not None and params["price"]:
        changes["price"] = params["price"] / PRICE_PRECISION
    if params["trigger_price"] is not None:
        changes["trigger_price"] = params["trigger_price"] / PRICE_PRECISION
    return msgspec.structs.replace(req, **changes)
