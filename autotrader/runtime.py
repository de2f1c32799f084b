"""Composition root for ``autotrader run``: bus + pipeline + feeds + guards + signal + engine and
venue (:mod:`autotrader.trading`) + storage + control socket + metrics + structured logs.

Live (default): the transports of :mod:`feeds.live` drive the pipeline, feed health comes from
their monitor, and 1m bars / funding / OI / liquidations / USDC trades go to Parquet storage.
With ``--replay`` a recording drives the runtime at X× its own pace (``max`` = as fast as
possible) on event time; after the data ends the instance keeps running until SIGINT/SIGTERM so
it can be inspected, with every feed reported ``down`` (fail closed: nothing is live any more).
SIGINT/SIGTERM/SIGHUP: stop the engine, leave the venue as ``engine.on_exit`` says (default: the
resting entries are cancelled, the stop and take-profits stay; :mod:`execution.leaving`), stop the
feeds, flush and close storage, exit 0.

Only live market data drives a live venue: a runtime on a recording builds
:class:`autotrader.paper_stack.PaperTradingStack` (the paper venue, whatever the config says).
Storage fails closed: a write the disk refuses waits in memory and is retried every second; the
engine takes no new risk meanwhile (``core.storage_health``), and it is said on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

from autotrader.config import default_data_dir
from autotrader.control import ControlError, ControlServer, default_socket_path
from autotrader.control_handlers import ControlHandlers
from autotrader.data_plane import DataPlane
from autotrader.delegation_control import DelegationControl
from autotrader.emit import bar_json, book_json, intent_json
from autotrader.logs import log_event, setup_logging
from autotrader.metrics import Metrics, MetricsServer, refresh_loop
from autotrader.onchain import OnchainServices
from autotrader.paper_stack import PaperTradingStack
from autotrader.replay_step import EventStepper
from autotrader.state_claim import StateLockError, claim_state
from autotrader.storage_metrics import bind_storage
from autotrader.trading import TradingStack, VenueUnavailable
from autotrader.ui_bridge import RuntimeCommands, open_settings
from autotrader.ui_server import UiServer
from core.bus import Bus, Topics
from core.clock import Clock, EventClock, WallClock
from core.config_schema import Config, to_dict
from core.exit_policy import exit_summary
from core.guard_monitor import GuardMonitor, SignalRunner
from core.guards import to_json as guards_to_json
from core.intents import INTENTS, Intent
from core.models import Bar, Basis, BookTop, FeedStatus, Funding, Liquidation, OpenInterest
from core.sanity import MarketSanity
from execution.leaving import LeaveReport, leave
from feeds.demo.script import chapters, fast_forward_until
from feeds.live import run_live
from feeds.pipeline import MarketPipeline
from feeds.replay import RecordingError, open_recording
from feeds.replay_health import ReplayHealth
from storage.parquet_store import ParquetStore
from storage.signals_jsonl import SignalsJsonl
from storage.sink import StorageSink
from storage.state_store import StateStore

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def max_ages(cfg: Config) -> dict[str, float]:
    return {
        "binance": cfg.feeds.binance_max_age_s,
        "bybit": cfg.feeds.bybit_max_age_s,
        "okx": cfg.feeds.okx_max_age_s,
    }


def parse_speed(text: str) -> float:
    if text.strip().lower() == "max":
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--speed must be a positive number or 'max', got {text!r}") from None
    if not value > 0 or math.isinf(value) or math.isnan(value):
        raise ValueError(f"--speed must be a positive number or 'max', got {text!r}")
    return value


class LatestState:
    """Latest value of each market topic, for status lines (the guards issue builds the full state)."""

    def __init__(self, bus: Bus) -> None:
        self.book: BookTop | None = None
        self.bar: Bar | None = None
        self.funding: Funding | None = None
        self.oi: OpenInterest | None = None
        self.basis: Basis | None = None
        self.liquidations = 0
        bus.on(Topics.BOOK, self._set_book)
        bus.on(Topics.BARS, self._set_bar)
        bus.on(Topics.FUNDING, self._set_funding)
        bus.on(Topics.OPEN_INTEREST, self._set_oi)
        bus.on(Topics.BASIS, self._set_basis)
        bus.on(Topics.LIQUIDATIONS, self._count_liq)

    def _set_book(self, m: BookTop) -> None:
        self.book = m

    def _set_bar(self, m: Bar) -> None:
        self.bar = m

    def _set_funding(self, m: Funding) -> None:
        self.funding = m

    def _set_oi(self, m: OpenInterest) -> None:
        self.oi = m

    def _set_basis(self, m: Basis) -> None:
        self.basis = m

    def _count_liq(self, m: Liquidation) -> None:
        self.liquidations += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "book": book_json(self.book) if self.book else None,
            "last_bar": bar_json(self.bar) if self.bar else None,
            "funding_apr": self.funding.apr_pct if self.funding else None,
            "oi_notional": self.oi.oi_notional if self.oi else None,
            "basis_bps": self.basis.basis_bps if self.basis else None,
            "liquidations": self.liquidations,
        }


class Runtime:
    """One process: ``replay_path=None`` runs live, otherwise the recording drives it."""

    def __init__(
        self,
        cfg: Config,
        replay_path: Path | None,
        speed: float,
        logger: logging.Logger,
        store_root: Path | None = None,
        state_db: Path | None = None,
        control_path: Path | None = None,
        settings_store: StateStore | None = None,
        fast_forward: bool = False,
    ) -> None:
        self.cfg = cfg
        self.replay_path = replay_path
        self.live = replay_path is None
        self.speed = speed
        self.log = logger
        self.bus = Bus()
        self.event_clock = EventClock()
        self.clock: Clock = WallClock() if self.live else self.event_clock
        self.pipeline = MarketPipeline(
            self.bus,
            binance_symbol=cfg.market.binance_symbol if self.live else None,
            bybit_symbol=cfg.market.bybit_symbol,
            okx_usdc_inst=cfg.market.okx_usdc_inst,
            okx_usdt_inst=cfg.market.okx_usdt_inst,
            clock=None if self.live else self.event_clock,
            sanity=MarketSanity.of(cfg.feeds),
        )
        self.state = LatestState(self.bus)
        self.live_status: dict[str, FeedStatus] = {}
        self.bus.on(Topics.FEED_STATUS, self._on_feed_status)
        self.sink: StorageSink | None = None
        if store_root is not None:
            store = ParquetStore(
                store_root,
                flush_interval_s=cfg.storage.flush_interval_s,
                clock=self.clock,
                retention_days=cfg.storage.retention_days,
                auto_flush=False,
            )
            self.sink = StorageSink(self.bus, store,
                                    signals_jsonl=SignalsJsonl(store_root, cfg.storage.retention_days))
        self.replay_done = False
        self.first_frame = asyncio.Event()
        self.replay_end = asyncio.Event()  # the recording has ended (or failed): the engine's loop runs
        self.fast_forward = fast_forward  # the demo's warm-up as fast as possible
        self.chapters: list[tuple[int, str]] = []  # the demo's script (event time, what it shows)
        self.t0 = time.monotonic()
        self.label = ""  # "synthetic demo" when the recording says so
        self.stop_event = asyncio.Event()
        self.started = asyncio.Event()  # the venue, the control socket and metrics are up
        self.start_error = ""  # why it could not start
        self.exit_code = 0
        self.replay_health = ReplayHealth(self.pipeline, max_ages(cfg))
        self.guards = GuardMonitor(self.bus, cfg.guards, self.clock, "live" if self.live else "replay",
                                   liq_map_max_age_ms=int(cfg.liqmap.max_age_s * 1000))
        self.metrics = Metrics()
        self.metrics.bind_bus(self.bus)
        # only live market data drives a live venue: a recording gets the paper-only stack
        stack = TradingStack if self.live else PaperTradingStack
        self.trading = stack(cfg, self.bus, self.clock, state_db=state_db, logger=logger,
                             metrics=self.metrics, guard_now=self.guards.check, guard_tick=self.guards.tick,
                             runtime_dir=(control_path or default_socket_path()).parent)
        self.trading.health.subscribe(self._on_storage_health)
        bind_storage(self.metrics, self.trading.health)
        self.leave_report: LeaveReport | None = None
        self.engine = self.trading.engine
        self.signal = SignalRunner(self.bus, self.guards, cfg.signal, cfg.risk, self.trading.equity,
                                   on_veto=self.engine.record_veto)  # vetoed setups: activity rows
        self.bus.on(INTENTS, self._on_intent)
        self.control_path = control_path
        self._tasks: set[asyncio.Task[Any]] = set()
        # windows, history on restart, the minute signals feed (autotrader/data_plane.py)
        self.data = DataPlane(cfg, self.bus, self.pipeline, self.guards, self.signal, self.clock, logger,
                              store_root)
        self.handlers = ControlHandlers(self.trading, self.guards, cfg.risk, self.status_line, self.spawn,
                                        windows=self.data.windows_json)
        self.delegation = DelegationControl(cfg, self.handlers, default_data_dir(),  # the UI's panel
                                            settings_store)
        self.onchain = OnchainServices(cfg, self.bus, self.live, logger, self.spawn,  # liq map, Helius
                                       liqmap_status=self.guards.set_liq_map_status)
        # the UI's commands, for the UI in this process and for `autotrader ui` (autotrader/ui_server.py)
        self.ui_commands = RuntimeCommands(self, settings_store)
        self.ui_server = UiServer(self.bus, self.ui_commands, tick_s=1.0 / cfg.ui.max_fps)

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """An owned task: kept until done, cancelled at shutdown (no fire-and-forget)."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_storage_health(self, store: str, failing: bool, error: str) -> None:
        if failing:
            log_event(self.log, "storage failing", logging.ERROR, store=store, error=error,
                      note="no new risk (REDUCING) until the writes succeed and the operator resumes")
        else:
            log_event(self.log, "storage writes again", logging.WARNING, store=store,
                      note="trading stays REDUCING until 'autotrader resume'")

    async def _state_flush_loop(self) -> None:
        """Write what waits in memory once the storage takes writes again (fail closed meanwhile)."""
        h = self.trading.health
        while True:
            await asyncio.sleep(1.0)
            if not h.ok or any(h.pending.values()):
                self.trading.flush_storage()

    def _on_intent(self, intent: Intent) -> None:
        log_event(self.log, "intent", **intent_json(intent))

    def _on_feed_status(self, st: FeedStatus) -> None:
        if self.live:
            self.live_status[st.feed] = st

    def feed_statuses(self) -> list[FeedStatus]:
        if self.live:
            return [self.live_status[k] for k in sorted(self.live_status)]
        self.replay_health.done = self.replay_done
        return self.replay_health.statuses(self.clock.now_ms())

    def status_line(self) -> dict[str, Any]:
        statuses = self.feed_statuses()
        return {
            "event_ts": self.clock.now_ms(),
            "data_source": "live" if self.live else "replay",
            **({"label": self.label} if self.label else {}),
            "replay_done": self.replay_done,
            "feeds": {
                s.feed: {
                    "state": s.state,
                    "age_s": s.last_msg_age_s,
                    "messages": s.messages,
                    "resyncs": s.resyncs,
                    "errors": s.errors,
                    "detail": s.detail,
                    "dropped": s.dropped,
                }
                for s in statuses
            },
            "market": self.state.as_dict() | self.data.market_json(),
            "guards": guards_to_json(self.guards.check()),
            "regime": {"on": self.signal.signal.regime.on, "reason": self.signal.signal.regime.reason},
            "trading": {k: v for k, v in self.engine.snapshot().items() if k != "active"}
            | {"active": len(self.engine.active())},
        }

    async def _replay(self, path: Path) -> None:
        try:
            recording = open_recording(path)
        except RecordingError as exc:
            log_event(self.log, "replay failed", logging.ERROR, error=str(exc))
            self.exit_code = 2
            self.stop_event.set()
            return
        header = recording.header or {}
        if header.get("synthetic"):
            self.label = str(header.get("label") or "synthetic demo")
        # the demo: its warm-up as fast as possible, then the chosen pace (feeds/demo/script.py)
        fast_ns = (fast_forward_until(header) or 0) * 1_000_000 if self.fast_forward else 0
        self.chapters = [(c.start_ms, c.line()) for c in chapters(header)]
        log_event(
            self.log,
            "replay started",
            path=str(self.replay_path),
            format=recording.format,
            speed="max" if math.isinf(self.speed) else self.speed,
        )
        on_ws, on_http = self.pipeline.on_ws, self.pipeline.on_http
        health = self.replay_health
        # the engine steps on event time after each frame, as in a backtest (autotrader/replay_step.py)
        stepper = EventStepper(self.engine, self.trading.venue, self.cfg.engine.poll_interval_s)
        clock, stop = self.event_clock, self.stop_event
        first_ns: int | None = None
        start = time.monotonic()
        n = 0
        try:
            for f in recording.frames():
                if stop.is_set():
                    return  # stopping: the engine is not stepped any more (leaving comes next)
                if first_ns is None:
                    first_ns = f.ts_ns
                    await self.data.load_history(f.ts_ns // 1_000_000)  # before the first frame applies
                if fast_ns and f.ts_ns >= fast_ns:
                    fast_ns, start, first_ns = 0, time.monotonic(), f.ts_ns  # the chosen pace from here
                    log_event(self.log, "warm-up fast-forwarded", frames=n, wall_s=round(start - self.t0, 2))
                if not fast_ns and not math.isinf(self.speed):
                    due = start + (f.ts_ns - first_ns) / 1e9 / self.speed
                    delay = due - time.monotonic()
                    if delay > 0.001:
                        await stepper.wait(delay, stop, clock.now_ms())
                elif n % 2000 == 0:
                    await asyncio.sleep(0)
                if f.kind == "recv":
                    on_ws(f.venue, f.data, f.ts_ns)
                elif f.kind == "http":
                    on_http(f.venue, f.url, f.data, f.ts_ns)
                now = clock.now_ms()
                health.maybe_publish(self.bus, now)
                n += 1
                if not self.first_frame.is_set() and now > 0:
                    self.first_frame.set()  # the first frame that gave the clock a time
                    self._startup_row()
                if now > 0 and stepper.due(now):
                    await stepper.step(now)
        except RecordingError as exc:
            log_event(self.log, "replay error", logging.ERROR, error=str(exc))
        finally:
            self.replay_end.set()  # the engine's own loop takes over
        self.pipeline.flush()
        self.first_frame.set()  # a recording that never gave the clock a time still starts the engine
        self.replay_done = True
        health.done = True
        health.maybe_publish(self.bus, self.event_clock.now_ms())
        log_event(
            self.log,
            "replay finished",
            frames=n,
            recording=recording.stats.as_dict(),
            codecs={v: c.stats.as_dict() for v, c in self.pipeline.codecs.items()},
            dropped={v: d for v in self.pipeline.codecs if (d := self.pipeline.dropped(v))},
        )
        log_event(self.log, "status", **self.status_line())

    async def _live(self) -> None:
        log_event(self.log, "live feeds starting", market=to_dict(self.cfg)["market"])
        await self.data.load_history(self.clock.now_ms())
        await run_live(self.cfg, self.bus, self.pipeline, self.stop_event)
        self.pipeline.flush()  # the bar in progress, stored unclosed: a restart resumes it
        codecs = {v: c.stats.as_dict() for v, c in self.pipeline.codecs.items()}
        log_event(self.log, "live feeds stopped", codecs=codecs)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.logging.status_interval_s)
            log_event(self.log, "status", **self.status_line())

    async def _storage_loop(self) -> None:
        sink = self.sink
        assert sink is not None
        while True:
            await asyncio.sleep(1.0)
            try:
                await asyncio.to_thread(sink.tick)
            except OSError as exc:
                log_event(self.log, "storage flush failed", logging.ERROR, error=str(exc))

    async def _start_services(self) -> tuple[ControlServer, MetricsServer | None]:
        path = self.control_path or default_socket_path()
        control = ControlServer(path, {**self.handlers.handlers(), **self.ui_server.handlers(),
                                       **self.delegation.handlers_table()},
                                self.ui_server.streams())
        await control.start()
        log_event(self.log, "control socket", path=str(path))
        metrics = None
        if self.cfg.metrics.port:
            metrics = self.metrics.start_http(self.cfg.metrics.host, self.cfg.metrics.port)
            if metrics is not None:
                log_event(self.log, "metrics", url=metrics.url)
                self.metrics.info.labels(data_source="live" if self.live else "replay",
                                         venue=self.cfg.engine.venue).set(1)
                self.spawn(refresh_loop(self.metrics, self.engine.snapshot, self.trading.equity,
                                        self.trading.status), "metrics:refresh")
        try:
            await self.onchain.start()  # liq-map scanner, Helius receiver (autotrader/onchain.py)
        except BaseException:
            await self.onchain.close()
            await control.close()
            if metrics is not None:
                metrics.close()
            raise
        return control, metrics

    def _startup_row(self) -> None:
        if self.trading.activity is not None:
            self.trading.activity.append("startup", ts_ms=self.clock.now_ms(), message="started",
                                         data={"data_source": "live" if self.live else "replay"})

    async def _engine_main(self) -> None:
        """The engine, once the clock means something, so the restart reconciliation and every row
        it writes carry a real time. On a replay the replay steps it on event time until the data
        ends (autotrader/replay_step.py); then its own loop runs."""
        if self.live:
            self._startup_row()
        else:
            await self.replay_end.wait()
            if not self.first_frame.is_set():  # a recording that never gave the clock a time
                self.first_frame.set()
                self._startup_row()
        await self.engine.run()

    async def _shutdown_engine(self, engine_task: asyncio.Task[None]) -> None:
        self.engine.stop()
        if not self.live and not self.replay_end.is_set():
            engine_task.cancel()  # its loop never started: the replay was stepping it
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(engine_task), timeout=5)
        mode = self.cfg.engine.on_exit
        summary = f"on exit ({mode}): the venue could not be checked"
        data: dict[str, Any] = {"mode": mode}
        try:
            report = self.leave_report = await asyncio.wait_for(leave(self.engine, mode), 20)
            summary = exit_summary(mode, report.cancelled, report.kept, report.position)
            data.update(cancelled=report.cancelled, kept=report.kept, position=report.position,
                        confirmed=report.confirmed, errors=report.errors)
            log_event(self.log, "leaving", logging.WARNING if report.errors else logging.INFO,
                      summary=summary, **data)
        except Exception as e:  # recorded; the operator must check the venue
            log_event(self.log, "leaving failed", logging.ERROR, mode=mode, error=repr(e))
            data["error"] = repr(e)
        if self.trading.activity is not None:
            snap = self.engine.snapshot()
            self.trading.activity.append(
                "shutdown", ts_ms=self.clock.now_ms(), message="stopped; " + summary,
                data={**data, "trading_state": snap["trading_state"], "active": len(snap["active"])})

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:  # SIGHUP: the SSH session dropped
            loop.add_signal_handler(sig, self.stop_event.set)
        try:
            await self.trading.start()
            control, metrics_http = await self._start_services()
        except (ControlError, OSError, ValueError, VenueUnavailable) as exc:
            log_event(self.log, "cannot start", logging.ERROR, error=str(exc))
            self.start_error = str(exc)
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
            await self.trading.aclose()
            self.trading.close()
            return 2
        self.started.set()
        main = self._live() if self.replay_path is None else self._replay(self.replay_path)
        engine_task = asyncio.create_task(self._engine_main(), name="engine")
        tasks = [
            asyncio.create_task(main, name="live" if self.live else "replay"),
            asyncio.create_task(self._status_loop(), name="status"),
            asyncio.create_task(self._state_flush_loop(), name="state-flush"),
        ]
        if self.sink is not None:
            tasks.append(asyncio.create_task(self._storage_loop(), name="storage"))
        try:
            await self.stop_event.wait()
        finally:
            if not self.live:  # the replay steps the engine: it stops (between frames) before leaving
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(tasks[0]), timeout=10)
            await self._shutdown_engine(engine_task)
            await self.onchain.close()
            await control.close()
            if metrics_http is not None:
                metrics_http.close()
            tasks.append(engine_task)
            tasks.extend(self._tasks)
            # the live task stops by itself on stop_event (closing its session); give it time
            if self.live:
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(tasks[0]), timeout=10)
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            if self.sink is not None:
                self.sink.close()
            await self.trading.aclose()
            self.trading.close()
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        log_event(self.log, "stopped", exit_code=self.exit_code)
        return self.exit_code


