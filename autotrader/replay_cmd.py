"""``autotrader replay``: drive the live codecs from a recording and print one kind of output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from autotrader.emit import EMITTERS
from autotrader.progress import frame_progress
from autotrader.runtime import max_ages
from core.bus import Bus
from core.clock import EventClock
from core.config_schema import Config
from core.guard_monitor import GuardMonitor, SignalRunner
from core.sanity import MarketSanity
from feeds.feeder import FrameFeeder
from feeds.pipeline import MarketPipeline
from feeds.replay import RecordingError, open_recording
from feeds.replay_health import ReplayHealth


class _JsonLines:
    """Buffered JSON-lines writer on a binary stream."""

    def __init__(self, out: IO[bytes], batch: int = 512) -> None:
        self.out = out
        self.buf: list[bytes] = []
        self.batch = batch

    def __call__(self, obj: dict[str, Any]) -> None:
        self.buf.append(orjson.dumps(obj))
        if len(self.buf) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.out.write(b"\n".join(self.buf) + b"\n")
            self.buf.clear()
        self.out.flush()


def _printer(writer: _JsonLines, serialize: Callable[[Any], dict[str, Any]]) -> Callable[[Any], None]:
    def handler(msg: Any) -> None:
        writer(serialize(msg))

    return handler


def run_replay(
    cfg: Config, path: Path, emit: str, *, symbol: str | None, progress: bool, out: IO[bytes] | None = None
) -> int:
    try:
        recording = open_recording(path)
    except RecordingError as exc:
        print(f"autotrader: {exc}", file=sys.stderr)
        return 2
    bus = Bus()
    pipeline = MarketPipeline(
        bus,
        binance_symbol=symbol,
        bybit_symbol=cfg.market.bybit_symbol,
        okx_usdc_inst=None,
        sanity=MarketSanity.of(cfg.feeds),
    )
    writer = _JsonLines(out if out is not None else sys.stdout.buffer)
    if emit in ("guards", "intents"):
        clock = EventClock()
        pipeline.clock = clock
        monitor = GuardMonitor(bus, cfg.guards, clock, "replay")
        SignalRunner(bus, monitor, cfg.signal, cfg.risk, lambda: cfg.paper.equity_usd)
        health = ReplayHealth(pipeline, max_ages(cfg))
    for topic, serialize in EMITTERS[emit]:
        bus.on(topic, _printer(writer, serialize))
    try:
        with frame_progress(path.name, progress) as tick:
            # health is checked after every frame that changed something (FrameFeeder): a frame
            # that produced no event leaves the event clock where it was
            feeder = FrameFeeder(pipeline, recording, tick, 2000)
            if emit in ("guards", "intents"):
                for _ in feeder:
                    health.maybe_publish(bus, clock.now_ms())
                pipeline.flush()
                health.done = True
                health.maybe_publish(bus, clock.now_ms())
            else:
                for _ in feeder:
                    pass
                pipeline.flush()
    except RecordingError as exc:
        writer.flush()
        print(f"autotrader: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    writer.flush()
    summary = {
        "recording": {"path": str(path), "format": recording.format, **recording.stats.as_dict()},
        "codecs": {
            venue: codec.stats.as_dict() for venue, codec in pipeline.codecs.items() if codec.stats.frames
        },
        "dropped": {venue: d for venue in pipeline.codecs if (d := pipeline.dropped(venue))},
    }
    sys.stderr.write(orjson.dumps({"summary": summary}).decode() + "\n")
    if recording.stats.truncated:
        print(
            f"autotrader: warning: {path}: recording truncated at line {recording.stats.truncated_line}",
            file=sys.stderr,
        )
    return 0
