"""Rows/s through ParquetStore (buffer + part files + compaction), and read-back speed.

Usage: python bench/bench_storage.py [ROWS] [FLUSH_EVERY]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from core.models import Side, Trade
from storage.history import read_kind
from storage.parquet_store import ParquetStore

BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00Z


class _Clock:
    def __init__(self) -> None:
        self.ms = BASE_MS + 86_400_000 - 1

    def now_ms(self) -> int:
        return self.ms

    def now_s(self) -> float:
        return self.ms / 1000.0


def main(rows: int = 500_000, flush_every: int = 10_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clock = _Clock()
        store = ParquetStore(root, flush_interval_s=3600, clock=clock, auto_flush=False)
        trades = [
            Trade("okx", "SOL-USDC-SWAP", BASE_MS + i * 100, 100.0 + (i % 50) / 100, 1.5, Side.BUY, str(i))
            for i in range(rows)
        ]
        t0 = time.perf_counter()
        for i, trade in enumerate(trades, 1):
            store.add("usdc_trades", "okx", "SOL-USDC-SWAP", trade)
            if i % flush_every == 0:
                store.flush()
        store.close()
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        table = read_kind(root, "okx", "SOL-USDC-SWAP", "usdc_trades", 0, 2**62)
        dr = time.perf_counter() - t1
        size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
        print(
            f"write: {rows} rows in {dt:.2f} s = {rows / dt:,.0f} rows/s ({store.flushes} flushes, "
            f"{store.compactions} compactions, {size / 1e6:.1f} MB)"
        )
        print(f"read:  {table.num_rows} rows in {dr:.3f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