def run_runtime(
    cfg: Config,
    replay_path: Path | None,
    speed: float,
    store_root: Path | None = None,
    state_db: Path | None = None,
    control_path: Path | None = None,
    fresh: bool = False,
    fast_forward: bool = False,
) -> int:
    """``fresh``: wipe the state database first (the demo), once its lock is held; ``fast_forward``:
    the demo's warm-up as fast as possible."""
    try:
        lock = claim_state(state_db, fresh=fresh) if state_db is not None else None
    except StateLockError as exc:
        print(f"autotrader: {exc}", file=sys.stderr)
        return 2
    try:
        return _run_runtime(cfg, replay_path, speed, store_root, state_db, control_path, fast_forward)
    finally:
        if lock is not None:
            lock.release()


def _run_runtime(cfg: Config, replay_path: Path | None, speed: float, store_root: Path | None,
                 state_db: Path | None, control_path: Path | None, fast_forward: bool = False) -> int:
    logger = setup_logging(cfg.logging.level)
    store: StateStore | None = None
    if state_db is not None:  # the settings an attached UI saves (the same file as the in-process UI's)
        cfg, store, note = open_settings(cfg, state_db)
        if note:
            log_event(logger, note, logging.WARNING)

    async def main() -> int:
        try:
            runtime = Runtime(cfg, replay_path, speed, logger, store_root, state_db=state_db,
                              control_path=control_path, settings_store=store, fast_forward=fast_forward)
        except VenueUnavailable as exc:
            log_event(logger, "cannot start", logging.ERROR, error=str(exc))
            return 2
        return await runtime.run()

    try:
        return asyncio.run(main())
    finally:
        if store is not None:
            store.close()
