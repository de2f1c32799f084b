"""The liquidation map's data: one position's estimate, price clusters, the map (published on
``onchain:drift:liq_map``), ordering and the 25 bps bucketing. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from core.bus import Topic


class LiqEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One SOL-PERP position's estimate (the ``autotrader liqmap --json`` object)."""

    account: str
    market_index: int
    position_size: float  # signed, base units
    avg_entry_price: float
    est_liq_px: float  # -1 when no liquidation price exists (e.g. fully collateralized)
    collateral_usd: float  # weighted spot collateral (without unrealized PnL)
    leverage: float | None  # |position notional| / (collateral + unrealized PnL); None if that is <= 0
    health: int  # 0..100 as driftpy's get_health: 100·(1 − maintenance requirement / total collateral)
    distance_bps: float | None  # (est_liq_px − oracle) / oracle · 10⁴, signed; None without a liq price
    approximate: bool
    updated_at: int  # ms


class LiqCluster(msgspec.Struct, frozen=True, kw_only=True):
    """Notional (USD at the liquidation price) liquidating in one price bucket."""

    price_lo: float
    price_hi: float
    notional_usd: float
    accounts: int

    @property
    def price_mid(self) -> float:
        return (self.price_lo + self.price_hi) / 2


class LiqMap(msgspec.Struct, frozen=True, kw_only=True):
    """A complete scan (published on ``onchain:drift:liq_map``)."""

    updated_at: int
    slot: int
    market_index: int
    oracle_price: float
    bucket_bps: float
    scanned: int  # accounts fetched
    entries: list[LiqEntry]
    clusters: list[LiqCluster]

    def cluster_prices(self) -> list[float]:
        return [c.price_mid for c in self.clusters]


LIQ_MAP: Topic[LiqMap] = Topic("onchain:drift:liq_map", LiqMap)


def sort_entries(entries: Sequence[LiqEntry]) -> list[LiqEntry]:
    return sorted(entries, key=lambda e: math.inf if e.distance_bps is None else abs(e.distance_bps))


def clusters(entries: Sequence[LiqEntry], oracle_price: float, bucket_bps: float = 25.0) -> list[LiqCluster]:
    """Notional per ``bucket_bps`` price bucket of the liquidation prices (buckets anchored at
    the oracle price), largest first."""
    if oracle_price <= 0 or bucket_bps <= 0:
        return []
    width = oracle_price * bucket_bps / 1e4
    acc: dict[int, list[float]] = {}
    for e in entries:
        if e.est_liq_px <= 0 or not math.isfinite(e.est_liq_px):
            continue
        k = math.floor((e.est_liq_px - oracle_price) / width)
        slot = acc.setdefault(k, [0.0, 0.0])
        slot[0] += abs(e.position_size) * e.est_liq_px
        slot[1] += 1
    out = [
        LiqCluster(price_lo=oracle_price + k * width, price_hi=oracle_price + (k + 1) * width,
                   notional_usd=v[0], accounts=int(v[1]))
        for k, v in acc.items()
    ]
    return sorted(out, key=lambda c: -c.notional_usd)


def entry_json(e: LiqEntry) -> dict[str, object]:
    """The CLI/JSON object (the ARCHITECTURE.md ``liqmap --json`` keys)."""
    raw: dict[str, object] = msgspec.to_builtins(e)
    return raw
