"""Writer for our own recording format, ``autotrader-rec/1`` (see ``docs/RECORDING_FORMAT.md``).

Compression follows the file name: ``*.zst`` -> zstd, ``*.gz`` -> gzip, anything else plain text.

Flush policy: records are buffered by the compressor; the writer pushes a decodable block to the
OS (zstd ``FLUSH_BLOCK``, gzip ``Z_SYNC_FLUSH``, plain ``flush()``) every ``flush_every`` records
or when ``flush_interval_s`` has passed since the last flush (checked on each write), on
:meth:`RecordingWriter.flush` and on close. A crash therefore loses at most about one interval,
and the reader replays everything up to the last flushed block and reports the file as truncated.
Files are created 0600.
Each writer session is one gzip member / zstd frame starting with a header line, so ``append=True``
(a new session at the end of an existing file) yields a file the reader reads straight through.
"""

from __future__ import annotations

import gzip
import os
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
import zstandard

from feeds.replay.frames import Frame
from feeds.replay.readers import OWN_FORMAT


class RecordingWriter:
    """Append-only writer of ``autotrader-rec/1`` JSON lines."""

    def __init__(
        self,
        path: str | Path,
        *,
        meta: Mapping[str, Any] | None = None,
        append: bool = False,
        flush_every: int = 1000,
        flush_interval_s: float = 1.0,
        clock_ns: Callable[[], int] = time.time_ns,
        level: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.records = 0
        self.flush_every = max(1, flush_every)
        self.flush_interval_s = flush_interval_s
        self._clock_ns = clock_ns
        self._pending = 0
        self._last_flush = time.monotonic()
        # 0600: a recording is the operator's data (and the header names their endpoints)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o600)
        self._raw: IO[bytes] = os.fdopen(fd, "ab" if append else "wb")
        name = self.path.name.lower()
        self._out: Any
        try:
            if name.endswith(".zst"):
                self.compression = "zstd"
                cctx = zstandard.ZstdCompressor(level=3 if level is None else level)
                self._out = cctx.stream_writer(self._raw, closefd=False)
                self._flush_arg: Any = zstandard.FLUSH_BLOCK
            elif name.endswith(".gz"):
                self.compression = "gzip"
                self._out = gzip.GzipFile(
                    fileobj=self._raw, mode="wb", compresslevel=6 if level is None else level, mtime=0
                )
                self._flush_arg = zlib.Z_SYNC_FLUSH
            else:
                self.compression = "none"
                self._out = self._raw
                self._flush_arg = None
        except BaseException:
            self._raw.close()
            raise
        header: dict[str, Any] = {"t": "header", "format": OWN_FORMAT, "created_ns": clock_ns()}
        if meta:
            header.update({k: v for k, v in meta.items() if k not in ("t", "format")})
        self._out.write(orjson.dumps(header) + b"\n")
        self.closed = False
        self.flush()

    # ------------------------------------------------------------------ records
    def write_recv(self, conn: str, data: bytes | str, ts_ns: int | None = None, url: str = "") -> None:
        """A websocket message received on ``conn``."""
        self._write("recv", conn, url, data, ts_ns)

    def write_http(self, conn: str, url: str, data: bytes | str, ts_ns: int | None = None) -> None:
        """A REST response body for ``url``."""
        self._write("http", conn, url, data, ts_ns)

    def write_send(self, conn: str, data: bytes | str, ts_ns: int | None = None, url: str = "") -> None:
        """A message we sent on ``conn`` (subscriptions, pings)."""
        self._write("send", conn, url, data, ts_ns)

    def write_connect(self, conn: str, url: str, ts_ns: int | None = None) -> None:
        self._write("connect", conn, url, None, ts_ns)

    def write_disconnect(self, conn: str, reason: str = "", ts_ns: int | None = None) -> None:
        self._write("disconnect", conn, "", reason or None, ts_ns)

    def write_frame(self, frame: Frame) -> None:
        """Re-record a frame read from any format (conversion to our own format)."""
        data = frame.data if frame.data or frame.kind in ("recv", "http", "send") else None
        self._write(frame.kind, frame.conn, frame.url, data, frame.ts_ns)

    def _write(self, kind: str, conn: str, url: str, data: bytes | str | None, ts_ns: int | None) -> None:
        if self.closed:
            raise ValueError(f"{self.path}: write to a closed RecordingWriter")
        if ts_ns is None:
            ts_ns = self._clock_ns()
        rec: dict[str, Any] = {"t": kind, "ts": ts_ns / 1e9, "ts_ns": ts_ns, "conn": conn}
        if url:
            rec["url"] = url
        if data is not None:
            if isinstance(data, bytes | bytearray | memoryview):
                try:
                    rec["data"] = bytes(data).decode()
                except UnicodeDecodeError:  # a binary frame: keep it exact as base64
                    rec["data"], rec["enc"] = _b64(bytes(data)), "b64"
            else:
                rec["data"] = data
        try:
            line = orjson.dumps(rec)
        except TypeError:  # a str with lone surrogates: store its bytes
            assert isinstance(data, str)
            rec["data"], rec["enc"] = _b64(data.encode("utf-8", "surrogatepass")), "b64"
            line = orjson.dumps(rec)
        self._out.write(line + b"\n")
        self.records += 1
        self._pending += 1
        if self._pending >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    # ------------------------------------------------------------------ lifecycle
    def flush(self) -> None:
        """Make everything written so far decodable from the file."""
        if self._flush_arg is None:
            self._out.flush()
        else:
            self._out.flush(self._flush_arg)
        self._raw.flush()
        self._pending = 0
        self._last_flush = time.monotonic()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if self._out is not self._raw:
                self._out.close()  # ends the zstd frame / gzip member
        finally:
            self._raw.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")
