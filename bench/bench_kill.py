"""Benchmark the kill switch on the paper venue: from the command to every cancel sent.

Usage: ``python bench/bench_kill.py [--orders N] [--repeat R]``.

Each round builds an engine on the paper venue holding a position with its stop and TP ladder
plus ``N - 4`` resting orders, serves the control socket (as ``autotrader run`` does), and sends
``kill`` from a client over the UNIX socket. It measures, per round:

* command → all cancels sent: from the client writing the request to the venue's ``cancel_all``
  returning (every open order cancelled), read from a hook on the venue;
* command → answer: the client's round trip (kill confirmed by a re-check of open orders).

The same rounds run three ways (alternating, same process): no state database, with one (every
write fsynced), and with one whose writes all fail as on a full disk (the cancels must not wait for
storage, nor fail with it).

Also times the CLI end to end once (``autotrader kill`` as a new process, Python start-up
included) against the same kind of instance. Goal: command → all cancels sent < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autotrader.config import validate
from autotrader.control import ControlServer, request
from autotrader.control_handlers import ControlHandlers
from autotrader.trading import TradingStack
from core.bus import Bus, Topics
from core.clock import WallClock
from core.guard_monitor import GuardMonitor
from core.models import BookTop
from core.venue import OrderRequest, OrderType, TriggerCondition
from storage import faults

GOAL_MS = 50.0


def _refuse(store: str, op: str) -> None:
    raise sqlite3.OperationalError("database or disk is full")


async def one_round(sock: Path, n_orders: int, state_db: Path | None = None,
                    full_disk: bool = False) -> tuple[float, float, int]:
    cfg = validate({})
    bus, clock = Bus(), WallClock()
    guards = GuardMonitor(bus, cfg.guards, clock, "live")
    stack = TradingStack(cfg, bus, clock, state_db=state_db, guard_now=guards.check)
    venue = stack.venue
    now = clock.now_ms()
    bus.publish(Topics.BOOK, BookTop(venue="binance", symbol="SOLUSDT", timestamp=now, update_id=1,
                                     bid_px=150.0, bid_qty=100.0, ask_px=150.01, ask_qty=100.0,
                                     spread_bps=0.7, bid_usd=1e6, ask_usd=1e6))
    await venue.place(OrderRequest(market="SOL-PERP", side="buy", type=OrderType.MARKET, size=4.0,
                                   client_tag="b:e1"))
    await venue.place(OrderRequest(market="SOL-PERP", side="sell", type=OrderType.TRIGGER_MARKET, size=4.0,
                                   trigger_price=140.0, trigger_condition=TriggerCondition.BELOW,
                                   reduce_only=True, client_tag="b:sl1"))
    for i in range(3):
        await venue.place(OrderRequest(market="SOL-PERP", side="sell", type=OrderType.LIMIT, size=1.0,
                                       price=155.0 + i, reduce_only=True, client_tag=f"b:tp{i + 1}"))
    for i in range(max(0, n_orders - 4)):
        await venue.place(OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=0.1,
                                       price=140.0 - i * 0.01, client_tag=f"r{i}:e1"))
    before = len(await venue.open_orders())
    done: list[float] = []
    orig = venue.cancel_all

    async def timed_cancel_all(market: str | None = None) -> int:
        n = await orig(market)
        done.append(time.perf_counter())
        return n

    venue.cancel_all = timed_cancel_all  # type: ignore[method-assign]
    tasks: set[asyncio.Task[object]] = set()

    def spawn(coro: object, name: str) -> asyncio.Task[object]:
        t = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        tasks.add(t)
        return t

    handlers = ControlHandlers(stack, guards, cfg.risk, lambda: {}, spawn)
    prev = faults.set_write_hook(_refuse if full_disk else None)
    try:
        async with ControlServer(sock, handlers.handlers()):
            t0 = time.perf_counter()
            result = await request(sock, "kill", {"reason": "bench"})
            t1 = time.perf_counter()
        for t in tasks:
            await t
    finally:
        faults.set_write_hook(prev)
    assert result["confirmed"] and not await venue.open_orders(), result
    stack.close()
    return (done[0] - t0) * 1000, (t1 - t0) * 1000, before


CLI_DAEMON = r"""
import asyncio, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from bench.bench_kill import serve_forever
asyncio.run(serve_forever(Path(sys.argv[1])))
"""


async def serve_forever(sock: Path) -> None:
    """A paper instance with open orders on ``sock`` until killed (for the CLI timing)."""
    cfg = validate({})
    bus, clock = Bus(), WallClock()
    guards = GuardMonitor(bus, cfg.guards, clock, "live")
    stack = TradingStack(cfg, bus, clock, state_db=None, guard_now=guards.check)
    stack.venue.on_mark(150.0, clock.now_ms())  # type: ignore[attr-defined]
    for i in range(20):
        await stack.venue.place(OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=0.1,
                                             price=140.0 - i * 0.01, client_tag=f"r{i}:e1"))
    handlers = ControlHandlers(stack, guards, cfg.risk, lambda: {}, lambda c, n: asyncio.ensure_future(c))
    async with ControlServer(sock, handlers.handlers()):
        print("ready", flush=True)
        await asyncio.Event().wait()


def cli_round_trip(tmp: Path) -> float:
    sock = tmp / "cli.sock"
    root = str(Path(__file__).resolve().parents[1])
    daemon = subprocess.Popen([sys.executable, "-c", CLI_DAEMON, str(sock), root], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert daemon.stdout is not None and daemon.stdout.readline().strip() == "ready"
        env = {**os.environ, "AUTOTRADER__CONTROL__SOCKET_PATH": str(sock)}
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "autotrader", "kill", "--reason", "bench"], env=env,
                             capture_output=True, text=True, timeout=30)
        dt = (time.perf_counter() - t0) * 1000
        assert out.returncode == 0, out.stderr
        return dt
    finally:
        daemon.kill()
        daemon.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    sent, answered = [], []
    by_kind: dict[str, list[float]] = {"no state database": [], "state database": [],
                                       "state database, full disk": []}
    with tempfile.TemporaryDirectory(prefix="atk-") as d:
        for i in range(args.repeat):
            s, a, n = asyncio.run(one_round(Path(d) / "ctl.sock", args.orders))
            sent.append(s)
            answered.append(a)
            by_kind["no state database"].append(s)
            for kind, full in (("state database", False), ("state database, full disk", True)):
                db = Path(d) / f"state-{i}-{full}.sqlite3"
                s2, _, _ = asyncio.run(one_round(Path(d) / "ctl.sock", args.orders, db, full))
                by_kind[kind].append(s2)
        cli_ms = cli_round_trip(Path(d))
    p = statistics.quantiles(sent, n=20)[18] if len(sent) >= 20 else max(sent)
    print(f"kill switch on the paper venue, {n} open orders, {args.repeat} rounds")
    print(f"  command -> all cancels sent: median {statistics.median(sent):.2f} ms, p95 {p:.2f} ms, "
          f"max {max(sent):.2f} ms")
    print(f"  command -> answer (confirmed): median {statistics.median(answered):.2f} ms")
    for kind, xs in by_kind.items():
        print(f"  command -> all cancels sent, {kind}: median {statistics.median(xs):.2f} ms, "
              f"max {max(xs):.2f} ms")
    print(f"  CLI 'autotrader kill' end to end (new process): {cli_ms:.0f} ms")
    verdict = "OK" if max(max(x) for x in by_kind.values()) < GOAL_MS else "ABOVE GOAL"
    print(f"goal: command -> all cancels sent < {GOAL_MS:g} ms: {verdict}")


if __name__ == "__main__":
    main()
