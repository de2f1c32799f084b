"""The project's side of ``bench/bench_vs_nautilus.py`` (pinned by the caller). Prints one JSON line.

* ``backtest``: ``autotrader backtest`` on the BTCUSDT recording (every frame: read, decompress,
  codecs, book, bars, guards, signal, engine, paper venue), events (frames) per second;
* ``depth``: Binance depth frames in memory -> ``BinanceCodec.feed_ws`` (parse, book sync, book,
  BookTop with the top of book and 10 bps depth after every diff), diffs per second;
* ``trades_bars``: Binance trade frames in memory -> the product path (``MarketPipeline.on_ws``:
  codec, Trade, bus, 1-minute bar builder), trades per second; and ``trades_bars_block``: the
  same frames as recording text through :class:`feeds.feeder.FrameFeeder` (what ``replay --emit
  bars`` runs on an hftbacktest file);
* ``calibration_ns``: a fixed pure-Python loop (ns per iteration), the machine's speed on this run.

Best of N for each (wall time, and separately CPU time of the process: ``per_cpu_s``);
``hot_path`` says whether the compiled path ran.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_replay import stage_product  # type: ignore[import-not-found]

from autotrader.backtest import Backtest
from autotrader.config import validate
from core.bus import Bus, Topics
from core.models import Bar
from feeds.binance import fast
from feeds.binance.codec import BinanceCodec
from feeds.feeder import FrameFeeder
from feeds.pipeline import MarketPipeline
from feeds.replay import open_recording


def best_of(n: int, fn: Callable[[], int]) -> tuple[float, int, float]:
    """Best wall time, the count, best CPU time of this process (steadier on a shared machine)."""
    best, best_cpu, count = float("inf"), float("inf"), 0
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        count = fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, count, best_cpu


def calibration() -> float:
    """ns per iteration of a fixed loop of integer and float arithmetic, calls and attribute access."""
    def work(n: int) -> float:
        acc, x = 0, 0.5
        for i in range(n):
            acc += i * 3 % 7
            x = x * 1.000001 + 0.1
        return acc + x

    _, _, cpu = best_of(3, lambda: int(work(1_000_000)))
    return cpu / 1_000_000 * 1e9


def main() -> None:
    path, repeat = Path(sys.argv[1]), int(sys.argv[2])
    with gzip.open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    depth = [ln.partition(b" ")[2] for ln in lines if b'"depthUpdate"' in ln[:120]]
    snapshot = next(ln.partition(b" ")[2] for ln in lines if b'{"lastUpdateId"' in ln[:40])
    trade_lines = [ln for ln in lines if b'@trade"' in ln[:80]]
    trades = [ln.partition(b" ")[2] for ln in trade_lines]

    def backtest() -> int:
        return asyncio.run(Backtest(validate({}), path).run()).frames

    def depth_path() -> int:
        codec = BinanceCodec()
        feed = codec.feed_ws
        codec.feed_http("", snapshot, 0)
        n = 0
        for f in depth:
            feed(f, 0)
            n += 1
        return n

    def trades_bars() -> int:
        stage_product(trades)  # bench_replay's product path: codec -> pipeline -> bus -> bars
        return len(trades)

    with tempfile.TemporaryDirectory() as d:
        tfile = Path(d) / "trades.gz"
        with gzip.open(tfile, "wb", compresslevel=1) as fh:
            fh.write(b"\n".join(trade_lines) + b"\n")

        def trades_bars_block() -> int:
            bus = Bus()
            bars: list[Bar] = []
            bus.on(Topics.BARS, bars.append)
            pipe = MarketPipeline(bus, binance_symbol=None)
            feeder = FrameFeeder(pipe, open_recording(tfile))
            for _ in feeder:
                pass
            pipe.flush()
            return feeder.frames

        figures = {}
        for name, fn in (("backtest", backtest), ("depth", depth_path), ("trades_bars", trades_bars),
                         ("trades_bars_block", trades_bars_block)):
            dt, n, cpu = best_of(repeat, fn)
            figures[name] = {"n": n, "best_s": dt, "per_s": n / dt, "cpu_s": cpu, "per_cpu_s": n / cpu}
    figures["calibration_ns"] = calibration()  # type: ignore[assignment]
    figures["hot_path"] = fast.hot_path()  # type: ignore[assignment]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
