"""Manual signing: build an order's transaction, summarize it for a human, sign (local key or
Ledger), send and track it like any order (through :class:`DriftVenue`)."""

from __future__ import annotations

from dataclasses import dataclass

from core.venue import OrderRequest, OrderType
from execution.drift.orders import BASE_PRECISION, PRICE_PRECISION, rounded_request, to_order_params
from execution.drift.venue import DriftVenue

LAMPORTS_PER_SIGNATURE = 5_000


@dataclass(frozen=True)
class OrderSummary:
    market: str
    side: str
    type: str
    size: float
    price: float | None
    trigger_price: float | None
    trigger_condition: str | None
    post_only: str
    reduce_only: bool
    user_order_id: int
    signer: str
    authority: str
    cu_price: int
    cu_limit: int
    network_fee_sol: float
    trading_fee_usd: float  # + taker fee / - maker rebate at the limit price (estimate)

    def text(self) -> str:
        px = f"{self.price:.4f}" if self.price else "market"
        lines = [
            f"market {self.market}  {self.side.upper()} {self.size:g} @ {px}  "
            f"({self.type}, post-only {self.post_only}"
            f"{', reduce-only' if self.reduce_only else ''})",
        ]
        if self.trigger_price:
            lines.append(f"trigger: {self.trigger_condition} {self.trigger_price:.4f}")
        lines.append(f"account authority {self.authority}; signed by {self.signer}")
        lines.append(
            f"fees: network ≤ {self.network_fee_sol:.6f} SOL (priority {self.cu_price} µlamports/CU × "
            f"{self.cu_limit} CU), trading ≈ {self.trading_fee_usd:+.4f} USD"
        )
        return "\n".join(lines)


async def summarize(venue: DriftVenue, req: OrderRequest) -> OrderSummary:
    """What would be signed for ``req`` (prices and sizes as the venue will round them)."""
    chain = venue.chain
    spec = chain.market_spec()
    params = to_order_params(req, spec, 1)
    r = rounded_request(req, params, 1)
    cu_price = await venue.builder.priority_fee([chain.user_pubkey, chain.perp_market_pubkey])
    limit = venue.builder.compute_unit_limit
    taker, rebate = chain.fee_rates()
    px = (params.price or params.trigger_price or 0) / PRICE_PRECISION
    notional = params.base_asset_amount / BASE_PRECISION * px
    maker = req.type == OrderType.LIMIT and req.post_only != "none"
    fee = -rebate * notional if maker else taker * notional
    net = (LAMPORTS_PER_SIGNATURE + cu_price * limit / 1_000_000) / 1e9
    return OrderSummary(
        market=req.market,
        side=req.side,
        type=str(req.type),
        size=r.size,
        price=r.price,
        trigger_price=r.trigger_price,
        trigger_condition=str(req.trigger_condition) if req.trigger_condition else None,
        post_only=str(req.post_only),
        reduce_only=req.reduce_only,
        user_order_id=0,
        signer=str(venue.signer.pubkey()),
        authority=str(chain.authority),
        cu_price=cu_price,
        cu_limit=limit,
        network_fee_sol=net,
        trading_fee_usd=fee,
    )
