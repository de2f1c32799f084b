"""Drift liquidation map: fixed-offset decode of User accounts and the liquidation-price solve.

Pure (no I/O). The scanner (``feeds.drift``) hands raw User bytes and the market parameters it
decoded once per scan (:class:`MarketParams`); this module does the per-account work, fast.

Layout (driftpy's bundled IDL, checked by encoding accounts with driftpy's coder in the tests):
User is 4376 bytes with the 8-byte discriminator; ``spot_positions`` at 104 (8 × 40 bytes),
``perp_positions`` at 424 (8 × 96 bytes), ``status`` at 4348, ``idle`` at 4350, ``margin_mode`` at
4355. PerpPosition bytes 88..91 are ``padding [u8; 2]`` + ``max_margin_ratio u16`` (driftpy
0.8.89's ``decode_user`` still reads them as an i32).

Model (maintenance margin, as driftpy's ``DriftUser.get_perp_liq_price`` computes it): with C the
weighted spot collateral, U the unrealized PnL (positive PnL weighted by the market's
``unrealized_pnl_maintenance_asset_weight``, funding included), q the signed base, P the oracle
price and mr the maintenance margin ratio (``margin_ratio_maintenance`` raised by the size premium
``imf_factor``), free collateral FC = C + U − mr·|q|·P and, linear in the price,
``C + q·(p − avg) = mr·|q|·p`` ⇒ ``p = P − FC / (q − mr·|q|)``. FC ≤ 0 (liquidatable now) gives
``p = P``. Spot balances in every priced market (deposits and borrows, USDC or not) are valued
as driftpy does. Cases the model does not value exactly are flagged ``approximate``: other open
perp positions, LP shares, balances in unpriced spot markets, open spot orders, high-leverage
margin mode (docs/LIQMAP.md).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from core.liqmap_map import LIQ_MAP, LiqCluster, LiqEntry, LiqMap, clusters, entry_json, sort_entries

__all__ = [  # the map types live in core.liqmap_map; re-exported for callers of this module
    "LIQ_MAP", "LiqCluster", "LiqEntry", "LiqMap", "MarketParams", "SpotParams", "build_map", "clusters",
    "entry_json", "estimate", "scan", "sort_entries",
]

USER_SIZE = 4376
SPOT_OFFSET = 104
SPOT_SIZE = 40
PERP_OFFSET = 424
PERP_SIZE = 96
N_POSITIONS = 8
STATUS_OFFSET = 4348
IDLE_OFFSET = 4350
MARGIN_MODE_OFFSET = 4355
#: sha256("account:User")[:8], the Anchor discriminator of Drift's User account
USER_DISCRIMINATOR = bytes.fromhex("9f755fe3ef973aec")

BASE_PRECISION = 1_000_000_000
PRICE_PRECISION = 1_000_000
QUOTE_PRECISION = 1_000_000
MARGIN_PRECISION = 10_000
FUNDING_RATE_BUFFER = 1_000
OPEN_ORDER_MARGIN_REQUIREMENT = QUOTE_PRECISION / 100
BEING_LIQUIDATED, BANKRUPT = 1, 2

# one PerpPosition: funding, base, quote, break-even, entry, bids, asks, settled, lp, 2×lp-per,
# [2 padding], max_margin_ratio, market_index, open_orders, per_lp_base
_PERP = struct.Struct("<qqqqqqqqQqq2xHHBb")
_SPOT = struct.Struct("<QqqqHBB4x")  # scaled_balance, bids, asks, cumulative deposits, index, type, orders
_PERP_BLOCK = struct.Struct("<" + _PERP.format[1:] * N_POSITIONS)
_SPOT_BLOCK = struct.Struct("<" + _SPOT.format[1:] * N_POSITIONS)
_PERP_FIELDS = 15
_SPOT_FIELDS = 7
_ZERO8 = bytes(8)
_ZERO_SPOT = bytes(SPOT_SIZE)


@dataclass(frozen=True)
class SpotParams:
    """A spot market as the collateral valuation needs it (price 1e6, weights 1e4)."""

    market_index: int
    price: int
    decimals: int = 6
    cumulative_deposit_interest: int = 10_000_000_000
    cumulative_borrow_interest: int = 10_000_000_000
    maintenance_asset_weight: int = MARGIN_PRECISION
    maintenance_liability_weight: int = MARGIN_PRECISION
    imf_factor: int = 0
    sister: bool = False  # same oracle as the perp market: its balance moves with the perp price


@dataclass(frozen=True)
class MarketParams:
    """What the solve needs of the perp market, the spot markets and their oracles (Drift's
    integer precisions: prices 1e6, weights and ratios 1e4, funding 1e9). ``spot`` must hold the
    quote market; balances in spot markets missing from it make an entry approximate."""

    market_index: int
    oracle_price: int
    margin_ratio_maintenance: int
    imf_factor: int = 0
    unrealized_pnl_maintenance_asset_weight: int = MARGIN_PRECISION
    cumulative_funding_rate_long: int = 0
    cumulative_funding_rate_short: int = 0
    high_leverage_margin_ratio_maintenance: int = 0
    settlement_price: int | None = None  # market in Settlement: valued at the expiry price, mr 0
    quote_market_index: int = 0
    spot: Mapping[int, SpotParams] = field(default_factory=lambda: {0: SpotParams(0, PRICE_PRECISION)})

    @property
    def quote_price(self) -> int:
        q = self.spot.get(self.quote_market_index)
        return q.price if q is not None else PRICE_PRECISION


@dataclass(frozen=True)
class PerpSlot:
    funding_rate: int
    base: int
    quote: int
    quote_entry: int
    open_bids: int
    open_asks: int
    lp_shares: int
    market_index: int
    open_orders: int


@dataclass(frozen=True)
class SpotSlot:
    scaled_balance: int
    market_index: int
    borrow: bool
    open_orders: int
    open_bids: int = 0
    open_asks: int = 0


def is_user_account(raw: bytes) -> bool:
    return len(raw) == USER_SIZE and raw[:8] == USER_DISCRIMINATOR


def perp_slots(raw: bytes) -> list[PerpSlot]:
    """The non-empty perp positions."""
    v = _PERP_BLOCK.unpack_from(raw, PERP_OFFSET)
    out = []
    for i in range(0, N_POSITIONS * _PERP_FIELDS, _PERP_FIELDS):
        f = v[i : i + _PERP_FIELDS]
        if f[1] or f[2] or f[8] or f[13]:
            out.append(PerpSlot(f[0], f[1], f[2], f[4], f[5], f[6], f[8], f[12], f[13]))
    return out


def spot_slots(raw: bytes) -> list[SpotSlot]:
    """The non-empty spot positions."""
    v = _SPOT_BLOCK.unpack_from(raw, SPOT_OFFSET)
    out = []
    for i in range(0, N_POSITIONS * _SPOT_FIELDS, _SPOT_FIELDS):
        f = v[i : i + _SPOT_FIELDS]
        if f[0] or f[6]:
            out.append(SpotSlot(f[0], f[4], f[5] == 1, f[6], f[1], f[2]))
    return out


def has_position(raw: bytes, market_index: int = 0) -> bool:
    """Cheap pre-check: some perp slot of ``market_index`` with a non-zero base."""
    mi = market_index.to_bytes(2, "little")
    for off in range(PERP_OFFSET, PERP_OFFSET + N_POSITIONS * PERP_SIZE, PERP_SIZE):
        if raw[off + 92 : off + 94] == mi and raw[off + 8 : off + 16] != _ZERO8:
            return True
    return False


def size_premium_ratio(base_abs: int, imf_factor: int, ratio: int) -> float:
    """driftpy's ``calculate_size_premium_liability_weight`` (bounded, MARGIN_PRECISION)."""
    return size_premium_ratio_f(base_abs, imf_factor, ratio)


