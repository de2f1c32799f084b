"""What every venue codec shares: the frame it is fed, its counters and its interface.

A codec is a plain object: ``feed_ws(raw, recv_ns)`` for a websocket frame and
``feed_http(url, body, recv_ns)`` for a REST body. Both return a list of core models (possibly
empty) and never raise on bad input: malformed frames are counted in ``stats.malformed``, frames of
a type the product does not know in ``stats.unknown``, known-but-unused channels in
``stats.ignored``. Transports (live) and replay drive the same object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from core.models import MarketEvent


@dataclass(slots=True)
class CodecStats:
    frames: int = 0
    decoded: int = 0
    ignored: int = 0
    unknown: int = 0
    malformed: int = 0
    resyncs: int = 0
    gaps: int = 0
    errors: int = 0
    last_error: str = ""
    unknown_kinds: dict[str, int] = field(default_factory=dict)

    def note_unknown(self, kind: str) -> None:
        self.unknown += 1
        self.unknown_kinds[kind] = self.unknown_kinds.get(kind, 0) + 1

    def note_malformed(self, why: str) -> None:
        self.malformed += 1
        self.last_error = why

    def as_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "decoded": self.decoded,
            "ignored": self.ignored,
            "unknown": self.unknown,
            "malformed": self.malformed,
            "resyncs": self.resyncs,
            "gaps": self.gaps,
            "errors": self.errors,
            "last_error": self.last_error,
            "unknown_kinds": dict(self.unknown_kinds),
        }


def finite(s: str) -> float:
    """A venue's decimal string as a finite float; raises ValueError otherwise (the codec counts it)."""
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"non-finite number {s!r}")
    return v


class Codec(Protocol):
    venue: str
    stats: CodecStats

    def feed_ws(self, raw: bytes | str, recv_ns: int) -> list[MarketEvent]: ...

    def feed_http(self, url: str, body: bytes | str, recv_ns: int) -> list[MarketEvent]: ...
