"""Backtest: a recording replayed through codecs → pipeline → guards → signal → engine → paper venue,
on event time, with the same objects a live run uses (only the clock and the state store differ:
event time, everything in memory).

The engine steps every ``engine.poll_interval_s`` of event time (as the live loop does in wall
time) and at once whenever the paper venue has something to report (a fill, a trigger) or an
intent is waiting, so a fill is protected within the same engine step as live. Manual intents
(``autotrader intent --replay``) are injected at their event time through the control path's own
intent builder.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from autotrader.paper_stack import PaperTradingStack
from autotrader.runtime import max_ages
from core.bus import Bus, Topics
from core.clock import EventClock
from core.config_schema import Config
from core.data_gaps import DataGaps
from core.engine_types import EngineEvent
from core.funnel import Funnel, funnel
from core.guard_monitor import GuardMonitor, SignalRunner
from core.intents import INTENTS
from core.manual import build_manual_intent
from core.sanity import MarketSanity
from core.venue import Fill
from execution.paper import PaperVenue
from feeds.feeder import NO_END, NO_START, FrameFeeder
from feeds.pipeline import MarketPipeline
from feeds.replay import Recording, open_recording
from feeds.replay_health import ReplayHealth


@dataclass
class ManualOrder:
    """A manual intent to inject: at ``at_ms`` (event time), or ``offset_ms`` after the first frame."""

    side: str
    size: float
    sl: float
    price: float | None = None
    tps: list[tuple[float, float | None]] = field(default_factory=list)
    at_ms: int | None = None
    offset_ms: int = 0
    id: str = "manual-1"


class Trade(msgspec.Struct, kw_only=True):
    intent_id: str
    side: str
    source: str
    entry_ts: int
    exit_ts: int | None
    size: float
    avg_entry: float
    avg_exit: float | None
    pnl: float  # realized, net of this trade's fees
    fees: float
    outcome: str


class BacktestReport(msgspec.Struct, kw_only=True):
    path: str
    frames: int
    event_span_s: float
    wall_s: float
    events_per_s: float
    intents: int
    accepted: int
    rejected: int
    trades: list[Trade]
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    funding: float
    net_pnl: float
    start_equity: float
    end_equity: float
    max_drawdown_usd: float
    max_drawdown_pct: float
    guard_blocks: int
    guard_rejections: int
    kills: list[str]
    open_position: float
    open_orders: int
    recording: dict[str, Any]
    funnel: Funnel = msgspec.field(default_factory=Funnel)
    warnings: list[str] = msgspec.field(default_factory=list)  # truncated or gappy data, said always


def _trades(fills: list[Fill], events: list[EngineEvent], sources: dict[str, str]) -> list[Trade]:
    by_intent: dict[str, list[Fill]] = {}
    for f in fills:
        iid = f.client_tag.rsplit(":", 1)[0]
        by_intent.setdefault(iid, []).append(f)
    outcome = {e.intent_id: str(e.data.get("outcome", "")) for e in events if e.kind == "intent_done"}
    side = {e.intent_id: str(e.data.get("side", "")) for e in events if e.kind == "intent_accepted"}
    out: list[Trade] = []
    for iid, fs in by_intent.items():
        if iid not in side:
            continue  # kill-switch flatten orders and the like: in the totals, not a trade
        sign = 1.0 if side[iid] == "buy" else -1.0
        entry = [f for f in fs if (1.0 if f.side == "buy" else -1.0) == sign]
        exit_ = [f for f in fs if (1.0 if f.side == "buy" else -1.0) != sign]
        q_in = sum(f.size for f in entry)
        q_out = sum(f.size for f in exit_)
        if q_in <= 0:
            continue
        avg_in = sum(f.size * f.price for f in entry) / q_in
        avg_out = sum(f.size * f.price for f in exit_) / q_out if q_out > 0 else None
        fees = sum(f.fee for f in fs)
        gross = sign * (avg_out - avg_in) * q_out if avg_out is not None else 0.0
        out.append(Trade(intent_id=iid, side=side[iid], source=sources.get(iid, ""), entry_ts=entry[0].ts,
                         exit_ts=exit_[-1].ts if exit_ else None, size=q_in, avg_entry=avg_in,
                         avg_exit=avg_out, pnl=gross - fees, fees=fees, outcome=outcome.get(iid, "open")))
    return out


def merged_stats(recs: Sequence[Recording]) -> dict[str, Any]:
    """One recording's stats as they are; several recordings' added up (errors name their file)."""
    if len(recs) == 1:
        return recs[0].stats.as_dict()
    out: dict[str, Any] = {"lines": 0, "frames": 0, "bad_lines": 0, "skipped": 0, "truncated": False,
                           "truncated_line": 0, "errors": []}
    for r in recs:
        st = r.stats
        for k in ("lines", "frames", "bad_lines", "skipped"):
            out[k] += getattr(st, k)
        if st.truncated and not out["truncated"]:
            out["truncated"], out["truncated_line"] = True, st.truncated_line
        out["errors"] += [[line, f"{r.path.name}: {msg}"] for line, msg in st.errors]
    return out


class Backtest:
    """``path``: one recording, or several replayed one after the other as one stream (in the order
    given); ``start_ms``/``end_ms``: only frames received in ``[start_ms, end_ms)`` (UTC ms)."""

    def __init__(self, cfg: Config, path: Path | Sequence[Path], manual: list[ManualOrder] | None = None,
                 start_ms: int | None = None, end_ms: int | None = None) -> None:
        self.cfg = cfg
        self.paths = [path] if isinstance(path, Path) else list(path)
        self.path = self.paths[0] if len(self.paths) == 1 else Path(", ".join(map(str, self.paths)))
        self.start_ms, self.end_ms = start_ms, end_ms
        self.manual = sorted(manual or [], key=lambda m: (m.at_ms or 0, m.offset_ms))
        self.bus = bus = Bus()
        self.clock = clock = EventClock()
        self.pipeline = MarketPipeline(bus, binance_symbol=None, bybit_symbol=cfg.market.bybit_symbol,
                                       okx_usdc_inst=cfg.market.okx_usdc_inst,
                                       okx_usdt_inst=cfg.market.okx_usdt_inst, clock=clock,
                                       sanity=MarketSanity.of(cfg.feeds))
        self.health = ReplayHealth(self.pipeline, max_ages(cfg))
        self.guards = GuardMonitor(bus, cfg.guards, clock, "replay")
        self.events: list[EngineEvent] = []
        self.stack = PaperTradingStack(cfg, bus, clock, state_db=None, guard_now=self.guards.check,
                                  guard_tick=self.guards.tick,
                                  on_event=self.events.append)
        self.signal = SignalRunner(bus, self.guards, cfg.signal, cfg.risk, self.stack.equity,
                                   on_veto=self.stack.engine.record_veto)
        venue = self.stack.venue
        assert isinstance(venue, PaperVenue)
        self.venue = venue
        self.sources: dict[str, str] = {}
        bus.on(INTENTS, lambda it: self.sources.__setitem__(it.id, it.source))
        self.gaps = DataGaps()
        bus.on(Topics.FEED_STATUS, self.gaps.on_status)

    def _inject(self, m: ManualOrder) -> None:
        e = self.stack.engine
        intent = build_manual_intent(intent_id=m.id, ts=self.clock.now_ms(), market=e.cfg.market, side=m.side,
                                     size=m.size, sl=m.sl, price=m.price, bid=e.bid, ask=e.ask, tps=m.tps,
                                     default_split=self.cfg.risk.tp_split, equity_usd=e.start_equity)
        self.bus.publish(INTENTS, intent)

    @staticmethod
    def _due(m: ManualOrder, first_ms: int) -> int:
        return m.at_ms if m.at_ms is not None else first_ms + m.offset_ms

    async def run(self, progress: Callable[[int], None] | None = None) -> BacktestReport:
        recs = [open_recording(p) for p in self.paths]
        t0 = time.perf_counter()
        gc.freeze()  # what exists now lives for the whole run: no collection needs to walk it again
        try:
            return await self._run(recs, t0, progress)
        finally:
            gc.unfreeze()

    async def _run(self, recs: list[Recording], t0: float,
                   progress: Callable[[int], None] | None) -> BacktestReport:
        engine, venue, health = self.stack.engine, self.venue, self.health
        now_ms = self.clock.now_ms
        step_ms = int(self.cfg.engine.poll_interval_s * 1000)
        start_eq = venue.equity()
        peak, max_dd, max_dd_pct = start_eq, 0.0, 0.0
        manual = list(self.manual)
        first_ms: int | None = None
        next_step = 0
        # after each frame that changed something (see FrameFeeder): the frames in between change
        # nothing these checks read, so they would decide what they decided after the last one
        feeder = FrameFeeder(self.pipeline, recs, progress,
                             start_ns=NO_START if self.start_ms is None else self.start_ms * 1_000_000,
                             end_ns=NO_END if self.end_ms is None else self.end_ms * 1_000_000)
        # The loop below does nothing after a frame unless the event time reached one of its
        # thresholds (wake_ms) or the venue or the engine has something pending (gate): the
        # feeder may skip giving it control otherwise (it still routes every event).
        feeder.clock = now_ms
        feeder.gate = lambda: venue.pending_events or engine.pending_intents
        never = 1 << 62
        for _ in feeder:
            now = now_ms()
            last_health = health.last_published_ms
            if last_health is None or now - last_health >= 1000:  # its own check, done inline
                health.maybe_publish(self.bus, now)
            if first_ms is None and now > 0:
                first_ms = now
            while manual and first_ms is not None and now >= self._due(manual[0], first_ms):
                self._inject(manual.pop(0))
            pending = venue.pending_events or engine.pending_intents
            if now >= next_step or pending:
                await engine.step()
                next_step = now + step_ms
                eq = venue.equity()
                peak = max(peak, eq)
                if peak - eq > max_dd:
                    max_dd, max_dd_pct = peak - eq, (peak - eq) / peak * 100
                pending = venue.pending_events or engine.pending_intents
            # a plain frame would step the engine again while something is pending
            feeder.every = pending or step_ms <= 0
            last_health = health.last_published_ms
            feeder.wake_ms = min(
                next_step,
                1 if last_health is None else last_health + 1000,
                1 if first_ms is None else never,
                self._due(manual[0], first_ms) if manual and first_ms is not None else never,
            )
        n = feeder.frames
        self.pipeline.flush()
        health.done = True
        health.maybe_publish(self.bus, now_ms())
        await engine.step()
        wall = time.perf_counter() - t0
        return self._report(merged_stats(recs), n, first_ms, wall, start_eq, max_dd, max_dd_pct)

    def _report(self, stats: dict[str, Any], n: int, first_ms: int | None, wall: float, start_eq: float,
                max_dd: float, max_dd_pct: float) -> BacktestReport:
        v, ev = self.venue, self.events
        fills = v.fill_history()
        pos = v.get_position(self.stack.engine.cfg.market)
        rejected = [e for e in ev if e.kind == "intent_rejected"]
        guard_rej = [e for e in rejected if any("guard" in str(r) for r in e.data.get("reasons", []))]
        span = (self.clock.now_ms() - first_ms) / 1000 if first_ms else 0.0
        return BacktestReport(
            path=str(self.path), frames=n, event_span_s=span, wall_s=wall,
            events_per_s=n / wall if wall else 0.0,
            intents=len(self.sources), accepted=sum(1 for e in ev if e.kind == "intent_accepted"),
            rejected=len(rejected), trades=_trades(fills, ev, self.sources), realized_pnl=v.realized_pnl(),
            unrealized_pnl=v.unrealized_pnl(), fees=v.total_fees(), funding=v.total_funding(),
            net_pnl=v.equity() - start_eq, start_equity=start_eq, end_equity=v.equity(),
            max_drawdown_usd=max_dd, max_drawdown_pct=max_dd_pct,
            guard_blocks=sum(1 for e in ev if e.kind == "guard_block"), guard_rejections=len(guard_rej),
            kills=[str(e.data.get("reason", "")) for e in ev if e.kind == "kill_switch"
                   and e.data.get("stage") == "engaged"],
            open_position=pos.size, open_orders=v.live_order_count(), recording=stats,
            funnel=funnel(ev, self.sources), warnings=self._warnings(stats),
        )

    def _warnings(self, stats: dict[str, Any]) -> list[str]:
        """What makes the result less than the recording promises: cut, unreadable or missing data."""
        out: list[str] = []
        if stats.get("truncated"):
            out.append(f"the recording is truncated at line {stats.get('truncated_line')}: only what came "
                       f"before was replayed")
        if stats.get("bad_lines"):
            out.append(f"{stats['bad_lines']} line(s) of the recording could not be read and were skipped")
        out += self.gaps.warnings()
        for venue, codec in sorted(self.pipeline.codecs.items()):
            st = codec.stats.as_dict()
            gaps, resyncs = st.get("gaps", 0), st.get("resyncs", 0)
            if gaps:
                out.append(f"{venue}: {gaps} sequence gap(s) in the book updates ({resyncs} resync(s))")
        return out
