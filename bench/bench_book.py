"""Benchmark the Binance depth → local book path.

Usage: ``python bench/bench_book.py [PATH]`` (default: the shared btcusdt hftbacktest recording).

Loads every depth frame (and the REST snapshot) into memory, then times:

* the floor: decoding the depth frames only, with orjson and with msgspec typed structs;
* the book alone: applying pre-decoded diffs and building a BookTop after each;
* the full path: ``BinanceCodec.feed_ws`` (parse + book sync + BookTop with top and 10 bps depth).

Prints diffs/s for each and the peak memory.
"""

from __future__ import annotations

import gc
import gzip
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import msgspec
import orjson

from core.book import BinanceBookSync
from feeds.binance.codec import BinanceCodec
from feeds.binance.messages import DepthUpdateMsg, Envelope

DEFAULT = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-futures" / "btcusdt_20240808.gz"
)
GOAL, STRETCH = 20_000, 33_000


def load(path: Path) -> tuple[bytes, int, list[bytes]]:
    """The REST snapshot, how many depth frames preceded it, and all depth frames."""
    snapshot = b""
    before = 0
    frames: list[bytes] = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for line in fh:
            _, _, frame = line.rstrip(b"\r\n").partition(b" ")
            if b'"depthUpdate"' in frame:
                frames.append(frame)
            elif not snapshot and b'"lastUpdateId"' in frame and b'"stream"' not in frame:
                snapshot = frame
                before = len(frames)
    if not snapshot or not frames:
        raise SystemExit(f"{path}: need one REST depth snapshot and depth frames")
    return snapshot, before, frames


def best_of(n: int, fn: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(n):
        gc.collect()
        t0 = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - t0)
    return best, count


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    snapshot, before, frames = load(path)
    n = len(frames)
    print(f"{path.name}: {n} depth frames, {sum(map(len, frames)) / n:.0f} bytes/frame avg")
    env_dec = msgspec.json.Decoder(Envelope)

    def floor_orjson() -> int:
        loads = orjson.loads
        for f in frames:
            loads(f)
        return n

    def floor_msgspec() -> int:
        dec = env_dec.decode
        for f in frames:
            dec(f)
        return n

    decoded = [env_dec.decode(f).data for f in frames]
    diffs = [d for d in decoded if isinstance(d, DepthUpdateMsg)]
    snap = orjson.loads(snapshot)

    def book_only() -> int:  # the snapshot first: early diffs are dropped as stale
        sync = BinanceBookSync(diffs[0].s)
        sync.on_snapshot(snap["lastUpdateId"], snap["bids"], snap["asks"])
        on_diff = sync.on_diff
        tops = 0
        for d in diffs:
            tops += len(on_diff(d.U, d.u, d.pu, d.T or d.E, d.b, d.a))
        return tops

    def full_path() -> int:
        codec = BinanceCodec()
        feed = codec.feed_ws
        tops = 0
        for f in frames[:before]:
            tops += len(feed(f, 0))
        tops += len(codec.feed_http("", snapshot, 0))
        for f in frames[before:]:
            tops += len(feed(f, 0))
        assert codec.stats.gaps == 0 and codec.stats.malformed == 0, codec.stats
        return tops

    rows = [
        ("floor: orjson.loads", floor_orjson),
        ("floor: msgspec typed structs", floor_msgspec),
        ("book only (pre-decoded diffs, BookTop each)", book_only),
        ("full: codec.feed_ws -> BookTop each", full_path),
    ]
    results = {}
    for name, fn in rows:
        secs, count = best_of(5, fn)
        results[name] = n / secs
        extra = f"  ({count} BookTops)" if "book" in name.lower() else ""
        print(f"{name:<46} {n / secs:>10,.0f} diffs/s  {secs * 1e6 / n:6.1f} us/diff{extra}")

    tracemalloc.start()
    full_path()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak traced memory during full path: {peak / 2**20:.1f} MiB; process max RSS {rss:.0f} MiB")
    full = results["full: codec.feed_ws -> BookTop each"]
    verdict = "stretch goal met" if full >= STRETCH else "goal met" if full >= GOAL else "BELOW GOAL"
    print(f"full path {full:,.0f} diffs/s: {verdict} (goal {GOAL:,}, stretch {STRETCH:,})")


if __name__ == "__main__":
    main()
