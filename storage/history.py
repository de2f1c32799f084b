"""Readers for the history views: any stored kind over a time range, OI history, liquidation heatmap.

Reads see every finished day (merged files) and the current day's not-yet-compacted part files,
without double counting (protocol in :mod:`storage.parquet_files`). Rows still in a writer's
memory buffer (at most ``flush_interval_s`` old) are not visible. Ranges are inclusive at both
ends: ``start_ms <= ts <= end_ms``.

The heatmap bucketing is :func:`bucket_liquidations`, a pure function over rows so it can be
tested without files. Price buckets are ``bucket_bps`` wide and relative to ``center_px``: bucket
``k`` covers ``[center·(1 + k·b/10⁴), center·(1 + (k+1)·b/10⁴))``, so bucket 0 starts at the
center, negative buckets are below it. Time buckets are ``time_bucket_min`` wide, counted from
``now - hours``; bucket ``j`` covers ``[start + j·w, start + (j+1)·w)`` (the last one also takes
a row at exactly ``now``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from storage.parquet_files import list_days, read_day
from storage.parquet_schema import HOUR_MS, day_of_ms, schema_of, ts_column

log = logging.getLogger(__name__)

MINUTE_MS = 60_000


def read_kind(root: Path, venue: str, symbol: str, kind: str, start_ms: int, end_ms: int) -> pa.Table:
    """Rows of ``kind`` for one venue/symbol with ``start_ms <= ts <= end_ms``, ordered by time."""
    schema = schema_of(kind)
    col = ts_column(kind)
    kind_dir = Path(root) / venue / symbol / kind
    if end_ms < start_ms or not kind_dir.is_dir():
        return schema.empty_table()
    tables: list[pa.Table] = []
    first, last = day_of_ms(start_ms), day_of_ms(end_ms)
    for day in sorted(d for d in list_days(kind_dir) if first <= d <= last):
        try:
            table, _ = read_day(kind_dir, day, kind)
        except (pa.ArrowException, OSError, KeyError):  # KeyError: a file without the kind's columns
            log.exception("cannot read %s %s", kind_dir, day)
            table = schema.empty_table()
        if table.num_rows:
            ts = table.column(col)
            mask = pc.and_(pc.greater_equal(ts, start_ms), pc.less_equal(ts, end_ms))
            tables.append(table.filter(mask))
    if not tables:
        return schema.empty_table()
    out = pa.concat_tables(tables)
    if out.num_rows:
        out = out.take(pc.sort_indices(out, sort_keys=[(col, "ascending")]))
    return out


def oi_history(
    root: Path, venue: str, symbol: str, now_ms: int, hours: float = 24
) -> list[tuple[int, float]]:
    """``(ts, oi_notional)`` of the last ``hours`` hours, oldest first."""
    table = read_kind(root, venue, symbol, "open_interest", now_ms - int(hours * HOUR_MS), now_ms)
    return list(zip(table.column("ts").to_pylist(), table.column("oi_notional").to_pylist(), strict=True))


@dataclass(frozen=True)
class LiquidationHeatmap:
    """Counts and USD notional per (price bucket, time bucket); grids indexed ``[price][time]``.

    ``price_buckets[i]`` is the bucket index ``k`` of grid row ``i`` (ascending, contiguous);
    :meth:`price_range` gives its bounds. Empty when no liquidation fell in the window.
    """

    center_px: float
    bucket_bps: float
    start_ms: int
    end_ms: int
    time_bucket_ms: int
    n_time_buckets: int
    price_buckets: list[int] = field(default_factory=list)
    counts: list[list[int]] = field(default_factory=list)
    notional: list[list[float]] = field(default_factory=list)
    long_notional: list[list[float]] = field(default_factory=list)
    short_notional: list[list[float]] = field(default_factory=list)
    total_count: int = 0
    total_notional: float = 0.0

    def price_range(self, k: int) -> tuple[float, float]:
        step = self.bucket_bps / 1e4
        return self.center_px * (1 + k * step), self.center_px * (1 + (k + 1) * step)

    def time_range(self, j: int) -> tuple[int, int]:
        lo = self.start_ms + j * self.time_bucket_ms
        return lo, lo + self.time_bucket_ms


def price_bucket(price: float, center_px: float, bucket_bps: float) -> int:
    """Index of the ``bucket_bps``-wide bucket (relative to ``center_px``) containing ``price``."""
    if center_px <= 0 or bucket_bps <= 0:
        raise ValueError("center_px and bucket_bps must be > 0")
    # the epsilon puts a price exactly on an edge (up to float rounding) in the upper bucket
    return math.floor((price / center_px - 1.0) * 1e4 / bucket_bps + 1e-9)


def bucket_liquidations(
    rows: Iterable[Mapping[str, Any]],
    *,
    start_ms: int,
    end_ms: int,
    center_px: float,
    bucket_bps: float = 25.0,
    time_bucket_ms: int = 15 * MINUTE_MS,
    max_bps: float | None = None,
) -> LiquidationHeatmap:
    """Pure: grid liquidation rows (``ts``, ``price``, ``notional``, ``side``) in a time window.

    Rows outside ``[start_ms, end_ms]``, with a non-positive price, or (when ``max_bps`` is given)
    more than ``max_bps`` from the center are left out.
    """
    if time_bucket_ms <= 0:
        raise ValueError("time_bucket_ms must be > 0")
    n_time = max(1, math.ceil((end_ms - start_ms) / time_bucket_ms))
    cells: dict[tuple[int, int], list[float]] = {}
    for row in rows:
        ts = int(row["ts"])
        px = float(row["price"])
        if ts < start_ms or ts > end_ms or px <= 0:
            continue
        if max_bps is not None and abs(px / center_px - 1.0) * 1e4 > max_bps:
            continue
        k = price_bucket(px, center_px, bucket_bps)
        j = min((ts - start_ms) // time_bucket_ms, n_time - 1)
        cell = cells.setdefault((k, j), [0, 0.0, 0.0, 0.0])
        notional = float(row["notional"])
        cell[0] += 1
        cell[1] += notional
        cell[2 if row["side"] == "long" else 3] += notional
    base = LiquidationHeatmap(center_px, bucket_bps, start_ms, end_ms, time_bucket_ms, n_time)
    if not cells:
        return base
    k_lo = min(k for k, _ in cells)
    k_hi = max(k for k, _ in cells)
    ks = list(range(k_lo, k_hi + 1))
    counts = [[0] * n_time for _ in ks]
    notional_g = [[0.0] * n_time for _ in ks]
    long_g = [[0.0] * n_time for _ in ks]
    short_g = [[0.0] * n_time for _ in ks]
    for (k, j), (n, tot, lg, sh) in cells.items():
        i = k - k_lo
        counts[i][j] = int(n)
        notional_g[i][j] = tot
        long_g[i][j] = lg
        short_g[i][j] = sh
    return LiquidationHeatmap(
        center_px,
        bucket_bps,
        start_ms,
        end_ms,
        time_bucket_ms,
        n_time,
        price_buckets=ks,
        counts=counts,
        notional=notional_g,
        long_notional=long_g,
        short_notional=short_g,
        total_count=sum(int(c[0]) for c in cells.values()),
        total_notional=sum(c[1] for c in cells.values()),
    )


def liquidation_heatmap(
    root: Path,
    symbol: str | Mapping[str, str] | Iterable[tuple[str, str]],
    now_ms: int,
    hours: float = 6,
    bucket_bps: float = 25.0,
    *,
    center_px: float | None = None,
    time_bucket_min: int = 15,
    venues: Iterable[str] | None = None,
    max_bps: float | None = None,
) -> LiquidationHeatmap:
    """Liquidations of the last ``hours`` across venues, bucketed by price and time.

    ``symbol`` is one name used for every venue, a ``{venue: symbol}`` map (venue symbols
    differ), or ``(venue, symbol)`` pairs (several instruments of a venue, e.g. OKX's USDT and
    USDC swaps). ``venues`` defaults to the map's keys, or to every venue directory under ``root``.
    ``center_px`` defaults to the price of the most recent liquidation in the window.
    """
    root = Path(root)
    start_ms = now_ms - int(hours * HOUR_MS)
    if isinstance(symbol, str):
        names = list(venues) if venues is not None else _venue_dirs(root)
        pairs = [(v, symbol) for v in names]
    elif isinstance(symbol, Mapping):
        names = list(venues) if venues is not None else list(symbol)
        pairs = [(v, symbol[v]) for v in names if v in symbol]
    else:
        keep = set(venues) if venues is not None else None
        pairs = [(v, s) for v, s in symbol if keep is None or v in keep]
    rows: list[dict[str, Any]] = []
    for venue, sym in pairs:
        table = read_kind(root, venue, sym, "liquidations", start_ms, now_ms)
        rows.extend(table.select(["ts", "price", "notional", "side"]).to_pylist())
    if center_px is None:
        center_px = max(rows, key=lambda r: int(r["ts"]))["price"] if rows else 1.0
    return bucket_liquidations(
        rows,
        start_ms=start_ms,
        end_ms=now_ms,
        center_px=float(center_px),
        bucket_bps=bucket_bps,
        time_bucket_ms=time_bucket_min * MINUTE_MS,
        max_bps=max_bps,
    )


def _venue_dirs(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir())
