"""Benchmark the backtest: recording → codecs → pipeline → guards → signal → engine → paper venue.

Usage: ``python bench/bench_backtest.py [--repeat N]``. Pinned to one core. Prints events/s for:

(a) the shared BTCUSDT recording (93,954 frames; the signal never arms in 6 minutes, so the engine
    and the paper venue run idle: stepping, guard checks, the venue following the book);
(b) the synthetic demo session (45 minutes, every venue's feeds, the signal armed: entries, stops
    and TP ladders live on the paper venue for long stretches).

Each figure is the whole product path as ``autotrader backtest`` runs it, the recording read and
decompressed from disk included (best of N runs). Goal: ≥ 200,000 events/s on one core. The
verdict is on wall time; ``per cpu s`` (events per second of this process's CPU time) is printed
too, as it is steadier than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from autotrader.backtest import Backtest, ManualOrder
from autotrader.config import validate
from feeds.demo import generate_demo

ROOT = Path(__file__).resolve().parents[1]
BTC = ROOT.parent / "shared" / "data" / "binance-futures" / "btcusdt_20240808.gz"
GOAL = 200_000


def run_once(tree: dict[str, object], path: Path, manual: list[ManualOrder]) -> tuple[float, float, int, int]:
    bt = Backtest(validate(tree), path, manual)
    t0 = time.perf_counter()
    c0 = time.process_time()
    r = asyncio.run(bt.run())
    return time.perf_counter() - t0, time.process_time() - c0, r.frames, len(r.trades)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {0})
        print("pinned to cpu 0")
    except (AttributeError, OSError):
        print("(could not pin to one cpu)")
    with tempfile.TemporaryDirectory() as d:
        demo = generate_demo(Path(d) / "demo.jsonl.zst").path
        cases = [
            ("(a) BTCUSDT recording, engine idle", {}, BTC, []),
            ("(b) demo session, signal trading", {"guards": {"atr_period": 3}}, demo, []),
        ]
        print(f"{'case':<42} {'events':>8} {'trades':>6} {'best s':>8} {'events/s':>10} {'cpu s':>7} "
              f"{'per cpu s':>10}")
        worst = None
        for name, tree, path, manual in cases:
            best = best_cpu = None
            for _ in range(args.repeat):
                dt, cpu, n, trades = run_once(tree, path, manual)
                best = dt if best is None else min(best, dt)
                best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
            assert best is not None and best_cpu is not None
            rate = n / best
            worst = rate if worst is None else min(worst, rate)
            print(f"{name:<42} {n:>8,} {trades:>6} {best:>8.3f} {rate:>10,.0f} {best_cpu:>7.3f} "
                  f"{n / best_cpu:>10,.0f}")
    assert worst is not None
    verdict = "OK" if worst >= GOAL else "BELOW GOAL"
    print(f"goal >= {GOAL:,} events/s on one core: {verdict} (slowest case {worst:,.0f}/s)")


if __name__ == "__main__":
    main()
