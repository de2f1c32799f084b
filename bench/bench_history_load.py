"""Benchmark the history a restart loads (docs/DATA_PLANE.md): a synthetic day in a Parquet store
at live rates, read by ``storage.market_history.load_history`` and applied to the windows.

Usage: ``python bench/bench_history_load.py [--repeat N]``. The day: 1,440 one-minute bars, open
interest from Bybit tickers (~0.8 per second, as the real recording in ../shared shows), OKX pushes
for two swaps (every 3 s) and Binance polls (every 60 s), 2,000 liquidations. Prints the time to
load the history and to apply it to the windows (best of N), beside the reference measured in the
same run: every stored OI row read as objects and applied to the windows (what a start did before
the loader kept one value per minute and instrument).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from core.market_history import MarketWindows
from core.models import Bar, Liquidation, OpenInterest
from storage.history import read_kind
from storage.market_history import load_history
from storage.parquet_store import ParquetStore

DAY = 1_741_564_800_000
DAY_MS = 86_400_000
INSTRUMENTS = [("binance", "SOLUSDT"), ("bybit", "SOLUSDT"), ("okx", "SOL-USDT-SWAP"),
               ("okx", "SOL-USDC-SWAP")]
OI_EVERY_MS = {"binance": 60_000, "bybit": 1_250, "okx": 3_000}


def build(root: Path) -> int:
    rows = 0
    with ParquetStore(root, auto_flush=False) as store:
        for venue, symbol in INSTRUMENTS:
            for t in range(0, DAY_MS, OI_EVERY_MS[venue]):
                oi = OpenInterest(venue, symbol, DAY + t, 2e6, 1e6, 1.5e8)
                store.add("open_interest", venue, symbol, oi)
                rows += 1
        for m in range(1440):
            store.add("bars", "binance", "SOLUSDT",
                      Bar("SOLUSDT", DAY + m * 60_000, 150, 151, 149, 150, 3, 1, 2, 150, 9, True))
        for i in range(2000):
            v, s = INSTRUMENTS[i % 4]
            liq = Liquidation(v, s, DAY + 18 * 3_600_000 + i * 10_000, "long", 150, 1, 150)
            store.add("liquidations", v, s, liq)
    return rows


def best(fn: Callable[[], object], repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    now = DAY + DAY_MS - 1
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        oi_rows = build(root)
        loaded = load_history(root, ("binance", "SOLUSDT"), INSTRUMENTS, now)

        def reference() -> None:
            w = MarketWindows()
            for v, s in INSTRUMENTS:
                for r in read_kind(root, v, s, "open_interest", now - DAY_MS, now).to_pylist():
                    w.on_open_interest(OpenInterest(venue=v, symbol=s, **r))

        def apply() -> None:
            MarketWindows().load(loaded)

        t_load = best(lambda: load_history(root, ("binance", "SOLUSDT"), INSTRUMENTS, now), args.repeat)
        t_apply = best(apply, args.repeat)
        t_ref = best(reference, args.repeat)
    print(f"stored OI rows: {oi_rows:,}; loaded: {len(loaded.open_interest):,} OI, "
          f"{len(loaded.bars):,} bars, {len(loaded.liquidations):,} liquidations")
    print(f"load_history (every window):     {t_load * 1000:8.1f} ms")
    print(f"windows.load (apply):            {t_apply * 1000:8.1f} ms")
    print(f"reference: every OI row read and applied: {t_ref * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
