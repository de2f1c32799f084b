"""The kill-point harness (issue 15, scope 4): a full intent lifecycle on the paper venue over the demo
session, with the process killed (``os._exit``) just before its N-th journal step, then restarted on
the same state database, for every N.

Market: the synthetic demo session decoded once through the real codecs (:func:`record_tape`),
one book top, the second's low and high prints and the closed 1-minute bars per second of event
time. A manual long is entered after the cascade so the recovery carries it through the whole
lifecycle: entry fill → stop → take-profit ladder → TP1 → stop to breakeven + fees → trail/TP2/TP3.

A run is a forked child (the parent decoded the session once; a child starts in milliseconds): it
drives a :class:`~autotrader.trading.TradingStack` (engine, paper venue, journal, activity log, all
on the state database) and checks after every engine step that no position is without a stop, no
order exists twice, and the stop is at breakeven or better once a take-profit filled. Violations go
to a file at once (the process may die on the next line). The market resumes where it was: the
index of the event being processed is written (unsynced: only the process dies) before it is.

"Journal step" = a write of the order journal (intents, orders, protection plans) or of the state
store (the paper venue's account, the engine's control state): every write recovery depends on.
The activity log's rows are checked for integrity instead (nothing written before the kill is lost).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotrader.config import validate
from autotrader.trading import TradingStack
from core.bus import Bus, Topics
from core.clock import EventClock
from core.intents import INTENTS, Intent
from core.models import Bar, BookTop, Side, Trade
from core.venue import OrderType
from execution.paper import PaperVenue
from storage import faults
from tests.test_engine import report

KILLED = 77
CRASHED = 70
MARKET = "SOL-PERP"
JOURNAL_STORES = ("journal", "state")
STEP_MS = 250
EPS = 1e-7
CONFIG = {
    "guards": {"atr_period": 3},
    "engine": {"trail_atr_mult": 0.2, "retry_backoff_s": 0.0, "kill_backoff_s": 0.0, "call_timeout_s": 2.0,
               "replace_timeout_s": 600.0, "entry_ttl_s": 600.0},
}


@dataclass
class Tape:
    events: list[tuple[int, str, Any]] = field(default_factory=list)  # (ts ms, book|trade|bar, message)
    intent_at: int = 0
    intent: Intent | None = None


def record_tape(recording: Path, entry_minute: float = 30.5, start_minute: float = 14.0) -> Tape:
    """The demo session from ``start_minute`` (enough 5-minute bars for the ATR of the trail), one
    second at a time, through the live codecs (decoded once)."""
    from feeds.pipeline import MarketPipeline
    from feeds.replay import open_recording

    bus, clock = Bus(), EventClock()
    pipe = MarketPipeline(bus, binance_symbol=None, bybit_symbol="SOLUSDT", okx_usdc_inst="SOL-USDC-SWAP",
                          clock=clock)
    sec: dict[str, Any] = {}
    tape = Tape()

    def close_second(now_s: int) -> None:
        if sec.get("s") is not None and sec["s"] != now_s:
            s = sec["s"] * 1000 + 999
            if sec.get("lo") is not None:
                for px, side in ((sec["lo"], Side.SELL), (sec["hi"], Side.BUY)):
                    tape.events.append((s, "trade", Trade(venue="binance", symbol="SOLUSDT", ts=s, price=px,
                                                          qty=sec["qty"], side=side)))
            if sec.get("book") is not None:
                tape.events.append((s, "book", sec["book"]))
            sec.clear()
        sec["s"] = now_s

    def on_book(b: BookTop) -> None:
        if b.venue == "binance":
            close_second(b.timestamp // 1000)
            sec["book"] = b

    def on_trade(t: Trade) -> None:
        if t.venue != "binance":
            return
        close_second(t.ts // 1000)
        sec["lo"] = t.price if sec.get("lo") is None else min(sec["lo"], t.price)
        sec["hi"] = t.price if sec.get("hi") is None else max(sec["hi"], t.price)
        sec["qty"] = sec.get("qty", 0.0) + t.qty

    def on_bar(b: Bar) -> None:
        if b.closed:
            tape.events.append((b.timestamp + 60_000, "bar", b))

    bus.on(Topics.BOOK, on_book)
    bus.on(Topics.TRADES, on_trade)
    bus.on(Topics.BARS, on_bar)
    for f in open_recording(recording).frames():
        if f.kind == "recv":
            pipe.on_ws(f.venue, f.data, f.ts_ns)
        elif f.kind == "http":
            pipe.on_http(f.venue, f.url, f.data, f.ts_ns)
    pipe.flush()
    close_second(-1)
    tape.events.sort(key=lambda e: e[0])
    t0 = tape.events[0][0]
    tape.events = [e for e in tape.events if e[0] >= t0 + start_minute * 60_000]
    at = next(i for i, e in enumerate(tape.events) if e[0] >= t0 + entry_minute * 60_000 and e[1] == "book")
    bid = tape.events[at][2].bid_px
    tape.intent_at = at
    tape.intent = Intent(id="kp-long", ts=tape.events[at][0], symbol=MARKET, side="buy", price=bid, size=5.0,
                         sl=round(bid - 2.0, 2), tps=((round(bid + 1.2, 2), 0.5), (round(bid + 2.8, 2), 0.3),
                                                      (round(bid + 4.8, 2), 0.2)),
                         leverage=1.0, reason="kill-point harness", source="manual")
    return tape


# --------------------------------------------------------------------------- one run (in a child)
class _Run:
    def __init__(self, tape: Tape, work: Path, kill_at: int | None) -> None:
        self.tape = tape
        self.work = work
        self.kill_at = kill_at
        self.writes = 0
        self.violations = (work / "violations.jsonl").open("a")
        self.progress_fd = os.open(work / "progress", os.O_RDWR | os.O_CREAT, 0o600)
        raw = os.pread(self.progress_fd, 32, 0).strip()
        self.start = int(raw) if raw else 0
        self.steps = 0
        self.kinds: list[str] = []

    def hook(self, store: str, op: str) -> None:
        if store in JOURNAL_STORES:
            self.writes += 1
            if self.kill_at is not None and self.writes == self.kill_at:
                self.violations.flush()
                os._exit(KILLED)  # the process dies right before this journal step is written

    def violation(self, what: str, **data: Any) -> None:
        self.violations.write(json.dumps({"what": what, "step": self.steps, **data}, default=str) + "\n")
        self.violations.flush()

    def progress(self, i: int) -> None:
        os.pwrite(self.progress_fd, f"{i:>12}".encode(), 0)

    async def check(self, venue: PaperVenue) -> None:
        """After every engine step: protected, no order twice, breakeven after a take-profit."""
        self.steps += 1
        pos = venue.get_position(MARKET).size
        live = await venue.open_orders(MARKET)
        stops = [o for o in live if o.request.type == OrderType.TRIGGER_MARKET and o.request.reduce_only]
        if abs(pos) > EPS and sum(o.remaining for o in stops) < abs(pos) - EPS:
            self.violation("position without a stop", position=pos,
                           stops=[o.request.client_tag for o in stops])
        if len(stops) > 1:
            self.violation("two stops", stops=[o.request.client_tag for o in stops])
        tags = [o.request.client_tag for o in live]
        if len(tags) != len(set(tags)):
            self.violation("one order live twice", tags=tags)
        fills = venue.fill_history()
        tp_filled = any(":tp" in f.client_tag for f in fills)
        if pos > EPS and tp_filled and stops:
            be = _breakeven(fills)
            trig = stops[0].request.trigger_price or 0.0
            if trig < be - 1e-6:
                self.violation("no breakeven after a take-profit", stop=trig, breakeven=be)

    async def drive(self) -> None:
        tape, events = self.tape, self.tape.events
        clock = EventClock(events[self.start][0])
        bus = Bus()
        cfg = validate(CONFIG)
        stack = TradingStack(cfg, bus, clock, state_db=self.work / "state.sqlite3",
                             guard_now=lambda: report(clock.now_ms()), runtime_dir=self.work / "run",
                             on_event=lambda ev: self.kinds.append(ev.kind))
        venue = stack.venue
        assert isinstance(venue, PaperVenue)
        engine = stack.engine
        await engine.step()  # the restart's reconciliation (nothing to do on a first start)
        await self.check(venue)
        next_step = 0
        topic = {"book": Topics.BOOK, "trade": Topics.TRADES, "bar": Topics.BARS}
        for i in range(self.start, len(events)):
            self.progress(i)
            ts, kind, msg = events[i]
            clock.advance(ts)
            bus.publish(topic[kind], msg)
            if i == tape.intent_at:
                bus.publish(INTENTS, tape.intent)
            if ts >= next_step or venue.pending_events or engine.pending_intents:
                await engine.step()
                await self.check(venue)
                next_step = ts + STEP_MS
        await engine.step()
        await self.check(venue)
        self.progress(len(events))
        seen: dict[str, int] = {}
        for w in [*venue._live.values(), *venue._done.values()]:
            seen[w.req.client_tag] = seen.get(w.req.client_tag, 0) + 1
        twice = {t: n for t, n in seen.items() if n > 1}
        if twice:
            self.violation("an order sent twice", tags=twice)
        summary = {"writes": self.writes, "position": venue.get_position(MARKET).size,
                   "open_orders": len(venue._live), "tags": sorted(seen), "kinds": self.kinds}
        (self.work / "summary.json").write_text(json.dumps(summary))
        stack.close()


def _breakeven(fills: list[Any], taker_bps: float = 3.5, buffer_bps: float = 1.0) -> float:
    entry = [f for f in fills if f.client_tag.rsplit(":", 1)[-1].startswith(("e", "mc"))]
    q = sum(f.size for f in entry)
    avg = sum(f.size * f.price for f in entry) / q
    per_unit = max(0.0, sum(f.fee for f in entry) / q) + avg * (taker_bps + buffer_bps) / 1e4
    return avg + per_unit


def _child(tape: Tape, work: Path, kill_at: int | None) -> None:
    code = 0
    try:
        run = _Run(tape, work, kill_at)
        faults.set_write_hook(run.hook)
        asyncio.run(run.drive())
    except BaseException:
        (work / "crash.txt").write_text(traceback.format_exc())
        code = CRASHED
    os._exit(code)


def run_once(tape: Tape, work: Path, kill_at: int | None) -> int:
    """Fork a child that runs the session on ``work/state.sqlite3`` (from where the last run stopped);
    its exit code: 0 (ran to the end), KILLED (killed at ``kill_at``), CRASHED (see crash.txt)."""
    work.mkdir(parents=True, exist_ok=True)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _child(tape, work, kill_at)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def violations(work: Path) -> list[dict[str, Any]]:
    p = work / "violations.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def activity_rows(work: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{work / 'state.sqlite3'}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return list(conn.execute("SELECT id, ts_ms, kind, intent_id, order_id, message, data FROM activity "
                                 "ORDER BY id"))
    except sqlite3.OperationalError:
        return []  # killed before the database had its tables
    finally:
        conn.close()
