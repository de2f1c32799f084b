"""Hand-signed Velocity orders (delegation off): what will be signed, in words, before the owner's
key or Ledger signs it (``autotrader intent --manual`` with ``engine.venue = "velocity"``)."""

from __future__ import annotations

from core.venue import OrderRequest, OrderType
from execution.velocity.orders import BASE_PRECISION, PRICE_PRECISION, order_params, rounded_request
from execution.velocity.venue import VelocityVenue


def summarize(venue: VelocityVenue, req: OrderRequest) -> str:
    """Market, side, size and prices as the venue rounds them, flags, signer and fee estimate."""
    chain = venue.chain
    params = order_params(req, chain.market_spec(), 1)
    r = rounded_request(req, params, 1)
    taker, rebate = chain.fee_rates()
    px = (params["price"] or params["trigger_price"] or 0) / PRICE_PRECISION
    notional = params["base_asset_amount"] / BASE_PRECISION * px
    maker = req.type == OrderType.LIMIT and req.post_only != "none"
    fee = -rebate * notional if maker else taker * notional
    price = f"{r.price:.4f}" if r.price else "market"
    lines = [
        f"market {req.market}  {req.side.upper()} {r.size:g} @ {price}  ({req.type}, post-only "
        f"{req.post_only}{', reduce-only' if req.reduce_only else ''})"
    ]
    if r.trigger_price:
        lines.append(f"trigger: {req.trigger_condition} {r.trigger_price:.4f}")
    lines.append(f"program {chain.program_id} ({chain.check.summary()})")
    lines.append(f"account authority {chain.authority}; signed by {venue.signer.pubkey()}")
    lines.append(f"fees: trading ≈ {fee:+.4f} USDT")
    return "\n".join(lines)
