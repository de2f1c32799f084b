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

from collections.abc import Callable, Iterator

from feeds.pipeline import MarketPipeline
from feeds.replay import Recording
from feeds.replay.readers import hft_line


class FrameFeeder:
    """Iterate to feed ``recording`` to ``pipeline``; see the module docstring for when it yields."""

    def __init__(self, pipeline: MarketPipeline, recording: Recording,
                 progress: Callable[[int], None] | None = None, progress_every: int = 5000) -> None:
        self.pipeline = pipeline
        self.recording = recording
        self.every = False
        self.frames = 0  # frames fed so far
        self.progress = progress
        self.progress_every = progress_every
        self._next_progress = progress_every

    def _tick(self) -> None:
        if self.progress is not None and self.frames >= self._next_progress:
            self.progress(self.frames)
            self._next_progress = self.frames - self.frames % self.progress_every + self.progress_every

    def __iter__(self) -> Iterator[None]:
        pipe = self.pipeline
        codec = pipe.codecs.get("binance")
        fast = getattr(codec, "fast", None)
        if self.recording.format != "hftbacktest" or fast is None:
            yield from self._frames()
        else:
            yield from self._blocks(fast)

    def _frames(self) -> Iterator[None]:
        on_ws, on_http = self.pipeline.on_ws, self.pipeline.on_http
        for f in self.recording.frames():
            kind = f.kind
            if kind == "recv":
                on_ws(f.venue, f.data, f.ts_ns)
            elif kind == "http":
                on_http(f.venue, f.url, f.data, f.ts_ns)
            self.frames += 1
            self._tick()
            yield

    def _blocks(self, fast: object) -> Iterator[None]:
        pipe = self.pipeline
        bus = pipe.bus
        routes = pipe._routes
        last_ns = pipe.stats.last_frame_ns
        hft_block = fast.hft_block  # type: ignore[attr-defined]
        on_ws, on_http = pipe.on_ws, pipe.on_http
        rec = self.recording
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
                elif pos < size:  # a line for the Python path (REST body, bad line, odd frame)
                    stats.frames += fed
                    fed = 0
                    end = block.find(b"\n", pos)
                    if end < 0:
                        end = size
                    line += 1
                    f = hft_line(block[pos:end], line, stats)
                    pos = end + 1
                    if f is None:
                        continue
                    if f.kind == "recv":
                        on_ws(f.venue, f.data, f.ts_ns)
                    else:
                        on_http(f.venue, f.url, f.data, f.ts_ns)
                    self.frames += 1
                    if tick is not None:
                        tick()
                    yield
            stats.lines = line
            stats.frames += fed
            fed = 0
