"""Velocity User accounts for the liquidation map (:mod:`core.liqmap`): pure.

The map's solver reads User accounts at Drift's fixed offsets (4376 bytes). A Velocity User
(4496 bytes, IDL 2.165.0) holds the same spot positions at the same offset (8 × 40 bytes at 104)
and 80-byte perp positions at 424 (Drift's are 96: no LP fields); :func:`to_drift_layout` writes
the fields the solver reads where it reads them (perp funding, base, quote, break-even, entry,
bids, asks, settled, max margin ratio, market index, open orders; status and idle), so the whole
model (maintenance margin with the size premium, funding, spot collateral and borrows, open-order
worst case) runs unchanged. Offsets come from the IDL (:meth:`IdlCodec.field_offsets`): a new
layout is a data change. An isolated perp position (``position_flag`` set: its collateral is
held apart) is marked for the solver's ``approximate`` path (as Drift's LP shares are).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from core.liqmap import (
    IDLE_OFFSET,
    N_POSITIONS,
    PERP_OFFSET,
    PERP_SIZE,
    SPOT_OFFSET,
    SPOT_SIZE,
    STATUS_OFFSET,
    USER_SIZE,
    MarketParams,
    SpotParams,
)
from execution.velocity.program import codec

_USER = codec().field_offsets("User")
_PERP = codec().field_offsets("PerpPosition")
V_USER_SIZE = codec().account_size("User")
V_SPOT_OFFSET = 8 + _USER["spot_positions"]
V_PERP_OFFSET = 8 + _USER["perp_positions"]
V_PERP_SIZE = codec().fixed_size({"defined": {"name": "PerpPosition"}}) or 0
V_STATUS_OFFSET = 8 + _USER["status"]
V_IDLE_OFFSET = 8 + _USER["idle"]
USER_DISCRIMINATOR = bytes(codec().accounts["User"]["discriminator"])

_V_PERP = struct.Struct("<8q8x2xHHBB")  # 8 × i64, isolated balance, padding, mmr, index, orders, flag
_D_PERP = struct.Struct(
    "<8qQqq2xHHBb"
)  # Drift: 8 × i64, lp shares, 2 × lp-per, pad, mmr, index, orders, per-lp
assert _V_PERP.size == V_PERP_SIZE and _D_PERP.size == PERP_SIZE
assert _PERP["max_margin_ratio"] == 74 and _PERP["position_flag"] == 79 and SPOT_SIZE == 40


def user_filters() -> list[tuple[int, bytes]]:
    """(offset, bytes) memcmp filters for non-idle Velocity Users (plus dataSize)."""
    return [(0, USER_DISCRIMINATOR), (V_IDLE_OFFSET, b"\x00")]


def to_drift_layout(raw: bytes) -> bytes:
    """A Velocity User's bytes at the offsets :mod:`core.liqmap` reads (see the module docstring)."""
    if len(raw) != V_USER_SIZE or raw[:8] != USER_DISCRIMINATOR:
        raise ValueError(f"not a Velocity User account ({len(raw)} bytes)")
    out = bytearray(USER_SIZE)
    out[:V_SPOT_OFFSET] = raw[:V_SPOT_OFFSET]
    out[SPOT_OFFSET : SPOT_OFFSET + N_POSITIONS * SPOT_SIZE] = raw[
        V_SPOT_OFFSET : V_SPOT_OFFSET + N_POSITIONS * 40
    ]
    for i in range(N_POSITIONS):
        f = _V_PERP.unpack_from(raw, V_PERP_OFFSET + i * V_PERP_SIZE)
        isolated = 1 if f[11] else 0  # read as "LP shares" by the solver: approximate
        _D_PERP.pack_into(out, PERP_OFFSET + i * PERP_SIZE, *f[:8], isolated, 0, 0, f[8], f[9], f[10], 0)
    out[STATUS_OFFSET] = raw[V_STATUS_OFFSET]
    out[IDLE_OFFSET] = raw[V_IDLE_OFFSET]
    return bytes(out)


def spot_params(sm: dict[str, Any], price: int, perp_oracle: Any) -> SpotParams:
    return SpotParams(
        market_index=int(sm["market_index"]),
        price=price,
        decimals=int(sm["decimals"]),
        cumulative_deposit_interest=int(sm["cumulative_deposit_interest"]),
        cumulative_borrow_interest=int(sm["cumulative_borrow_interest"]),
        maintenance_asset_weight=int(sm["maintenance_asset_weight"]),
        maintenance_liability_weight=int(sm["maintenance_liability_weight"]),
        imf_factor=int(sm["imf_factor"]),
        sister=sm["oracle"] == perp_oracle,
    )


def market_params(
    perp: dict[str, Any], perp_price: int, spots: Sequence[tuple[dict[str, Any], int]]
) -> MarketParams:
    """``perp`` a decoded Velocity PerpMarket, ``spots`` decoded SpotMarkets with their prices."""
    return MarketParams(
        market_index=int(perp["market_index"]),
        oracle_price=perp_price,
        margin_ratio_maintenance=int(perp["margin_ratio_maintenance"]),
        imf_factor=int(perp["imf_factor"]),
        unrealized_pnl_maintenance_asset_weight=int(perp["unrealized_pnl_maintenance_asset_weight"]),
        cumulative_funding_rate_long=int(perp["cumulative_funding_rate_long"]),
        cumulative_funding_rate_short=int(perp["cumulative_funding_rate_short"]),
        settlement_price=int(perp["expiry_price"]) if perp["status"] == "Settlement" else None,
        quote_market_index=int(perp["quote_spot_market_index"]),
        spot={int(sm["market_index"]): spot_params(sm, px, perp["oracle"]) for sm, px in spots},
    )
