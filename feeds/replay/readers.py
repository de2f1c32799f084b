"""Streaming readers for the three recording formats replay understands.

The compression is chosen by the file's magic bytes (gzip ``1f 8b``, zstd ``28 b5 2f fd``, else
plain text), the format by the first line:

* ``autotrader`` -- our own JSON lines, header ``{"t":"header","format":"autotrader-rec/1",...}``
  (see ``docs/RECORDING_FORMAT.md``);
* ``cryptofeed`` -- cryptofeed's sample JSON lines, header ``{"t":"header","exchange":...}``;
* ``hftbacktest`` -- ``<receive ns> <raw frame>`` per line (a bare REST body, e.g. a Binance depth
  snapshot, is yielded as kind ``http`` with url ``""``).

Reading streams in fixed-size chunks (constant memory). Lines that cannot be parsed are counted
in :class:`RecordingStats` and skipped; a compressed stream that ends early or is corrupt
mid-file stops the pass with ``stats.truncated`` set. Only a file that cannot be read at all
raises :class:`RecordingError`.
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

import msgspec
import zstandard

from feeds.replay.frames import (
    FRAME_KINDS,
    Frame,
    RecordingError,
    RecordingStats,
    normalise_venue,
)

_gzip_lib: Any
try:  # ISA-L's inflate: the same bytes as zlib's, 2-3x faster
    from isal import isal_zlib as _gzip_lib
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    _gzip_lib = zlib

OWN_FORMAT = "autotrader-rec/1"
Format = Literal["autotrader", "cryptofeed", "hftbacktest"]
Compression = Literal["gzip", "zstd", "none"]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 18
MAX_LINE = 1 << 28


class _Truncated(Exception):
    """The compressed stream ended early or is corrupt."""


def sniff_compression(head: bytes) -> Compression:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def _chunks(fh: BinaryIO, comp: Compression) -> Iterator[bytes]:
    """Decompressed chunks; raises :class:`_Truncated` after the last good chunk if the stream is cut."""
    read = fh.read
    if comp == "none":
        while chunk := read(CHUNK):
            yield chunk
        return
    new: Callable[[], Any]
    errors: tuple[type[Exception], ...]
    if comp == "gzip":
        new, errors = (lambda: _gzip_lib.decompressobj(31)), (zlib.error, _gzip_lib.error)
    else:
        new, errors = zstandard.ZstdDecompressor().decompressobj, (zstandard.ZstdError,)
    dec = new()
    started = False  # the current member/frame has consumed input
    try:
        while chunk := read(CHUNK):
            while chunk:
                started = True
                out = dec.decompress(chunk)
                if out:
                    yield out
                if not dec.eof:
                    break
                # end of one gzip member / zstd frame: the rest may hold another one
                chunk = dec.unused_data
                dec, started = new(), False
    except errors as exc:
        raise _Truncated(f"corrupt {comp} stream: {exc}") from None
    if started and not dec.eof:
        raise _Truncated(f"{comp} stream ended before its end marker (file truncated)")


class _Lines:
    """Numbered lines of a (possibly compressed) file; records truncation instead of raising."""

    __slots__ = ("comp", "last_unterminated", "message", "path", "truncated", "truncated_line")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.truncated = False
        self.truncated_line = 0
        self.message = ""
        self.last_unterminated = False
        try:
            with path.open("rb") as fh:
                self.comp: Compression = sniff_compression(fh.read(4))
        except OSError as exc:
            raise RecordingError(str(path), 0, f"cannot open: {exc.strerror or exc}") from None

    def __iter__(self) -> Iterator[bytes]:
        """Lines without their ``\\n``; the n-th item is line n."""
        n = 0
        try:
            for block in self.blocks():
                lines = block.split(b"\n")
                if not lines[-1]:  # a block ends with its last line's \n (but an unterminated last line)
                    lines.pop()
                n += len(lines)
                yield from lines
        except RecordingError as exc:
            raise RecordingError(exc.path, n + 1, exc.message) from None
        if self.truncated:
            self.truncated_line = n + 1

    def blocks(self) -> Iterator[bytes]:
        """The same text in blocks of whole lines (each ends with ``\\n``; an unterminated last line
        comes alone), for a scanner that splits and counts lines itself: on truncation
        ``truncated_line`` is left 0 for the caller to set (the first line it did not get)."""
        rest = b""
        try:
            with self.path.open("rb") as fh:
                for chunk in _chunks(fh, self.comp):
                    if rest:
                        chunk = rest + chunk
                    cut = chunk.rfind(b"\n") + 1
                    rest = chunk[cut:]
                    if len(rest) > MAX_LINE:
                        raise _Truncated(f"line longer than {MAX_LINE} bytes (not a text recording?)")
                    if cut:
                        yield chunk[:cut] if rest else chunk
        except _Truncated as exc:
            self.truncated = True
            self.message = str(exc)
            return
        except OSError as exc:
            raise RecordingError(str(self.path), 0, f"read error: {exc}") from None
        if rest:
            self.last_unterminated = True
            yield rest


# ---------------------------------------------------------------------------------------- parsers
class _JsonLine(msgspec.Struct, gc=False):
    t: str
    ts: float | None = None
    ts_ns: int | None = None
    conn: str = ""
    url: str = ""
    addr: str = ""
    data: str | None = None
    enc: str = ""


_decode_line = msgspec.json.Decoder(_JsonLine).decode
_decode_any = msgspec.json.Decoder().decode


def _parse_header(first: bytes) -> tuple[Format, dict[str, Any]] | None:
    """The format named by a first line, or None if it is no known header."""
    if first[:1].isdigit():
        head, sep, rest = first.partition(b" ")
        if sep and head.isdigit() and rest.lstrip()[:1] in (b"{", b"["):
            return "hftbacktest", {}
        return None
    try:
        obj = _decode_any(first)
    except msgspec.DecodeError:
        return None
    if not isinstance(obj, dict) or obj.get("t") != "header":
        return None
    if obj.get("format") == OWN_FORMAT:
        return "autotrader", obj
    if isinstance(obj.get("exchange"), str):
        return "cryptofeed", obj
    return None


def _json_frames(lines: Iterator[bytes], stats: RecordingStats, default_venue: str) -> Iterator[Frame]:
    """Frames of the autotrader / cryptofeed JSON-lines formats (after the header line)."""
    venues: dict[str, str] = {}
    kinds = FRAME_KINDS
    for n, raw in enumerate(lines, start=2):
        stats.lines = n
        if not raw.strip():
            continue
        try:
            rec = _decode_line(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            stats.bad(n, f"not a recording line: {exc}")
            continue
        kind = rec.t
        if kind not in kinds:
            if kind == "header":  # an appended session: keep going
                stats.skipped += 1
            else:
                stats.bad(n, f"unknown kind {kind!r}")
            continue
        if rec.ts_ns is not None:
            ts_ns = rec.ts_ns
        elif rec.ts is not None:
            ts_ns = round(rec.ts * 1e6) * 1000
        else:
            stats.bad(n, "missing ts")
            continue
        conn = rec.conn
        if not conn:
            stats.bad(n, "missing conn")
            continue
        text = rec.data
        if text is None:
            if kind in ("recv", "http", "send"):
                stats.bad(n, f"{kind} without data")
                continue
            data = b""
        elif rec.enc == "b64":
            try:
                data = binascii.a2b_base64(text)
            except (binascii.Error, ValueError):
                stats.bad(n, "bad base64 data")
                continue
        else:
            data = text.encode()
        prefix = conn.partition(".")[0]
        venue = venues.get(prefix)
        if venue is None:
            venue = venues[prefix] = normalise_venue(prefix) if "." in conn else default_venue
        stats.frames += 1
        yield Frame(ts_ns, kind, venue, conn, rec.url or rec.addr, data, n)  # type: ignore[arg-type]


def hft_line(raw: bytes, n: int, stats: RecordingStats) -> Frame | None:
    """Line ``n`` of hftbacktest's ``<receive ns> <raw frame>`` text (Binance futures): its frame,
    or None (a blank or bad line, counted)."""
    stats.lines = n
    head, sep, data = raw.partition(b" ")
    if not sep:
        if raw.strip():
            stats.bad(n, "no '<ns> <frame>' separator")
        return None
    try:
        ts_ns = int(head)
    except ValueError:
        stats.bad(n, "receive time is not an integer")
        return None
    if data.endswith(b"\r"):
        data = data[:-1]
    first = data[:1]
    if first != b"{" and first != b"[":
        stats.bad(n, "frame is not JSON")
        return None
    stats.frames += 1
    if data.startswith(b'{"stream"'):
        return Frame(ts_ns, "recv", "binance", "binance.ws.0", "", data, n)
    # a bare REST body (depth snapshot) between the stream frames
    return Frame(ts_ns, "http", "binance", "binance.http.0", "", data, n)


def _hft_frames(lines: Iterator[bytes], stats: RecordingStats) -> Iterator[Frame]:
    for n, raw in enumerate(lines, start=1):
        f = hft_line(raw, n, stats)
        if f is not None:
            yield f


# ---------------------------------------------------------------------------------------- public
class Recording:
    """A recording file whose format has been recognised; iterate it with :meth:`frames`."""

    def __init__(self, path: Path, fmt: Format, compression: Compression, header: dict[str, Any]) -> None:
        self.path = path
        self.format: Format = fmt
        self.compression: Compression = compression
        self.header = header
        exchange = header.get("exchange") or header.get("venue") or ""
        self.default_venue = normalise_venue(exchange) if isinstance(exchange, str) else ""
        if fmt == "hftbacktest":
            self.default_venue = "binance"
        self.stats = RecordingStats()

    def __repr__(self) -> str:
        return f"Recording({str(self.path)!r}, format={self.format!r}, compression={self.compression!r})"

    def frames(self) -> Generator[Frame, None, None]:
        """Stream the frames from the start of the file (each call is a new pass with fresh stats)."""
        self.stats = stats = RecordingStats()
        lines = _Lines(self.path)
        it = iter(lines)
        if self.format == "hftbacktest":
            yield from _hft_frames(it, stats)
        else:
            if next(it, None) is None:  # the header line
                raise RecordingError(str(self.path), 1, "header line vanished")
            stats.lines = 1
            yield from _json_frames(it, stats, self.default_venue)
        self._finish(lines, stats)

    def blocks(self) -> Iterator[bytes]:
        """hftbacktest only: the text in blocks of whole lines for a compiled scanner, which counts
        ``stats.lines``/``stats.frames`` itself and hands other lines to :func:`hft_line`; a new
        pass with fresh stats, like :meth:`frames`."""
        if self.format != "hftbacktest":
            raise ValueError("blocks() reads hftbacktest text only")
        self.stats = RecordingStats()
        return self._blocks(self.stats)

    def _blocks(self, stats: RecordingStats) -> Iterator[bytes]:
        lines = _Lines(self.path)
        try:
            yield from lines.blocks()
        except RecordingError as exc:
            raise RecordingError(exc.path, stats.lines + 1, exc.message) from None
        if lines.truncated:
            lines.truncated_line = stats.lines + 1  # every complete line was handed out and counted
        self._finish(lines, stats)

    @staticmethod
    def _finish(lines: _Lines, stats: RecordingStats) -> None:
        if lines.truncated:
            stats.truncated = True
            stats.truncated_line = lines.truncated_line
            stats.error(lines.truncated_line, lines.message)
        elif lines.last_unterminated and stats.errors and stats.errors[-1][0] == stats.lines:
            # plain text whose last line was cut mid-write: a truncation, not a bad line
            stats.bad_lines -= 1
            stats.truncated = True
            stats.truncated_line = stats.lines
            stats.errors[-1] = (stats.lines, "last line is incomplete (file truncated)")


def open_recording(path: str | Path) -> Recording:
    """Open ``path``, sniff compression and format from its first line, and return a :class:`Recording`.

    Raises :class:`RecordingError` if the file is missing/unreadable, empty, truncated before its
    first complete line, or its first line is not a known header.
    """
    p = Path(path)
    if not p.is_file():
        raise RecordingError(str(p), 0, "no such file" if not p.exists() else "not a regular file")
    lines = _Lines(p)
    it = iter(lines)
    try:
        first = next(it, None)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    if first is None:
        why = lines.message if lines.truncated else "empty file"
        raise RecordingError(str(p), 1, f"no complete first line: {why}")
    if lines.truncated and not first:
        raise RecordingError(str(p), 1, lines.message)
    sniffed = _parse_header(first.rstrip(b"\r"))
    if sniffed is None:
        shown = first[:60].decode("utf-8", "replace")
        raise RecordingError(str(p), 1, f"not a known recording format (first line starts {shown!r})")
    fmt, header = sniffed
    return Recording(p, fmt, lines.comp, header)
