"""Replay: streaming readers for recorded traffic, our own recording writer, and the bar fast path.

``open_recording(path)`` sniffs compression (gzip/zstd/plain) and format (autotrader-rec/1,
cryptofeed JSON lines, hftbacktest text) and returns a :class:`Recording` whose ``frames()`` yields
:class:`Frame` objects; see ``docs/RECORDING_FORMAT.md``.
"""

from __future__ import annotations

from feeds.replay.frames import Frame, FrameKind, RecordingError, RecordingStats, normalise_venue
from feeds.replay.readers import OWN_FORMAT, Recording, open_recording
from feeds.replay.writer import RecordingWriter

__all__ = [
    "OWN_FORMAT",
    "Frame",
    "FrameKind",
    "Recording",
    "RecordingError",
    "RecordingStats",
    "RecordingWriter",
    "normalise_venue",
    "open_recording",
]
