"""The recorder: every raw websocket frame, REST body, send, connect and disconnect of a live
session, in the project's own recording format (``autotrader-rec/1``, see
docs/RECORDING_FORMAT.md), zstd-compressed, one file per UTC hour.

:class:`HourlyRecorder` is a :class:`~feeds.transport.ws.Tap`: the transports call it with each
frame *before* the codec sees it. Files are named ``<prefix>-YYYYMMDDTHHZ.jsonl.zst`` (a ``-N``
suffix when the name is taken, e.g. after a restart within the hour: a crashed file is never
appended to). Each file starts with a header, so it replays on its own; on rotation the recorder
calls ``on_rotate`` (wired by :func:`feeds.live.run_live` to re-fetch the Binance snapshot and the
instruments) so the new file carries the state replay needs.

Secrets: the header carries the market-data venues' endpoints with :func:`core.secrets.redact_tree`
applied, and every recorded URL goes through :func:`core.secrets.redact_url` (an API key in a
query string, the userinfo or a key-like path segment is ``***``; public REST paths and their
parameters stay, so replay still routes them). Files are 0600 in a 0700 directory.

Loss window: a background task flushes a decodable compressed block every ``flush_interval_s``
(the writer also flushes on writes past that interval), so SIGKILL loses at most about that much
and every file left behind reads up to its last flushed block.

Entry point for ``autotrader record --out DIR [--duration D]``::

    await run_record(cfg, out_dir, duration_s=None, stop_event=None)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.bus import Bus
from core.config_schema import Config, to_dict
from core.sanity import MarketSanity
from core.secrets import redact_tree, redact_url
from feeds.live import LiveFeeds, LiveOptions
from feeds.pipeline import MarketPipeline
from feeds.replay.writer import RecordingWriter

log = logging.getLogger(__name__)


class HourlyRecorder:
    """Records raw traffic into hourly rotated, compressed files. Never raises from a tap call."""

    def __init__(self, out_dir: str | Path, *, prefix: str = "autotrader", suffix: str = ".jsonl.zst",
                 flush_interval_s: float = 1.0, rotate_s: int = 3600, meta: Mapping[str, Any] | None = None,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the CLI made it (and parents) 0700
        self.prefix = prefix
        self.suffix = suffix
        self.flush_interval_s = flush_interval_s
        self.rotate_s = rotate_s
        self.meta = dict(meta or {})
        self.clock_ns = clock_ns
        self.files: list[Path] = []
        self.records = 0
        self.frames = 0  # data: websocket messages and REST bodies
        self.errors = 0
        self.on_rotate: Callable[[], None] | None = None
        self._writer: RecordingWriter | None = None
        self._period: int | None = None
        self._closed = False

    # ------------------------------------------------------------------ files
    def _name(self, period: int) -> Path:
        fmt = "%Y%m%dT%H%M" if self.rotate_s % 3600 else "%Y%m%dT%H"
        stamp = datetime.fromtimestamp(period * self.rotate_s, UTC).strftime(fmt)
        path = self.out_dir / f"{self.prefix}-{stamp}Z{self.suffix}"
        n = 1
        while path.exists():
            path = self.out_dir / f"{self.prefix}-{stamp}Z-{n}{self.suffix}"
            n += 1
        return path

    def _writer_for(self, ts_ns: int) -> RecordingWriter | None:
        if self._closed:
            return None
        period = ts_ns // (self.rotate_s * 1_000_000_000)
        w = self._writer
        if w is not None and period == self._period:
            return w
        rotated = w is not None
        if w is not None:
            self._close_writer()
        path = self._name(period)
        try:
            w = RecordingWriter(path, meta={"source": "autotrader record", **self.meta},
                                flush_interval_s=self.flush_interval_s, flush_every=1 << 30,
                                clock_ns=self.clock_ns)
        except OSError as exc:
            self.errors += 1
            log.error("recorder: cannot open %s: %s", path, exc)
            return None
        self._writer, self._period = w, period
        self.files.append(path)
        log.info("recording to %s", path)
        if rotated and self.on_rotate is not None:
            try:
                self.on_rotate()
            except Exception:
                log.exception("recorder: on_rotate failed")
        return w

    def _close_writer(self) -> None:
        w, self._writer = self._writer, None
        if w is not None:
            try:
                w.close()
            except OSError as exc:
                self.errors += 1
                log.error("recorder: close %s failed: %s", w.path, exc)

    def _do(self, ts_ns: int, fn: Callable[[RecordingWriter], None]) -> None:
        w = self._writer_for(ts_ns)
        if w is None:
            return
        try:
            fn(w)
            self.records += 1
        except (OSError, ValueError) as exc:
            self.errors += 1
            if self.errors <= 10:
                log.error("recorder: write to %s failed: %s", w.path, exc)

    # ------------------------------------------------------------------ Tap
    def connect(self, conn: str, url: str, ts_ns: int) -> None:
        self._do(ts_ns, lambda w: w.write_connect(conn, redact_url(url), ts_ns))

    def disconnect(self, conn: str, reason: str, ts_ns: int) -> None:
        self._do(ts_ns, lambda w: w.write_disconnect(conn, reason, ts_ns))

    def recv(self, conn: str, data: bytes | str, ts_ns: int) -> None:
        w = self._writer
        if w is None or ts_ns // (self.rotate_s * 1_000_000_000) != self._period:
            before = self.records
            self._do(ts_ns, lambda w: w.write_recv(conn, data, ts_ns))
            self.frames += self.records - before
            return
        try:  # hot path
            w.write_recv(conn, data, ts_ns)
            self.records += 1
            self.frames += 1
        except (OSError, ValueError) as exc:
            self.errors += 1
            if self.errors <= 10:
                log.error("recorder: write to %s failed: %s", w.path, exc)

    def send(self, conn: str, data: str, ts_ns: int) -> None:
        self._do(ts_ns, lambda w: w.write_send(conn, data, ts_ns))

    def http(self, conn: str, url: str, data: bytes, ts_ns: int) -> None:
        before = self.records
        self._do(ts_ns, lambda w: w.write_http(conn, redact_url(url), data, ts_ns))
        self.frames += self.records - before

    # ------------------------------------------------------------------ lifecycle
    def flush(self) -> None:
        w = self._writer
        if w is not None:
            try:
                w.flush()
            except (OSError, ValueError) as exc:
                self.errors += 1
                log.error("recorder: flush %s failed: %s", w.path, exc)

    async def run_flusher(self) -> None:
        """Flush every ``flush_interval_s`` and rotate on time even when no frame arrives."""
        while True:
            await asyncio.sleep(self.flush_interval_s)
            if self._writer is not None:
                self._writer_for(self.clock_ns())
            self.flush()

    def close(self) -> None:
        self._close_writer()
        self._closed = True


@dataclass(slots=True)
class RecordResult:
    files: list[Path] = field(default_factory=list)
    records: int = 0
    errors: int = 0
    frames: int = 0  # data frames (messages and REST bodies) among the records
    feeds: LiveFeeds | None = None


async def run_record(cfg: Config, out_dir: str | Path, duration_s: float | None = None,
                     stop_event: asyncio.Event | None = None, *, flush_interval_s: float = 1.0,
                     options: LiveOptions | None = None, bus: Bus | None = None) -> RecordResult:
    """Record every live feed into ``out_dir`` until ``duration_s`` elapsed or ``stop_event`` set.

    The frames also drive a pipeline (so the Binance book asks for its snapshots as live does)."""
    bus = bus or Bus()
    stop = stop_event or asyncio.Event()
    pipeline = MarketPipeline(bus, binance_symbol=cfg.market.binance_symbol,
                              bybit_symbol=cfg.market.bybit_symbol, okx_usdc_inst=cfg.market.okx_usdc_inst,
                              okx_usdt_inst=cfg.market.okx_usdt_inst, sanity=MarketSanity.of(cfg.feeds))
    tree = to_dict(cfg)
    all_venues = tree["venues"]
    assert isinstance(all_venues, dict)
    venues = {k: v for k, v in all_venues.items() if k in ("binance", "bybit", "okx")}  # what is recorded
    rec = HourlyRecorder(out_dir, flush_interval_s=flush_interval_s,
                         meta={"venues": redact_tree(venues, "venues"), "market": tree["market"]})
    feeds = LiveFeeds(cfg, bus, pipeline, tap=rec, options=options)
    rec.on_rotate = feeds.refresh_static
    flusher = asyncio.create_task(rec.run_flusher(), name="recorder:flush")
    timer: asyncio.Task[None] | None = None
    if duration_s is not None:
        async def _timer() -> None:
            await asyncio.sleep(duration_s)
            stop.set()

        timer = asyncio.create_task(_timer(), name="recorder:duration")
    try:
        await feeds.run(stop)
    finally:
        for t in (flusher, timer):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        rec.close()
    return RecordResult(rec.files, rec.records, rec.errors, rec.frames, feeds)
