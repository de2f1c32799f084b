"""Where the backtest's time goes, stage by stage, on one core.

Usage: ``python bench/bench_pipeline.py [--repeat N]``. For the BTCUSDT recording and the demo
session, times cumulative stages over the whole file (best of N) and prints frames/s and µs/frame:

1. read: the recording read, decompressed and split into frames;
2. + codecs: every frame through ``MarketPipeline`` (codecs, book, bars) with nobody listening;
3. + guards: the :class:`~core.guard_monitor.GuardMonitor` and feed health on the bus (what
   ``autotrader replay --emit guards`` runs);
4. the full backtest (signal, engine, paper venue), as ``bench_backtest.py`` measures it.

The difference between two lines is the cost of the stage added.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from autotrader.backtest import Backtest
from autotrader.config import validate
from autotrader.runtime import max_ages
from core.bus import Bus
from core.clock import EventClock
from core.guard_monitor import GuardMonitor
from feeds.demo import generate_demo
from feeds.pipeline import MarketPipeline
from feeds.replay import open_recording
from feeds.replay_health import ReplayHealth

ROOT = Path(__file__).resolve().parents[1]
BTC = ROOT.parent / "shared" / "data" / "binance-futures" / "btcusdt_20240808.gz"


def read_only(path: Path, tree: dict[str, object]) -> int:
    n = 0
    for _ in open_recording(path).frames():
        n += 1
    return n


def _pipeline(path: Path, tree: dict[str, object], guards: bool) -> int:
    cfg = validate(tree)
    bus, clock = Bus(), EventClock()
    pipe = MarketPipeline(bus, binance_symbol=None, bybit_symbol=cfg.market.bybit_symbol,
                          okx_usdc_inst=cfg.market.okx_usdc_inst, clock=clock)
    health = ReplayHealth(pipe, max_ages(cfg)) if guards else None
    if guards:
        GuardMonitor(bus, cfg.guards, clock, "replay")
    on_ws, on_http, now_ms = pipe.on_ws, pipe.on_http, clock.now_ms
    n = 0
    for f in open_recording(path).frames():
        if f.kind == "recv":
            on_ws(f.venue, f.data, f.ts_ns)
        elif f.kind == "http":
            on_http(f.venue, f.url, f.data, f.ts_ns)
        if health is not None:
            health.maybe_publish(bus, now_ms())
        n += 1
    return n


def codecs(path: Path, tree: dict[str, object]) -> int:
    return _pipeline(path, tree, guards=False)


def with_guards(path: Path, tree: dict[str, object]) -> int:
    return _pipeline(path, tree, guards=True)


def backtest(path: Path, tree: dict[str, object]) -> int:
    return asyncio.run(Backtest(validate(tree), path, []).run()).frames


STAGES: list[tuple[str, Callable[[Path, dict[str, object]], int]]] = [
    ("1 read + decompress + frames", read_only),
    ("2 + codecs, book, bars (no listener)", codecs),
    ("3 + guard monitor, feed health", with_guards),
    ("4 full backtest (signal, engine, paper)", backtest),
]


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
        for label, path, tree in (("BTCUSDT recording", BTC, {}),
                                  ("demo session", demo, {"guards": {"atr_period": 3}})):
            print(f"\n{label}: {'stage':<40} {'frames/s':>10} {'us/frame':>9} {'cpu us/frame':>13}")
            for name, fn in STAGES:
                best = best_cpu = float("inf")
                n = 0
                for _ in range(args.repeat):
                    t0, c0 = time.perf_counter(), time.process_time()
                    n = fn(path, tree)
                    best = min(best, time.perf_counter() - t0)
                    best_cpu = min(best_cpu, time.process_time() - c0)
                print(f"{'':<{len(label) + 1}} {name:<40} {n / best:>10,.0f} {best / n * 1e6:>9.2f} "
                      f"{best_cpu / n * 1e6:>13.2f}")


if __name__ == "__main__":
    main()
