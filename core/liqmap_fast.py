"""Vectorized (numpy) :func:`core.liqmap.estimate` over many User accounts at once.

The accounts are one contiguous buffer of N × 4376 bytes, viewed (no copy) through a structured
dtype at the IDL offsets of :mod:`core.liqmap`. The arithmetic is the scalar model's, in float64
with the same floors (amounts up to 1e21 in Drift precision lose nothing that matters at 0.25%);
the tests hold it to :func:`core.liqmap.estimate` on the same bytes. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from core.liqmap import (
    BANKRUPT,
    BASE_PRECISION,
    BEING_LIQUIDATED,
    MARGIN_MODE_OFFSET,
    MARGIN_PRECISION,
    OPEN_ORDER_MARGIN_REQUIREMENT,
    PERP_OFFSET,
    PRICE_PRECISION,
    QUOTE_PRECISION,
    SPOT_OFFSET,
    STATUS_OFFSET,
    USER_SIZE,
    LiqEntry,
    MarketParams,
    sort_entries,
)

F = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

PERP_DTYPE = np.dtype({
    "names": ["funding", "base", "quote", "entry", "bids", "asks", "lp", "market_index", "open_orders"],
    "formats": ["<i8", "<i8", "<i8", "<i8", "<i8", "<i8", "<u8", "<u2", "u1"],
    "offsets": [0, 8, 16, 32, 40, 48, 64, 92, 94],
    "itemsize": 96,
})
SPOT_DTYPE = np.dtype({
    "names": ["scaled", "bids", "asks", "market_index", "balance_type", "open_orders"],
    "formats": ["<u8", "<i8", "<i8", "<u2", "u1", "u1"],
    "offsets": [0, 8, 16, 32, 34, 35],
    "itemsize": 40,
})
USER_DTYPE = np.dtype({
    "names": ["spot", "perp", "status", "margin_mode"],
    "formats": [(SPOT_DTYPE, (8,)), (PERP_DTYPE, (8,)), "u1", "u1"],
    "offsets": [SPOT_OFFSET, PERP_OFFSET, STATUS_OFFSET, MARGIN_MODE_OFFSET],
    "itemsize": USER_SIZE,
})


def view(buf: bytes | bytearray | memoryview) -> npt.NDArray[Any]:
    """The accounts in ``buf`` (a multiple of 4376 bytes) as a structured array, zero-copy."""
    if len(buf) % USER_SIZE:
        raise ValueError(f"buffer of {len(buf)} bytes is not a whole number of {USER_SIZE}-byte accounts")
    return np.frombuffer(buf, dtype=USER_DTYPE)


def _premium(size: F, imf: F | float, ratio: F | float) -> F:
    """Bounded size-premium ratio (driftpy's calculate_size_premium_liability_weight)."""
    r = np.asarray(ratio, dtype=np.float64)
    prem = (r - np.floor(r / 5)) + np.floor(np.sqrt(np.abs(size) * 10 + 1) * imf / 1e7)
    return np.where(np.asarray(imf) == 0, r, np.maximum(r, prem))


def _discount(size: F, imf: F, weight: F) -> F:
    """driftpy's calculate_size_discount_asset_weight."""
    sq = np.ceil(np.sqrt(np.abs(size) * 10)) + 1
    disc = np.ceil(1_100_000.0 * MARGIN_PRECISION / (1_000_000 + sq * imf / 100_000))
    return np.where(imf == 0, weight, np.minimum(weight, disc))


def _spot(spot: npt.NDArray[Any], m: MarketParams, n: int) -> tuple[F, F, F, B]:
    """(assets, liabilities, sister delta, approximate) per row, as core.liqmap._spot."""
    known = sorted(m.spot)
    table = np.array([[m.spot[k].price, m.spot[k].decimals, m.spot[k].cumulative_deposit_interest,
                       m.spot[k].cumulative_borrow_interest, m.spot[k].maintenance_asset_weight,
                       m.spot[k].maintenance_liability_weight, m.spot[k].imf_factor, float(m.spot[k].sister)]
                      for k in known], dtype=np.float64).reshape(len(known), 8)
    keys = np.array(known, dtype=np.int64)
    assets, liabs, sister, net_quote = (np.zeros(n) for _ in range(4))
    approx = np.zeros(n, dtype=bool)
    for j in range(8):
        s = spot[:, j]
        scaled = s["scaled"].astype(np.float64)
        used = (s["scaled"] != 0) | (s["open_orders"] != 0)
        if not used.any():
            continue
        idx = s["market_index"].astype(np.int64)
        pos = np.clip(np.searchsorted(keys, idx), 0, max(len(known) - 1, 0))
        found = used & (keys[pos] == idx) if len(known) else np.zeros(n, dtype=bool)
        approx |= used & ~found
        approx |= found & ((s["bids"] != 0) | (s["asks"] != 0))
        t = table[pos]
        price, dec, dep_i, bor_i, aw, lw, imf, sis = (t[:, c] for c in range(8))
        p10 = 10.0**dec
        prec = 10.0 ** (19 - dec)
        borrow = s["balance_type"] == 1
        tokens = np.where(borrow, -np.ceil(scaled * bor_i / prec), np.floor(scaled * dep_i / prec))
        value = np.floor(tokens * price / p10)
        size = tokens * BASE_PRECISION / p10
        a_w = _discount(size, imf, aw)
        l_w = _premium(size, imf, lw)
        weighted = np.where(borrow, np.abs(np.floor(value * l_w / MARGIN_PRECISION)),
                            np.floor(value * a_w / MARGIN_PRECISION))
        weighted = np.where(found, weighted, 0.0)
        is_quote = idx == m.quote_market_index
        net_quote += np.where(is_quote, np.where(borrow, -weighted, weighted), 0.0)
        assets += np.where(~is_quote & ~borrow, weighted, 0.0)
        liabs += np.where(~is_quote & borrow, weighted, 0.0)
        liabs += np.where(found & ~is_quote, s["open_orders"] * OPEN_ORDER_MARGIN_REQUIREMENT, 0.0)
        w = np.where(borrow, np.floor(-QUOTE_PRECISION * l_w / MARGIN_PRECISION),
                     np.floor(QUOTE_PRECISION * a_w / MARGIN_PRECISION))
        sister += np.where(found & (sis != 0) & (tokens != 0), np.floor(w * np.abs(tokens) / p10), 0.0)
    assets += np.maximum(net_quote, 0.0)
    liabs += np.maximum(-net_quote, 0.0)
    return assets, liabs, sister, approx


def scan_buffer(
    keys: Sequence[str], buf: bytes | bytearray | memoryview, m: MarketParams, updated_at: int
) -> list[LiqEntry]:
    """:func:`core.liqmap.scan` over a contiguous buffer (``keys[i]`` names account i)."""
    users = view(buf)
    if len(keys) != len(users):
        raise ValueError(f"{len(keys)} keys for {len(users)} accounts")
    perp_all = users["perp"]
    has = (perp_all["market_index"] == m.market_index) & (perp_all["base"] != 0)
    rows = np.flatnonzero(has.any(axis=1))
    n = len(rows)
    if n == 0:
        return []
    # copy just the position bytes of the rows (a plain uint8 gather is a memcpy; gathering the
    # structured fields is several times slower), then view them through the dtypes again
    raw = np.frombuffer(buf, dtype=np.uint8).reshape(len(users), USER_SIZE)
    perp = raw[rows, PERP_OFFSET : PERP_OFFSET + 8 * 96].view(PERP_DTYPE).reshape(n, 8)
    spot_rows = raw[rows, SPOT_OFFSET : SPOT_OFFSET + 8 * 40].view(SPOT_DTYPE).reshape(n, 8)
    status, margin_mode = raw[rows, STATUS_OFFSET], raw[rows, MARGIN_MODE_OFFSET]
    slot = np.argmax(has[rows], axis=1)
    ar = np.arange(n)
    pos = perp[ar, slot]
    price = float(m.settlement_price if m.settlement_price is not None else m.oracle_price)
    qp = float(m.quote_price)
    assets, liabs, sister, approx = _spot(spot_rows, m, n)
    base = pos["base"].astype(np.float64)
    approx |= pos["lp"] != 0
    # ---- unrealized PnL over the slots: the position, flat slots' quote; others flagged
    is_pos = np.zeros((n, 8), dtype=bool)
    is_pos[ar, slot] = True
    other = ~is_pos & ((perp["base"] != 0) | (perp["lp"] != 0) | (perp["open_orders"] != 0))
    approx |= other.any(axis=1)
    quote = perp["quote"].astype(np.float64)
    pb = perp["base"].astype(np.float64)
    cum = np.where(pb > 0, float(m.cumulative_funding_rate_long), float(m.cumulative_funding_rate_short))
    last = perp["funding"].astype(np.float64)
    funding = np.where(pb != 0, -((cum - last) * pb / BASE_PRECISION / 1_000), 0.0)
    base_value = np.floor(np.abs(pb) * price / BASE_PRECISION)
    pnl = quote + np.where(pb != 0, np.sign(pb) * base_value + funding, 0.0)
    pnl = np.floor(pnl * qp / PRICE_PRECISION)
    pnl = np.where(pnl > 0, np.floor(pnl * m.unrealized_pnl_maintenance_asset_weight / MARGIN_PRECISION), pnl)
    upnl = np.where(other, 0.0, pnl).sum(axis=1)
    # ---- maintenance requirement
    hlm = margin_mode != 0
    approx |= hlm
    hl = m.high_leverage_margin_ratio_maintenance
    ratio0 = np.where(hlm & (hl > 0), float(hl), float(m.margin_ratio_maintenance))
    settled = m.settlement_price is not None

    def ratio(size: F) -> F:
        return np.zeros(n) if settled else _premium(size, float(m.imf_factor), ratio0)

    bids = base + pos["bids"]
    asks = base + pos["asks"]
    worst = np.where(np.abs(asks) >= np.abs(bids), asks, bids)
    worst_value = np.floor(np.abs(worst) * price / BASE_PRECISION)
    req = np.floor(np.floor(worst_value * qp / PRICE_PRECISION) * ratio(np.abs(worst)) / MARGIN_PRECISION)
    req += pos["open_orders"] * OPEN_ORDER_MARGIN_REQUIREMENT + liabs
    total = assets + upnl
    free = np.maximum(0.0, total - req)
    mr_q = np.floor(ratio(np.abs(base)) * QUOTE_PRECISION / MARGIN_PRECISION)
    delta = np.where(base > 0, np.floor((QUOTE_PRECISION - mr_q) * base / BASE_PRECISION),
                     np.floor((-QUOTE_PRECISION - mr_q) * np.abs(base) / BASE_PRECISION)) + sister
    with np.errstate(divide="ignore", invalid="ignore"):
        liq_i = price - np.floor(free * QUOTE_PRECISION / delta)
    liq = np.where((delta == 0) | ~(liq_i >= 0), -1.0, liq_i / PRICE_PRECISION)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.round(np.clip((1 - req / total) * 100, 0, 100))
    health = np.where(req == 0, np.where(total >= 0, 100, 0), np.where(total <= 0, 0, h))
    health = np.where((status & (BEING_LIQUIDATED | BANKRUPT)) != 0, 0, health)
    oracle = price / PRICE_PRECISION
    collateral = (assets - liabs) / QUOTE_PRECISION
    equity = collateral + upnl / QUOTE_PRECISION
    notional = np.abs(base) / BASE_PRECISION * oracle
    keys_at = [keys[i] for i in rows.tolist()]
    entry_px = np.abs(pos["entry"] / base) * 1000.0
    out = []
    for k, sz, ep, lq, col, eq, nt, hh, ap in zip(
        keys_at, (base / BASE_PRECISION).tolist(), entry_px.tolist(), liq.tolist(), collateral.tolist(),
        equity.tolist(), notional.tolist(), health.astype(np.int64).tolist(), approx.tolist(), strict=True,
    ):
        out.append(LiqEntry(
            account=k, market_index=m.market_index, position_size=sz, avg_entry_price=ep, est_liq_px=lq,
            collateral_usd=col, leverage=nt / eq if eq > 0 else None, health=hh,
            distance_bps=(lq - oracle) / oracle * 1e4 if lq > 0 and oracle > 0 else None,
            approximate=ap, updated_at=updated_at,
        ))
    return sort_entries(out)
