"""What the market-data sanity checks (core/sanity.py) cost on the hot path, against the pipeline
they sit in, measured in the same run.

Usage: ``python bench/bench_sanity.py [PATH] [--repeat N]`` (default: the shared BTCUSDT
recording). Pinned to one core, best of N, CPU time:

(p) the product path: every frame through ``MarketPipeline`` (codecs, book, sanity, bars), nobody
    listening -- the reference;
(s) the sanity work of that same pass alone, replayed from the events (p) published, in order: per
    trade the pipeline's fast-path test (``lo < px < hi``, the reference's expiry,
    ``0 < qty < inf``), per book top the crossed test and the reference update; minus (e), the same
    loop doing nothing (its own iteration, unpacking and branch, which the pipeline does not pay).

Prints µs per frame of (p), ns per event of (s - e) and the share of (p) the checks take.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from core.bus import Bus, Topics
from core.clock import EventClock
from core.models import BookTop, Trade
from core.sanity import MarketSanity
from feeds.pipeline import MarketPipeline
from feeds.replay import Frame, open_recording

BTC = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-futures" / "btcusdt_20240808.gz"
INF = float("inf")


def product(frames: list[Frame]) -> None:
    pipe = MarketPipeline(Bus(), binance_symbol=None, clock=EventClock())
    on_ws, on_http = pipe.on_ws, pipe.on_http
    for f in frames:
        if f.kind == "recv":
            on_ws(f.venue, f.data, f.ts_ns)
        elif f.kind == "http":
            on_http(f.venue, f.url, f.data, f.ts_ns)


Event = tuple[bool, float, float, int]  # (is a trade, px or bid, qty or ask, ts), in publishing order


def checks(events: list[Event]) -> int:
    san = MarketSanity()
    bad = 0
    for trade, a, b, ts in events:
        if trade:
            if not (san.lo < a < san.hi and ts <= san.ref_until and 0.0 < b < INF):
                bad += 1
        elif a < b:
            san.set_reference((a + b) * 0.5, ts)
        else:
            bad += 1
    return bad


def empty(events: list[Event]) -> int:
    n = 0
    for trade, _a, _b, _ts in events:
        if trade:
            n += 1
    return n


def best_cpu(fn: Callable[[], object], repeat: int) -> float:
    best = INF
    for _ in range(repeat):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?", type=Path, default=BTC)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with contextlib.suppress(AttributeError, OSError):  # one core, as the other benches
        os.sched_setaffinity(0, {0})
    print(f"cpus: {sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}")
    frames = list(open_recording(args.path).frames())
    bus = Bus()
    pipe = MarketPipeline(bus, binance_symbol=None, clock=EventClock())
    events: list[Event] = []

    def on_trade(t: Trade) -> None:
        events.append((True, t.price, t.qty, t.ts))

    def on_top(b: BookTop) -> None:
        events.append((False, b.bid_px, b.ask_px, b.timestamp))

    bus.on(Topics.TRADES, on_trade)
    bus.on(Topics.BOOK, on_top)
    for f in frames:
        if f.kind == "recv":
            pipe.on_ws(f.venue, f.data, f.ts_ns)
        elif f.kind == "http":
            pipe.on_http(f.venue, f.url, f.data, f.ts_ns)
    assert checks(events) == 0, "the recording has bad data: the fast path is not what is timed"
    p = best_cpu(lambda: product(frames), args.repeat)
    s = best_cpu(lambda: checks(events), args.repeat * 4)
    e = best_cpu(lambda: empty(events), args.repeat * 4)
    trades = sum(1 for ev in events if ev[0])
    net = max(0.0, s - e)
    print(f"{args.path.name}: {len(frames):,} frames, {trades:,} trades, {len(events) - trades:,} book tops")
    print(f"(p) product path            {p / len(frames) * 1e6:8.2f} us/frame  ({p:.3f} s)")
    n = len(events)
    print(f"(s) checks, loop included   {s / n * 1e9:8.1f} ns/event")
    print(f"(e) the loop alone          {e / n * 1e9:8.1f} ns/event")
    print(f"(s - e) the checks          {net / n * 1e9:8.1f} ns/event = {net / p * 100:.2f} % of (p)")


if __name__ == "__main__":
    main()
