"""Benchmark Binance trade frames -> 1-minute bars.

Usage: ``python bench/bench_replay.py [PATH] [--repeat N]`` (default: the shared btcusdt
hftbacktest recording; any recording format replay reads works).

Loads every ``trade``/``aggTrade`` frame into memory as bytes first (through the replay reader),
then, pinned to one core, times in the same run (best of N):

(a) decode only with orjson;
(b) decode only with msgspec typed structs (envelope -> trade with ``p: str, q: str, T: int, m: bool``);
(c) the product path: ``feeds.replay.fastpath.TradeBarPipeline`` = lax msgspec decode + ``BarBuilder``;
(c') the same decode feeding ``BarBuilder.add_many`` with columns;
(d) a naive pure-Python baseline: orjson + dicts, one dict per bar.

It checks (c), (c') and (d) produce the same bars, then prints frames/s, peak traced memory per
stage (tracemalloc, in a separate untimed pass) and the process's peak RSS. Also times the reader
alone over the whole file (lines/s).
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

from core.bars import BarBuilder
from core.bus import Bus, Topics
from core.models import Bar
from feeds.pipeline import MarketPipeline
from feeds.replay import open_recording
from feeds.replay.fastpath import TRADE_ENVELOPE_DECODER, TradeBarPipeline

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-futures" / "btcusdt_20240808.gz"
GOAL = 700_000


class TradeStr(msgspec.Struct, gc=False):
    p: str
    q: str
    T: int
    m: bool


class EnvelopeStr(msgspec.Struct, gc=False):
    data: TradeStr


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


_DEC_STR = msgspec.json.Decoder(EnvelopeStr)


def stage_msgspec(frames: list[bytes]) -> object:
    decode = _DEC_STR.decode
    return [decode(f) for f in frames]


def stage_bars(frames: list[bytes]) -> list[Bar]:
    pipe = TradeBarPipeline()
    bars = pipe.feed_many(frames)
    last = pipe.finish()
    if last is not None:
        bars.append(last)
    return bars


def stage_bars_columns(frames: list[bytes]) -> list[Bar]:
    decode = TRADE_ENVELOPE_DECODER.decode
    ts: list[int] = []
    ps: list[float] = []
    qs: list[float] = []
    ms: list[bool] = []
    for f in frames:
        t = decode(f).data
        ts.append(t.ts)
        ps.append(t.price)
        qs.append(t.qty)
        ms.append(t.sell)
    bb = BarBuilder("")
    bars = bb.add_many(ts, ps, qs, ms)
    last = bb.flush()
    if last is not None:
        bars.append(last)
    return bars


def stage_product(frames: list[bytes]) -> list[Bar]:
    """The product's own path: BinanceCodec.feed_ws -> MarketPipeline -> bus -> bars (what replay
    and live both run)."""
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

    bars = stage_bars(frames)
    assert bars == stage_bars_columns(frames), "add() and add_many() disagree"
    assert same_bars(bars, stage_naive(frames)), "fast path and naive baseline disagree"
    assert [(b.timestamp, b.close, b.trades) for b in stage_product(frames)] == [
        (b.timestamp, b.close, b.trades) for b in bars
    ], "product path and fast path disagree"

    stages: list[tuple[str, Callable[[list[bytes]], object]]] = [
        ("(a) decode only, orjson", stage_orjson),
        ("(b) decode only, msgspec typed (str p/q)", stage_msgspec),
        ("(c) trades -> bars: TradeBarPipeline", stage_bars),
        ("(c') trades -> bars: decode + add_many", stage_bars_columns),
        ("(d) naive orjson + dict bars", stage_naive),
        ("(e) product: codec -> pipeline -> bus -> bars", stage_product),
    ]
    rates: dict[str, float] = {}
    print(f"{'stage':45} {'frames/s':>12} {'peak traced':>12}")
    for name, fn in stages:
        t = best_of(args.repeat, fn, frames)
        rates[name[:4]] = n / t
        peak = peak_traced(fn, frames)
        print(f"{name:45} {n / t:12,.0f} {peak / 1e6:10.1f} MB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{len(bars)} bars; peak RSS {rss:.0f} MB")
    c, b, e = rates["(c) "], rates["(b) "], rates["(e) "]
    for label, r in (("(c) fast path", c), ("(e) product path", e)):
        print(f"goal {label} >= {GOAL:,}/s: {'PASS' if r >= GOAL else 'FAIL'} ({r:,.0f}/s)")
    print(f"goal (c) within 1.5x of (b): {'PASS' if c * 1.5 >= b else 'FAIL'} (ratio b/c = {b / c:.2f})")


if __name__ == "__main__":
    main()