def _size_discount_weight(size: float, imf_factor: int, weight: int) -> float:
    """driftpy's ``calculate_size_discount_asset_weight``."""
    if imf_factor == 0:
        return float(weight)
    size_sqrt = math.ceil((abs(size) * 10) ** 0.5) + 1
    imf_num = 1_000_000 + 1_000_000 / 10
    discount = math.ceil(imf_num * MARGIN_PRECISION / (1_000_000 + size_sqrt * imf_factor / 100_000))
    return float(min(weight, discount))


def _funding_pnl(p: PerpSlot, m: MarketParams) -> float:
    if p.base == 0:
        return 0.0
    cum = m.cumulative_funding_rate_long if p.base > 0 else m.cumulative_funding_rate_short
    return -((cum - p.funding_rate) * p.base / BASE_PRECISION / FUNDING_RATE_BUFFER)


def _liability_weight(tokens: int, sp: SpotParams) -> float:
    size = abs(tokens) * BASE_PRECISION / 10**sp.decimals
    return size_premium_ratio_f(size, sp.imf_factor, sp.maintenance_liability_weight)


def _asset_weight(tokens: int, sp: SpotParams) -> float:
    return _size_discount_weight(tokens * BASE_PRECISION / 10**sp.decimals, sp.imf_factor,
                                 sp.maintenance_asset_weight)


