"""The latest liquidation map on disk: ``latest.json`` (the whole map, read by the CLI) and
``latest.parquet`` (one row per position), both written atomically (tmp + fsync + rename)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pyarrow as pa

from core.liqmap import LiqMap
from storage.parquet_files import atomic_write_table, fsync_dir

JSON_NAME = "latest.json"
PARQUET_NAME = "latest.parquet"

_COLUMNS = ("account", "market_index", "position_size", "avg_entry_price", "est_liq_px", "collateral_usd",
            "leverage", "health", "distance_bps", "approximate", "updated_at")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def save(m: LiqMap, directory: Path) -> None:
    """Write both files (Parquet first: the JSON is what readers look for)."""
    rows = [msgspec.to_builtins(e) for e in m.entries]
    table = pa.table({c: [r[c] for r in rows] for c in _COLUMNS}) if rows else pa.table(
        {c: pa.array([], type=t) for c, t in zip(_COLUMNS, (
            pa.string(), pa.int64(), pa.float64(), pa.float64(), pa.float64(), pa.float64(),
            pa.float64(), pa.int64(), pa.float64(), pa.bool_(), pa.int64()), strict=True)})
    meta = {b"autotrader.kind": b"liq_map", b"autotrader.slot": str(m.slot).encode(),
            b"autotrader.oracle_price": repr(m.oracle_price).encode()}
    atomic_write_table(directory / PARQUET_NAME, table, meta)
    _atomic_write_bytes(directory / JSON_NAME, msgspec.json.encode(m))


def load(directory: Path) -> LiqMap | None:
    """The latest map, or None when none was stored yet."""
    path = directory / JSON_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return msgspec.json.decode(data, type=LiqMap)
