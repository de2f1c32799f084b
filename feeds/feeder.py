"""Feed a whole recording to a :class:`~feeds.pipeline.MarketPipeline`, as fast as it can go.

Replay and backtests do per-frame work after the pipeline has taken a frame (event-time checks:
feed health, engine steps, manual intents). That work depends only on what the frame changed, so
it is skipped for frames that changed nothing a reader can see: a frame whose codec produced no
event leaves the clock, the bus and every model as they were, so the checks would find what they
found after the previous frame. :class:`FrameFeeder` therefore yields after every frame that
produced something, and after every frame while :attr:`FrameFeeder.every` is set (the caller sets
it while it has something pending that a plain frame could trigger, e.g. the engine's intents).

hftbacktest recordings (Binance futures) with the compiled hot path go through
``FrameDecoder.hft_block``: whole decompressed blocks scanned in C, a yield only where Python has
something to do; the frames it does not handle, and every other format, go frame by frame through
``pipeline.on_ws``/``on_http`` exactly as before. The events are the same either way: the
compiled scanner produces what the codec produces for the same frame (``tests/test_fast_path.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from feeds.pipeline import MarketPipeline
from feeds.replay import Frame, Recording
from feeds.replay.readers import hft_line

NO_START = -(1 << 62)
NO_END = 1 << 62


class FrameFeeder:
    """Iterate to feed ``recordings`` (one after the other, as one stream) to ``pipeline``; see the
    module docstring for when it yields.

    ``start_ns``/``end_ns``: only frames received in ``[start_ns, end_ns)`` are fed; earlier ones are
    read and skipped, the first one at or after ``end_ns`` ends the pass (recordings are in receive
    order; later files are later). :attr:`frames` counts the frames fed.
    """

    def __init__(self, pipeline: MarketPipeline, recordings: Recording | Sequence[Recording],
                 progress: Callable[[int], None] | None = None, progress_every: int = 5000,
                 start_ns: int = NO_START, end_ns: int = NO_END) -> None:
        self.pipeline = pipeline
        self.recordings = [recordings] if isinstance(recordings, Recording) else list(recordings)
        self.every = False
        self.frames = 0  # frames fed so far
        self.progress = progress
        self.progress_every = progress_every
        self._next_progress = progress_every
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.ended = False  # a frame at or after end_ns was reached
        # Optional, for a consumer whose per-frame work depends only on the event clock and on
        # what ``gate()`` tells (see Backtest): with ``clock`` and ``gate`` set, the compiled path
        # yields only once the event time reaches ``wake_ms`` or ``gate()`` is true after a frame.
        self.clock: Callable[[], int] | None = None
        self.gate: Callable[[], bool] | None = None
        self.wake_ms = -(1 << 62)

    def _tick(self) -> None:
        if self.progress is not None and self.frames >= self._next_progress:
            self.progress(self.frames)
            self._next_progress = self.frames - self.frames % self.progress_every + self.progress_every

    def __iter__(self) -> Iterator[None]:
        codec = self.pipeline.codecs.get("binance")
        fast = getattr(codec, "fast", None)
        for rec in self.recordings:
            if rec.format != "hftbacktest" or fast is None:
                yield from self._frames(rec)
            else:
                yield from self._blocks(rec, fast)
            if self.ended:
                return

    def _feed(self, f: Frame) -> bool:
        """Feed one frame read by Python; False if it is outside the range (not fed)."""
        ts = f.ts_ns
        if ts < self.start_ns:
            return False
        if ts >= self.end_ns:
            self.ended = True
            return False
        kind = f.kind
        if kind == "recv":
            self.pipeline.on_ws(f.venue, f.data, ts)
        elif kind == "http":
            self.pipeline.on_http(f.venue, f.url, f.data, ts)
        self.frames += 1
        return True

    def _frames(self, rec: Recording) -> Iterator[None]:
        on_ws, on_http = self.pipeline.on_ws, self.pipeline.on_http
        ranged = self.start_ns != NO_START or self.end_ns != NO_END
        tick = self._tick if self.progress is not None else None
        for f in rec.frames():
            if ranged:
                if not self._feed(f):
                    if self.ended:
                        return
                    continue
            else:
                kind = f.kind
                if kind == "recv":
                    on_ws(f.venue, f.data, f.ts_ns)
                elif kind == "http":
                    on_http(f.venue, f.url, f.data, f.ts_ns)
                self.frames += 1
            if tick is not None:
                tick()
            yield

    def _blocks(self, rec: Recording, fast: object) -> Iterator[None]:
        pipe = self.pipeline
        bus = pipe.bus
        routes = pipe._routes
        fast.start_ns, fast.end_ns, fast.skipped = self.start_ns, self.end_ns, 0  # type: ignore[attr-defined]
        user_gate = self.gate
        if self.clock is not None and user_gate is not None:
            # also when the bus's listeners changed: the codec's drop flags are re-derived first
            fast.routes = routes  # type: ignore[attr-defined]
            fast.last_frame_ns = pipe.stats.last_frame_ns  # type: ignore[attr-defined]
            fast.clock_now = self.clock  # type: ignore[attr-defined]
            fast.gate = lambda: user_gate() or pipe._bus_version != bus.version  # type: ignore[attr-defined]
        else:
            fast.routes = None  # type: ignore[attr-defined]
        pipe._bus_version = -1  # the pipeline re-derives what the codec may fold for this mode
        try:
            yield from self._scan(rec, fast)
        finally:
            fast.routes = None  # type: ignore[attr-defined]
            pipe._bus_version = -1

    def _scan(self, rec: Recording, fast: object) -> Iterator[None]:
        pipe = self.pipeline
        bus = pipe.bus
        routes = pipe._routes
        last_ns = pipe.stats.last_frame_ns
        hft_block = fast.hft_block  # type: ignore[attr-defined]
        blocks = rec.blocks()
        stats = rec.stats
        line = 0  # lines read (recording stats written back before Python reads a line, and at the end)
        fed = 0  # frames fed by the compiled scanner, not yet in the stats
        tick = self._tick if self.progress is not None else None
        for block in blocks:
            pos, size = 0, len(block)
            while pos < size:
                if pipe._bus_version != bus.version:
                    pipe._update_drops()
                fast.wake_ms = self.wake_ms  # type: ignore[attr-defined]
                pos, n, out = hft_block(block, pos, self.every)
                if n:
                    line += n
                    fed += n
                    self.frames += n
                    last_ns["binance"] = fast.last_ns  # type: ignore[attr-defined]
                if out is not None:
                    for ev in out:
                        routes[ev.__class__]("binance", ev)
                    if tick is not None:
                        tick()
                    yield
                elif pos < size:  # a line for the Python path (REST body, bad line, odd frame, range end)
                    skipped = fast.skipped  # type: ignore[attr-defined]
                    fast.skipped = 0  # type: ignore[attr-defined]
                    line += skipped
                    stats.frames += fed + skipped
                    fed = 0
                    end = block.find(b"\n", pos)
                    if end < 0:
                        end = size
                    line += 1
                    f = hft_line(block[pos:end], line, stats)
                    pos = end + 1
                    if f is None or not self._feed(f):
                        if self.ended:
                            stats.lines = line
                            return
                        continue
                    if tick is not None:
                        tick()
                    yield
            skipped = fast.skipped  # type: ignore[attr-defined]
            fast.skipped = 0  # type: ignore[attr-defined]
            line += skipped
            stats.lines = line
            stats.frames += fed + skipped
            fed = 0
