"""Hourly rollups of 1-minute bars.

``<root>/<venue>/<SYMBOL>/bars_1h/YYYYMMDD.parquet`` holds one row per UTC hour that had bars:
``timestamp`` = hour open (ms), ``open`` of the hour's first bar, max ``high``, min ``low``,
``close`` of the last bar, summed ``buy_vol``/``sell_vol``/``trades``, ``cvd``/``vwap`` of the last
bar (both are day-anchored running values, so the last bar's value is the hour's), and ``bars`` =
the number of 1m bars. It is recomputed from the whole day's 1m bars (merged + parts) whenever the
store flushes or compacts that day, and written atomically as a single file (no parts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from storage.parquet_files import KIND_KEY, VERSION_KEY, atomic_write_table, read_day
from storage.parquet_schema import HOUR_MS, ROLLUP_KIND, SCHEMA_VERSION, merged_name, schema_of


def hourly_rollup(bars: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pure: roll 1m bar rows (dicts with the ``bars`` schema's columns) up into hourly rows.

    Bars are ordered by ``timestamp`` (stable, so two bars of the same minute keep their order);
    the result is ordered by hour.
    """
    hours: dict[int, dict[str, Any]] = {}
    for bar in sorted(bars, key=lambda b: int(b["timestamp"])):
        hour = int(bar["timestamp"]) // HOUR_MS * HOUR_MS
        row = hours.get(hour)
        if row is None:
            hours[hour] = {
                "timestamp": hour,
                "open": float(bar["open"]),
                "high": float(bar["high"]),
                "low": float(bar["low"]),
                "close": float(bar["close"]),
                "buy_vol": float(bar["buy_vol"]),
                "sell_vol": float(bar["sell_vol"]),
                "cvd": float(bar["cvd"]),
                "vwap": float(bar["vwap"]),
                "trades": int(bar["trades"]),
                "bars": 1,
            }
            continue
        row["high"] = max(row["high"], float(bar["high"]))
        row["low"] = min(row["low"], float(bar["low"]))
        row["close"] = float(bar["close"])
        row["buy_vol"] += float(bar["buy_vol"])
        row["sell_vol"] += float(bar["sell_vol"])
        row["cvd"] = float(bar["cvd"])
        row["vwap"] = float(bar["vwap"])
        row["trades"] += int(bar["trades"])
        row["bars"] += 1
    return [hours[h] for h in sorted(hours)]


def write_day_rollup(symbol_dir: Path, day: date) -> int:
    """Recompute ``bars_1h`` for ``day`` from ``symbol_dir/bars``; returns the number of hours."""
    bars, _ = read_day(symbol_dir / "bars", day, "bars")
    rows = hourly_rollup(bars.to_pylist())
    table = pa.Table.from_pylist(rows, schema=schema_of(ROLLUP_KIND))
    meta = {KIND_KEY: ROLLUP_KIND.encode(), VERSION_KEY: SCHEMA_VERSION.encode()}
    atomic_write_table(symbol_dir / ROLLUP_KIND / merged_name(day), table, meta)
    return len(rows)
