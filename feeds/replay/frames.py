"""What a recording yields: :class:`Frame`, the reader's :class:`RecordingStats`, :class:`RecordingError`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import msgspec

FrameKind = Literal["recv", "http", "send", "connect", "disconnect"]
FRAME_KINDS: frozenset[str] = frozenset(("recv", "http", "send", "connect", "disconnect"))

MAX_ERRORS = 1000
"""At most this many ``(line, message)`` entries are kept in :attr:`RecordingStats.errors`."""


class Frame(msgspec.Struct, frozen=True, gc=False):
    """One recorded event.

    ``ts_ns`` is the receive (or send/connect) time in ns since the epoch; ``venue`` is normalised
    (``binance``/``bybit``/``okx``, otherwise the lower-cased prefix of ``conn``); ``conn`` names the
    connection (``<venue>.<kind>.<n>`` in our own recordings, cryptofeed's ``BINANCE_FUTURES.ws.1``
    kept verbatim); ``url`` is the REST URL of an ``http`` frame or the endpoint of a connection
    (``""`` when unknown); ``data`` is the raw frame/body bytes exactly as received (``b""`` for
    ``connect``); ``line`` is the 1-based line number in the decompressed file.
    """

    ts_ns: int
    kind: FrameKind
    venue: str
    conn: str
    url: str
    data: bytes
    line: int


class RecordingError(Exception):
    """The recording cannot be read at all (missing, unknown format, garbage from the first line)."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(path, line, message)
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(slots=True)
class RecordingStats:
    """Counters of one pass over a recording (reset by each :meth:`Recording.frames` call).

    ``lines`` counts the lines read (the header and blank lines included); ``bad_lines`` those that
    were skipped because they could not be parsed; ``truncated`` is set when a compressed stream
    ended early or could not be decompressed further (``truncated_line`` is the line where that
    happened, i.e. the first line that could not be read in full). ``errors`` keeps the first
    :data:`MAX_ERRORS` ``(line, message)`` pairs.
    """

    lines: int = 0
    frames: int = 0
    bad_lines: int = 0
    skipped: int = 0
    truncated: bool = False
    truncated_line: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def error(self, line: int, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((line, message))

    def bad(self, line: int, message: str) -> None:
        self.bad_lines += 1
        self.error(line, message)

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "frames": self.frames,
            "bad_lines": self.bad_lines,
            "skipped": self.skipped,
            "truncated": self.truncated,
            "truncated_line": self.truncated_line,
            "errors": [list(e) for e in self.errors],
        }


_VENUES = {
    "binance": "binance",
    "binance_futures": "binance",
    "binancefutures": "binance",
    "binance_delivery": "binance",
    "bybit": "bybit",
    "okx": "okx",
    "okex": "okx",
}


def normalise_venue(name: str) -> str:
    """``BINANCE_FUTURES``/``binance`` -> ``binance``, ``BYBIT`` -> ``bybit``, ``OKX``/``OKEX`` -> ``okx``."""
    low = name.strip().lower()
    return _VENUES.get(low, low)
