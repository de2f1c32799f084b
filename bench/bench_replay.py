"""Benchmark Binance trade frames -> 1-minute bars.

Usage: ``python bench/bench_replay.py [PATH] [--repeat N]`` (default: the shared btcusdt
hftbacktest recording; any recording format replay reads works).

Loads every ``trade``/``aggTrade`` frame into memory as bytes first (through the replay reader),
then, pinned to one core, times in the same run (best of N):

(a) decode only with orjson;
(b) decode only with msgspec typed structs: the Binance codec's own envelope and trade structs
    (every field it reads, strings kept as strings);
(c) the product path, as replay and live run it: ``BinanceCodec.feed_ws`` -> ``MarketPipeline``
    (trade model, bus publish) -> ``BarBuilder`` -> bars on the bus;
(d) a naive pure-Python baseline: orjson + dicts, one dict per bar.

It checks (c) and (d) produce the same bars, then prints frames/s, peak traced memory per stage
(tracemalloc, in a separate untimed pass) and the process's peak RSS. Also times the reader alone
over the whole file (lines/s).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson

from core.bus import Bus, Topics
from core.models import Bar
from feeds.binance.messages import Envelope
from feeds.pipeline import MarketPipeline
from feeds.replay import open_recording

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-futures" / "btcusdt_20240808.gz"
GOAL = 700_000


def load(path: Path) -> list[bytes]:
    frames = [
        f.data
        for f in open_recording(path).frames()
        if f.kind == "recv" and (b'@trade"' in f.data[:48] or b'@aggTrade"' in f.data[:48])
    ]
    if not frames:
        raise SystemExit(f"{path}: no trade frames")
    return frames


# ------------------------------------------------------------------------------ stages
def stage_orjson(frames: list[bytes]) -> object:
    loads = orjson.loads
    return [loads(f) for f in frames]


_DEC_TYPED = msgspec.json.Decoder(Envelope)


def stage_msgspec(frames: list[bytes]) -> object:
    decode = _DEC_TYPED.decode
    return [decode(f) for f in frames]


def stage_product(frames: list[bytes]) -> list[Bar]:
    """The product's own path: BinanceCodec.feed_ws -> MarketPipeline -> bus -> bars (what replay
    and live both run), the last partial bar included."""
    bus = Bus()
    bars: list[Bar] = []
    bus.on(Topics.BARS, bars.append)
    pipeline = MarketPipeline(bus, binance_symbol=None)
    on_ws = pipeline.on_ws
    for f in frames:
        on_ws("binance", f, 0)
    pipeline.flush()
    return bars


def stage_naive(frames: list[bytes]) -> list[dict[str, Any]]:
    bars: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    day = -1
    cvd = pq = vol = 0.0
    for f in frames:
        d = orjson.loads(f)["data"]
        ts = d["T"]
        p = float(d["p"])
        q = float(d["q"])
        minute = ts // 60000 * 60000
        if cur is None or cur["timestamp"] != minute:
            if minute // 86_400_000 != day:
                day = minute // 86_400_000
                cvd = pq = vol = 0.0
            cur = {"timestamp": minute, "open": p, "high": p, "low": p, "close": p}
            cur.update(buy_vol=0.0, sell_vol=0.0, cvd=cvd, vwap=p, trades=0)
            bars.append(cur)
        cur["high"] = max(cur["high"], p)
        cur["low"] = min(cur["low"], p)
        cur["close"] = p
        if d["m"]:
            cur["sell_vol"] += q
            cvd -= q
        else:
            cur["buy_vol"] += q
            cvd += q
        pq += p * q
        vol += q
        cur["trades"] += 1
        cur["cvd"] = cvd
        cur["vwap"] = pq / vol if vol else p
    return bars


# ------------------------------------------------------------------------------ harness
def best_of(n: int, fn: Callable[[list[bytes]], object], frames: list[bytes]) -> float:
    best = float("inf")
    for _ in range(n):
        gc.collect()
        t0 = time.perf_counter()
        fn(frames)
        best = min(best, time.perf_counter() - t0)
    return best


def peak_traced(fn: Callable[[list[bytes]], object], frames: list[bytes]) -> int:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = fn(frames)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del out
    return peak


def same_bars(a: list[Bar], b: list[dict[str, Any]]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if (x.timestamp, x.open, x.high, x.low, x.close, x.trades) != (
            y["timestamp"],
            y["open"],
            y["high"],
            y["low"],
            y["close"],
            y["trades"],
        ):
            return False
        for k in ("buy_vol", "sell_vol", "cvd", "vwap"):
            if abs(getattr(x, k) - y[k]) > 1e-9 * max(1.0, abs(y[k])):
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        print(f"pinned to cpu {cpu}")

    t0 = time.perf_counter()
    rec = open_recording(args.path)
    n_lines = sum(1 for _ in rec.frames())
    t_read = time.perf_counter() - t0
    print(
        f"reader: {args.path.name} ({rec.format}, {rec.compression}): {n_lines:,} frames "
        f"in {t_read:.3f}s = {n_lines / t_read:,.0f} frames/s"
    )

    frames = load(args.path)
    n = len(frames)
    print(f"loaded {n:,} trade frames ({sum(map(len, frames)) / 1e6:.1f} MB)\n")

    bars = stage_product(frames)
    assert same_bars(bars, stage_naive(frames)), "product path and naive baseline disagree"

    stages: list[tuple[str, Callable[[list[bytes]], object]]] = [
        ("(a) decode only, orjson", stage_orjson),
        ("(b) decode only, msgspec typed (codec structs)", stage_msgspec),
        ("(c) product: codec -> pipeline -> bus -> bars", stage_product),
        ("(d) naive orjson + dict bars", stage_naive),
    ]
    rates: dict[str, float] = {}
    print(f"{'stage':48} {'frames/s':>12} {'peak traced':>12}")
    for name, fn in stages:
        t = best_of(args.repeat, fn, frames)
        rates[name[:3]] = n / t
        peak = peak_traced(fn, frames)
        print(f"{name:48} {n / t:12,.0f} {peak / 1e6:10.1f} MB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{len(bars)} bars; peak RSS {rss:.0f} MB")
    c, b = rates["(c)"], rates["(b)"]
    print(f"goal (c) >= {GOAL:,}/s: {'PASS' if c >= GOAL else 'FAIL'} ({c:,.0f}/s)")
    print(f"(c) vs the typed-decode floor (b): {b / c:.2f}x slower (goal: within 1.5x of typed decode)")


if __name__ == "__main__":
    main()
