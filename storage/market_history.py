"""Read the market history a restart starts from (see :class:`core.market_history.MarketHistory`).

From ``<root>/<venue>/<SYMBOL>/<kind>/`` (every finished day and today's part files): 24 h of the
primary symbol's 1-minute bars (deduplicated: a partial bar stored at shutdown gives way to the
closed bar of the same minute), 6 h of liquidations and 24 h of open interest of every configured
instrument, and the latest funding of each within 24 h. Missing directories are empty history.

Open interest comes back as the last value of each minute per instrument: every reader keeps no
more (the windows one value per minute, the guards the latest), and a day of Bybit tickers and
OKX pushes is ~10^5 rows that would cost seconds to turn into objects at start.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from core.market_history import BARS_LOOKBACK_MS, LIQ_WINDOW_MS, OI_WINDOW_MS, MarketHistory, dedupe_bars
from core.models import Bar, Funding, Liquidation, OpenInterest
from storage.history import MINUTE_MS, read_kind

Instrument = tuple[str, str]  # (venue, symbol)


def _rows(root: Path, venue: str, symbol: str, kind: str, start_ms: int,
          end_ms: int) -> list[dict[str, Any]]:
    table = read_kind(root, venue, symbol, kind, start_ms, end_ms)
    if kind == "open_interest" and table.num_rows > 1:
        table = _last_per_minute(table)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _last_per_minute(table: pa.Table) -> pa.Table:
    """The last row of each minute of a time-ordered table (``ts`` in ms)."""
    minute = pc.divide(table.column("ts"), MINUTE_MS)  # integer division
    n = table.num_rows
    last = pc.not_equal(minute.slice(0, n - 1), minute.slice(1))
    keep = pa.concat_arrays([*last.chunks, pa.array([True])])
    return table.filter(keep)


def load_history(root: Path, primary: Instrument, instruments: Iterable[Instrument],
                 now_ms: int) -> MarketHistory:
    """The stored history up to ``now_ms``: bars of ``primary``, the rest of every instrument."""
    root = Path(root)
    insts = list(dict.fromkeys(instruments))
    venue, symbol = primary
    bars = dedupe_bars(Bar(symbol=symbol, **r)
                       for r in _rows(root, venue, symbol, "bars", now_ms - BARS_LOOKBACK_MS, now_ms))
    liqs: list[Liquidation] = []
    oi: list[OpenInterest] = []
    funding: list[Funding] = []
    for v, s in insts:
        liqs += [Liquidation(venue=v, symbol=s, **r)
                 for r in _rows(root, v, s, "liquidations", now_ms - LIQ_WINDOW_MS, now_ms)]
        oi += [OpenInterest(venue=v, symbol=s, **r)
               for r in _rows(root, v, s, "open_interest", now_ms - OI_WINDOW_MS, now_ms)]
        rows = _rows(root, v, s, "funding", now_ms - OI_WINDOW_MS, now_ms)
        if rows:
            funding.append(Funding(venue=v, symbol=s, **rows[-1]))
    liqs.sort(key=lambda x: x.ts)
    oi.sort(key=lambda x: x.ts)
    return MarketHistory(now_ms=now_ms, bars=bars, liquidations=liqs, open_interest=oi, funding=funding)