@dataclass
class _Spot:
    assets: float = 0.0
    liabilities: float = 0.0
    sister_delta: float = 0.0  # free-collateral change per 1 USD of the perp price (quote units)
    collateral: float = 0.0  # weighted deposits − weighted borrows
    approximate: bool = False


def _spot(raw: bytes, m: MarketParams) -> _Spot:
    """Maintenance-weighted spot assets and liabilities, as driftpy's
    ``get_spot_market_asset_and_liability_value`` (open orders included)."""
    out = _Spot()
    net_quote = 0.0
    for s in spot_slots(raw):
        sp = m.spot.get(s.market_index)
        if sp is None:
            out.approximate = True  # a market we have no price for: not valued
            continue
        prec = 10 ** (19 - sp.decimals)
        if s.borrow:
            tokens = -(-(s.scaled_balance * sp.cumulative_borrow_interest) // prec)
            signed = -tokens
        else:
            tokens = int(s.scaled_balance * sp.cumulative_deposit_interest / prec)
            signed = tokens
        value = signed * sp.price // 10**sp.decimals
        if s.open_bids or s.open_asks:
            out.approximate = True  # open spot orders: worst-case fill not simulated
        if s.borrow:
            weighted = abs((value * _liability_weight(signed, sp)) // MARGIN_PRECISION)
            if s.market_index == m.quote_market_index:
                net_quote -= weighted
            else:
                out.liabilities += weighted
        else:
            weighted = (value * _asset_weight(signed, sp)) // MARGIN_PRECISION
            if s.market_index == m.quote_market_index:
                net_quote += weighted
            else:
                out.assets += weighted
        if s.market_index != m.quote_market_index:
            out.liabilities += s.open_orders * OPEN_ORDER_MARGIN_REQUIREMENT
        if sp.sister and signed:
            if signed > 0:
                w = (QUOTE_PRECISION * _asset_weight(signed, sp)) // MARGIN_PRECISION
            else:
                w = (-QUOTE_PRECISION * _liability_weight(signed, sp)) // MARGIN_PRECISION
            out.sister_delta += w * abs(signed) // 10**sp.decimals
    if net_quote > 0:
        out.assets += net_quote
    else:
        out.liabilities += abs(net_quote)
    out.collateral = out.assets - out.liabilities
    return out


def size_premium_ratio_f(size: float, imf_factor: int, ratio: int) -> float:
    if imf_factor == 0:
        return float(ratio)
    sqrt = (abs(size) * 10 + 1) ** 0.5
    premium = (ratio - ratio // 5) + (sqrt * imf_factor) // (100_000 * 1_000_000 // MARGIN_PRECISION)
    return float(max(ratio, premium))


def estimate(raw: bytes, account: str, m: MarketParams, updated_at: int) -> LiqEntry | None:
    """The liquidation estimate of the account's ``m.market_index`` position, or None when it
    has none (base 0). Mirrors driftpy's ``get_perp_liq_price`` (maintenance margin)."""
    perps = perp_slots(raw)
    pos = next((p for p in perps if p.market_index == m.market_index and p.base != 0), None)
    if pos is None:
        return None
    price = m.settlement_price if m.settlement_price is not None else m.oracle_price
    qp = m.quote_price
    spot = _spot(raw, m)
    approximate = spot.approximate or pos.lp_shares != 0
    # ---- unrealized PnL: this position, plus flat positions' unsettled PnL (quote only)
    upnl = 0.0
    for p in perps:
        if p is not pos and (p.base != 0 or p.lp_shares or p.open_orders):
            approximate = True  # another open perp position: neither its PnL nor its margin modelled
            continue
        pnl: float = p.quote
        if p.base != 0:
            base_value = abs(p.base) * price // BASE_PRECISION
            pnl += (base_value if p.base > 0 else -base_value) + _funding_pnl(p, m)
        pnl = (pnl * qp) // PRICE_PRECISION
        if pnl > 0:
            pnl = (pnl * m.unrealized_pnl_maintenance_asset_weight) // MARGIN_PRECISION
        upnl += pnl
    # ---- maintenance requirement (the worst case of open orders, as driftpy)
    base_ratio = m.margin_ratio_maintenance
    if raw[MARGIN_MODE_OFFSET] != 0:
        approximate = True  # high-leverage mode: driftpy and the program differ; we use the program's
        if m.high_leverage_margin_ratio_maintenance > 0:
            base_ratio = m.high_leverage_margin_ratio_maintenance
    settled = m.settlement_price is not None

    def ratio(size: int) -> float:
        return 0.0 if settled else size_premium_ratio(size, m.imf_factor, base_ratio)

    bids, asks = pos.base + pos.open_bids, pos.base + pos.open_asks
    worst = asks if abs(asks) >= abs(bids) else bids
    worst_value = abs(worst) * price // BASE_PRECISION
    requirement = ((worst_value * qp) // PRICE_PRECISION) * ratio(abs(worst)) // MARGIN_PRECISION
    requirement += pos.open_orders * OPEN_ORDER_MARGIN_REQUIREMENT + spot.liabilities
    total = spot.assets + upnl
    free = max(0.0, total - requirement)
    # ---- solve FC(p) = 0, linear: Δ = (1 − mr)·q (long) or −(1 + mr)·|q| (short), per USD
    mr_q = ratio(abs(pos.base)) * QUOTE_PRECISION // MARGIN_PRECISION
    if pos.base > 0:
        delta = (QUOTE_PRECISION - mr_q) * pos.base // BASE_PRECISION
    else:
        delta = (-QUOTE_PRECISION - mr_q) * abs(pos.base) // BASE_PRECISION
    delta += spot.sister_delta
    if delta == 0:
        liq = -1.0
    else:
        liq_i = price - (free * QUOTE_PRECISION) // delta
        liq = -1.0 if liq_i < 0 else liq_i / PRICE_PRECISION
    if raw[STATUS_OFFSET] & (BEING_LIQUIDATED | BANKRUPT):
        health = 0
    elif requirement == 0 and total >= 0:
        health = 100
    elif total <= 0:
        health = 0
    else:
        health = round(min(100.0, max(0.0, (1 - requirement / total) * 100)))
    oracle = price / PRICE_PRECISION
    notional = abs(pos.base) / BASE_PRECISION * oracle
    equity = (spot.collateral + upnl) / QUOTE_PRECISION
    return LiqEntry(
        account=account,
        market_index=m.market_index,
        position_size=pos.base / BASE_PRECISION,
        avg_entry_price=abs(pos.quote_entry / pos.base) * 1000.0,
        est_liq_px=liq,
        collateral_usd=spot.collateral / QUOTE_PRECISION,
        leverage=notional / equity if equity > 0 else None,
        health=health,
        distance_bps=(liq - oracle) / oracle * 1e4 if liq > 0 and oracle > 0 else None,
        approximate=approximate,
        updated_at=updated_at,
    )


def scan(
    accounts: Iterable[tuple[str, bytes]], m: MarketParams, updated_at: int
) -> tuple[list[LiqEntry], int]:
    """Estimates for every account with a position in ``m.market_index`` (others skipped fast);
    returns (entries sorted by |distance_bps|, accounts seen)."""
    out: list[LiqEntry] = []
    seen = 0
    mi = m.market_index
    for key, raw in accounts:
        seen += 1
        if len(raw) != USER_SIZE or not has_position(raw, mi):
            continue
        e = estimate(raw, key, m, updated_at)
        if e is not None:
            out.append(e)
    return sort_entries(out), seen


def build_map(
    entries: Sequence[LiqEntry], m: MarketParams, updated_at: int, slot: int, scanned: int,
    bucket_bps: float = 25.0,
) -> LiqMap:
    oracle = m.oracle_price / PRICE_PRECISION
    ordered = sort_entries(entries)
    return LiqMap(
        updated_at=updated_at, slot=slot, market_index=m.market_index, oracle_price=oracle,
        bucket_bps=bucket_bps, scanned=scanned, entries=ordered,
        clusters=clusters(ordered, oracle, bucket_bps),
    )
