"""Perp/spot market accounts and their oracles → :class:`core.liqmap.MarketParams`.

Decoded once per scan with driftpy's IDL coder (a handful of accounts); the per-user work is
the fixed-offset decode in :mod:`core.liqmap`. Oracles are decoded with driftpy's
``decode_oracle`` (Pyth pull/lazer, Switchboard, Prelaunch); ``QuoteAsset`` is 1.0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import driftpy
from anchorpy.coder.coder import Coder
from anchorpy_core.idl import Idl
from driftpy.accounts.oracle import decode_oracle

from core.liqmap import PRICE_PRECISION, MarketParams, SpotParams

_CODER: Coder | None = None


def coder() -> Coder:
    """anchorpy coder over driftpy's bundled IDL (built once)."""
    global _CODER
    if _CODER is None:
        path = Path(str(next(iter(driftpy.__path__)))) / "idl" / "drift.json"
        _CODER = Coder(Idl.from_json(path.read_text()))
    return _CODER


def discriminator(name: str) -> bytes:
    return bytes(coder().accounts.acc_name_to_discriminator[name])


def decode(raw: bytes) -> Any:
    return coder().accounts.decode(raw)


def variant(v: Any) -> str:
    return type(v).__name__


def oracle_price(raw: bytes | None, source: Any) -> int:
    """The oracle's price (PRICE_PRECISION); raises ValueError if it cannot be read."""
    if variant(source) == "QuoteAsset":
        return PRICE_PRECISION
    if raw is None:
        raise ValueError(f"oracle account missing ({variant(source)})")
    try:
        price = int(decode_oracle(raw, source).price)
    except Exception as e:  # driftpy raises assorted errors on foreign bytes
        raise ValueError(f"cannot decode {variant(source)} oracle: {e}") from e
    if price <= 0:
        raise ValueError(f"{variant(source)} oracle price {price} is not positive")
    return price


def spot_params(sm: Any, price: int, perp_oracle: Any) -> SpotParams:
    return SpotParams(
        market_index=int(sm.market_index),
        price=price,
        decimals=int(sm.decimals),
        cumulative_deposit_interest=int(sm.cumulative_deposit_interest),
        cumulative_borrow_interest=int(sm.cumulative_borrow_interest),
        maintenance_asset_weight=int(sm.maintenance_asset_weight),
        maintenance_liability_weight=int(sm.maintenance_liability_weight),
        imf_factor=int(sm.imf_factor),
        sister=sm.oracle == perp_oracle,
    )


def market_params(perp: Any, perp_price: int, spots: Sequence[tuple[Any, int]]) -> MarketParams:
    """``perp`` a decoded PerpMarket, ``spots`` decoded SpotMarkets with their oracle prices."""
    amm = perp.amm
    settled = variant(perp.status) == "Settlement"
    spot: Mapping[int, SpotParams] = {
        int(sm.market_index): spot_params(sm, price, amm.oracle) for sm, price in spots
    }
    return MarketParams(
        market_index=int(perp.market_index),
        oracle_price=perp_price,
        margin_ratio_maintenance=int(perp.margin_ratio_maintenance),
        imf_factor=int(perp.imf_factor),
        unrealized_pnl_maintenance_asset_weight=int(perp.unrealized_pnl_maintenance_asset_weight),
        cumulative_funding_rate_long=int(amm.cumulative_funding_rate_long),
        cumulative_funding_rate_short=int(amm.cumulative_funding_rate_short),
        high_leverage_margin_ratio_maintenance=int(perp.high_leverage_margin_ratio_maintenance),
        settlement_price=int(perp.expiry_price) if settled else None,
        quote_market_index=int(perp.quote_spot_market_index),
        spot=spot,
    )
