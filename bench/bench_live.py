"""Live-path benchmark: socket read -> codec -> bus delivery, against a local blaster.

A child process (its own core) serves recorded Binance futures frames (../shared/data) over a
websocket on 127.0.0.1; the parent runs the real :class:`feeds.transport.ws.WsConnection` into a
:class:`feeds.pipeline.MarketPipeline` with a bus handler per topic. Two runs:

* ``max``: the server sends as fast as it can; reports messages/s processed by the client.
* ``paced``: 5,000 msg/s; two latencies, p50/p99/max:
  - the live path as the issue defines it: socket read (the frame handed over by the websocket
    reader, ``recv_ns``) -> codec -> bus delivery (after ``on_ws`` returns);
  - end to end: server send stamp -> bus delivery (adds the blaster process, the kernel and the
    VM's scheduling; both ``time.time_ns`` on the same host).

    /tmp/venv/bin/python bench/bench_live.py [--frames N] [--rate 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("AUTOTRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _frames(n: int) -> list[str]:
    from feeds.transport.fakes_data import load_binance

    frames = [f.text for f in load_binance(DATA / "binance-futures" / "btcusdt_20240808.gz").frames]
    return frames[:n]


def _server(n: int, rate: float, port_q: mp.Queue, times_q: mp.Queue) -> None:  # type: ignore[type-arg]
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    frames = _frames(n)
    gc.freeze()  # the recorded frames are permanent: keep them out of the collector's scans

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sent: list[int] = []
        t0 = time.perf_counter()
        for i, text in enumerate(frames):
            if rate > 0:
                due = t0 + i / rate
                while (d := due - time.perf_counter()) > 0:
                    await asyncio.sleep(d if d > 0.002 else 0)
            sent.append(time.time_ns())
            await ws.send_str(text)
        times_q.put(sent)
        await ws.receive()  # wait for the client to close
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/public/stream", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_q.put(runner.addresses[0][1])
        await asyncio.sleep(3600)

    asyncio.run(main())


BOOK_STATS = [0, 0]  # book updates applied, gaps (set by the client)


async def _client(port: int, n: int) -> tuple[list[int], list[int]]:
    from core.bus import Bus, Topics
    from feeds.pipeline import MarketPipeline
    from feeds.transport.ws import Timing, WsConnection, WsSpec

    bus = Bus()
    delivered = [0]

    def count(_m: object) -> None:
        delivered[0] += 1

    bus.on(Topics.BOOK, count)
    bus.on(Topics.BOOK_TICKER, count)
    bus.on(Topics.TRADES, count)
    bus.on(Topics.BARS, count)
    pipe = MarketPipeline(bus, binance_symbol="BTCUSDT")
    # the REST snapshot the stream starts from, so every depth diff is applied to a synced book
    from feeds.transport.fakes_data import load_binance

    data = load_binance(DATA / "binance-futures" / "btcusdt_20240808.gz")
    snap = {"lastUpdateId": data.snapshot_id, "bids": data.snapshot_bids, "asks": data.snapshot_asks}
    import json as _json

    pipe.on_http("binance", "/fapi/v1/depth?symbol=BTCUSDT", _json.dumps(snap), time.time_ns())
    gc.freeze()
    done_at: list[int] = []
    recv_at: list[int] = []
    book_updates = BOOK_STATS
    finished = asyncio.Event()
    on_ws = pipe.on_ws
    now = time.time_ns

    def sink(venue: str, raw: bytes | str, recv_ns: int) -> None:
        recv_at.append(recv_ns)
        on_ws(venue, raw, recv_ns)
        done_at.append(now())
        if len(done_at) >= n:
            finished.set()
            codec = pipe.codecs["binance"]
            book_updates[0] = pipe.stats.book_updates
            book_updates[1] = codec.stats.gaps

    spec = WsSpec("binance.public", "binance", f"ws://127.0.0.1:{port}/public/stream", 5.0,
                  dead_after_s=60.0)
    async with aiohttp.ClientSession() as session:
        conn = WsConnection(spec, session, sink, timing=Timing(watchdog_tick_s=1.0))
        task = asyncio.create_task(conn.run())
        await asyncio.wait_for(finished.wait(), 600)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return done_at, recv_at


def run(n: int, rate: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    port_q, times_q = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=_server, args=(n, rate, port_q, times_q), daemon=True)
    proc.start()
    try:
        port = port_q.get(timeout=60)
        if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        done, recv = asyncio.run(_client(port, n))
        sent = times_q.get(timeout=60)
    finally:
        proc.terminate()
        proc.join(5)
    lat = sorted((d - s) / 1e3 for d, s in zip(done, sent, strict=False))
    path = sorted((d - r) / 1e3 for d, r in zip(done, recv, strict=False))
    span = (done[-1] - sent[0]) / 1e9
    return {
        "frames": float(len(done)),
        "msgs_per_s": len(done) / span,
        "p50_us": lat[len(lat) // 2],
        "p99_us": lat[int(len(lat) * 0.99)],
        "max_us": lat[-1],
        "path_p50_us": path[len(path) // 2],
        "path_p99_us": path[int(len(path) * 0.99)],
        "path_max_us": path[-1],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=90_000)
    ap.add_argument("--rate", type=float, default=5000.0)
    ap.add_argument("--paced-frames", type=int, default=50_000)
    args = ap.parse_args()
    r = run(args.frames, 0.0)
    print(f"max rate : {r['msgs_per_s']:,.0f} msg/s over {r['frames']:,.0f} frames "
          f"({BOOK_STATS[0]:,} book updates applied, {BOOK_STATS[1]} gaps)")
    r = run(args.paced_frames, args.rate)
    print(f"{args.rate:,.0f}/s paced: achieved {r['msgs_per_s']:,.0f} msg/s")
    print(f"  live path (socket read -> codec -> bus): p50 {r['path_p50_us']:.0f} us  "
          f"p99 {r['path_p99_us']:.0f} us  max {r['path_max_us']:.0f} us  (goal p99 < 1000 us)")
    print(f"  end to end (server send -> bus):         p50 {r['p50_us']:.0f} us  "
          f"p99 {r['p99_us']:.0f} us  max {r['max_us']:.0f} us")


if __name__ == "__main__":
    main()
