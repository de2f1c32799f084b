"""Arrow schemas of the stored kinds, record → row mapping, and the on-disk file names.

Every kind stores the fields of its core model except ``venue`` and ``symbol`` (both are in the
path ``<root>/<venue>/<SYMBOL>/<kind>/``). Timestamps are int64 milliseconds since the epoch
(UTC) under the model's own name (``timestamp`` for bars, ``ts`` for the rest); ``recv_ns`` is
int64 nanoseconds; sides are strings (``buy``/``sell`` for trades, ``long``/``short`` for
liquidations).

File names inside a kind directory (see :mod:`storage.parquet_files` for the protocol):

* ``YYYYMMDD.parquet`` — the day's merged (compacted) file;
* ``YYYYMMDD.partNNNNN.parquet`` — one flush's rows for that day, NNNNN increasing;
* ``*.tmp`` — a write in progress or abandoned by a crash; never read, removed at start.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, Final, Literal, TypeAlias

import pyarrow as pa

from core.minute_signals import MinuteSignal
from core.models import Bar, Funding, Liquidation, OpenInterest, Trade

Kind: TypeAlias = Literal["bars", "funding", "open_interest", "liquidations", "usdc_trades", "signals"]
StoredKind: TypeAlias = Literal["bars", "funding", "open_interest", "liquidations", "usdc_trades", "signals",
                                "bars_1h"]
Record: TypeAlias = Bar | Funding | OpenInterest | Liquidation | Trade | MinuteSignal

KINDS: Final[tuple[Kind, ...]] = (
    "bars", "funding", "open_interest", "liquidations", "usdc_trades", "signals")
ROLLUP_KIND: Final = "bars_1h"
SCHEMA_VERSION: Final = "1"
DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
_MAX_MS: Final = 253_402_300_800_000  # 10000-01-01T00:00Z

_ms = pa.int64()

SCHEMAS: Final[dict[str, pa.Schema]] = {
    "bars": pa.schema(
        [
            ("timestamp", _ms),
            ("open", pa.float64()),
            ("high", pa.float64()),
            ("low", pa.float64()),
            ("close", pa.float64()),
            ("buy_vol", pa.float64()),
            ("sell_vol", pa.float64()),
            ("cvd", pa.float64()),
            ("vwap", pa.float64()),
            ("trades", pa.int64()),
            ("closed", pa.bool_()),
        ]
    ),
    "funding": pa.schema(
        [
            ("ts", _ms),
            ("rate", pa.float64()),
            ("interval_hours", pa.float64()),
            ("apr_pct", pa.float64()),
            ("next_funding_ts", _ms),
            ("mark_px", pa.float64()),
            ("index_px", pa.float64()),
        ]
    ),
    "open_interest": pa.schema(
        [
            ("ts", _ms),
            ("oi_base", pa.float64()),
            ("oi_single", pa.float64()),
            ("oi_notional", pa.float64()),
        ]
    ),
    "liquidations": pa.schema(
        [
            ("ts", _ms),
            ("side", pa.string()),
            ("price", pa.float64()),
            ("qty", pa.float64()),
            ("notional", pa.float64()),
            ("recv_ns", pa.int64()),
        ]
    ),
    "usdc_trades": pa.schema(
        [
            ("ts", _ms),
            ("price", pa.float64()),
            ("qty", pa.float64()),
            ("side", pa.string()),
            ("trade_id", pa.string()),
            ("recv_ns", pa.int64()),
        ]
    ),
    # The minute signals feed (core.minute_signals.MinuteSignal); missing values are null.
    "signals": pa.schema(
        [("ts", _ms), ("price", pa.float64()), ("cvd", pa.float64()), ("vwap", pa.float64()),
         ("volume", pa.float64())]
        + [(name, pa.float64()) for name in (
            "funding_apr", "funding_apr_binance", "funding_apr_bybit", "funding_apr_okx", "basis_bps",
            "oi_usd", "oi_usd_binance", "oi_usd_bybit", "oi_usd_okx")]
        + [("liq_count", pa.int64()), ("liq_notional", pa.float64()), ("liq_count_window", pa.int64()),
           ("liq_notional_window", pa.float64()), ("guard_status", pa.string()),
           ("failing_guards", pa.list_(pa.string())), ("guard_reason", pa.string()),
           ("regime_on", pa.bool_()), ("regime_reason", pa.string())]
    ),
    # Hourly rollup of 1m bars: OHLC, summed volumes/trades, cvd/vwap of the hour's last bar.
    "bars_1h": pa.schema(
        [
            ("timestamp", _ms),
            ("open", pa.float64()),
            ("high", pa.float64()),
            ("low", pa.float64()),
            ("close", pa.float64()),
            ("buy_vol", pa.float64()),
            ("sell_vol", pa.float64()),
            ("cvd", pa.float64()),
            ("vwap", pa.float64()),
            ("trades", pa.int64()),
            ("bars", pa.int64()),
        ]
    ),
}

MODEL_OF: Final[dict[str, type]] = {
    "bars": Bar,
    "funding": Funding,
    "open_interest": OpenInterest,
    "liquidations": Liquidation,
    "usdc_trades": Trade,
    "signals": MinuteSignal,
}


def ts_column(kind: str) -> str:
    """Name of the event-time column (ms) of ``kind``."""
    return "timestamp" if kind in ("bars", ROLLUP_KIND) else "ts"


def schema_of(kind: str) -> pa.Schema:
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise ValueError(f"unknown storage kind {kind!r}; expected one of {sorted(SCHEMAS)}") from None


def to_row(kind: str, record: Record) -> tuple[Any, ...]:
    """The record's values in schema column order; raises if the record is not ``kind``'s model."""
    model = MODEL_OF.get(kind)
    if model is None:
        raise ValueError(f"unknown storage kind {kind!r}; expected one of {list(KINDS)}")
    if not isinstance(record, model):
        raise TypeError(f"kind {kind!r} stores {model.__name__}, got {type(record).__name__}")
    return tuple(getattr(record, name) for name in SCHEMAS[kind].names)


def rows_to_table(kind: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    schema = schema_of(kind)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema.names]
    arrays = [pa.array(list(col), type=field.type) for col, field in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def day_of_ms(ts_ms: int) -> date:
    """The UTC calendar day of an epoch-ms timestamp."""
    if ts_ms <= 0:
        return date(1970, 1, 1)
    if ts_ms >= _MAX_MS:
        return date.max
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).date()


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def day_key(day: date) -> str:
    return day.strftime("%Y%m%d")


def merged_name(day: date) -> str:
    return f"{day_key(day)}.parquet"


def part_name(day: date, seq: int) -> str:
    return f"{day_key(day)}.part{seq:05d}.parquet"


FILE_RE: Final = re.compile(r"^(?P<day>\d{8})(?:\.part(?P<seq>\d+))?\.parquet$")


def parse_name(name: str) -> tuple[date, int | None] | None:
    """``(day, None)`` for a merged file, ``(day, seq)`` for a part, ``None`` for anything else."""
    m = FILE_RE.match(name)
    if m is None:
        return None
    try:
        day = datetime.strptime(m.group("day"), "%Y%m%d").date()
    except ValueError:
        return None
    seq = m.group("seq")
    return day, (int(seq) if seq is not None else None)
