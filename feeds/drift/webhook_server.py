"""A small HTTP/1.1 server for webhooks, on asyncio streams and h11 (the sans-I/O HTTP parser that
driftpy already pins), with the limits a public endpoint needs and aiohttp's server lacks:

* the request line and headers must arrive within ``header_timeout_s`` (a client sending one byte a
  second is cut off), the whole body within ``body_timeout_s``;
* the body is read whole (``Content-Length`` or chunked, in as many packets as it takes) up to
  ``max_body_bytes`` (413 past it, announced or not);
* at most ``max_connections`` at once: more are answered 503 and closed without being read;
* loopback only unless ``bind_public`` (binding 0.0.0.0 by accident exposes the endpoint);
* one request per connection (``Connection: close``): webhooks do not need keep-alive.

The application is two callables: ``head(request)`` may answer from the headers alone (auth, route,
size), and ``handle(request, body)`` answers with the body. Both return ``(status, json_object)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11
import orjson

from core.config_schema import is_loopback_host

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_body_bytes: int = 1024 * 1024
    header_timeout_s: float = 5.0
    body_timeout_s: float = 15.0
    max_connections: int = 64
    max_header_bytes: int = 16 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # the target without its query string
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value


@dataclass(slots=True)
class ServerStats:
    connections: int = 0
    active: int = 0
    refused_busy: int = 0  # over max_connections
    header_timeouts: int = 0
    body_timeouts: int = 0
    bad_requests: int = 0  # not HTTP/1.1 we can parse
    too_large: int = 0
    last_error: str = ""
    started_at: float = field(default_factory=time.time)


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found",
            405: b"Method Not Allowed", 408: b"Request Timeout", 413: b"Content Too Large",
            431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}
LINGER_S = 2.0  # how long a closing connection discards the client's late bytes
_BUSY_BODY = b'{"error":"server is busy"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
         b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_BUSY_BODY)) + _BUSY_BODY


class WebhookServer:
    def __init__(self, head: Callable[[Request], Answer | None], handle: Callable[[Request, bytes], Answer],
                 limits: ServerLimits) -> None:
        self.head = head
        self.handle = handle
        self.limits = limits
        self.stats = ServerStats()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int, *, bind_public: bool = False) -> tuple[str, int]:
        """Listen; returns the bound (host, port). A non-loopback host needs ``bind_public``."""
        if not bind_public and not is_loopback_host(host):
            raise ValueError(f"refusing to listen on {host or 'every interface'}: not a loopback address "
                             "(set venues.helius.bind_public = true to accept webhooks from other hosts)")
        self._server = await asyncio.start_server(self._accept, host, port)
        bound = self._server.sockets[0].getsockname()
        return host, int(bound[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._conns):
                t.cancel()
            for t in list(self._conns):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            # bounded: since 3.12 wait_closed() also waits for every client transport to close
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None

    # ------------------------------------------------------------------ one connection
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        st = self.stats
        st.connections += 1
        if st.active >= self.limits.max_connections:
            st.refused_busy += 1
            await self._close(writer, _BUSY)
            return
        st.active += 1
        if task is not None:
            self._conns.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            st.active -= 1
            if task is not None:
                self._conns.discard(task)
            if not writer.is_closing():  # cancelled (server closing) or our bug: never leave it open
                writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lim = self.limits
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=lim.max_header_bytes)
        try:
            req = await self._read_head(conn, reader)
        except TimeoutError:
            self.stats.header_timeouts += 1
            await self._respond(conn, reader, writer, 408, {"error": "headers too slow"})
            return
        except _Reject as r:
            self.stats.bad_requests += 1
            await self._respond(conn, reader, writer, r.status, {"error": str(r)})
            return
        if req is None:
            await self._close(writer)
            return
        early = self.head(req)
        if early is not None:
            await self._respond(conn, reader, writer, *early)
            return
        length = req.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > lim.max_body_bytes:
            self.stats.too_large += 1
            await self._respond(conn, reader, writer, 413,
                                {"error": f"body larger than {lim.max_body_bytes} bytes"})
            return
        if conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
        try:
            body = await asyncio.wait_for(self._read_body(conn, reader), lim.body_timeout_s)
        except TimeoutError:
            self.stats.body_timeouts += 1
            await self._respond(conn, reader, writer, 408, {"error": "body too slow"})
            return
        except _Reject as r:
            if r.status == 413:
                self.stats.too_large += 1
            else:
                self.stats.bad_requests += 1
            await self._respond(conn, reader, writer, r.status, {"error": str(r)})
            return
        try:
            status, answer = self.handle(req, body)
        except Exception as e:  # our bug: never a 5xx for a client's bytes, and never silent
            log.exception("webhook handler failed")
            self.stats.last_error = f"{type(e).__name__}"
            status, answer = 400, {"error": f"rejected: {type(e).__name__}"}
        await self._respond(conn, reader, writer, status, answer)

    async def _read_head(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
        deadline = asyncio.get_running_loop().time() + self.limits.header_timeout_s
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as e:
                raise _Reject(e.error_status_hint if e.error_status_hint in _REASONS else 400,
                              "malformed request") from None
            if isinstance(event, h11.Request):
                target = event.target.decode("latin-1")
                return Request(event.method.decode("latin-1").upper(), target.split("?", 1)[0],
                               {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers})
            if isinstance(event, h11.ConnectionClosed):
                return None
            if event is h11.NEED_DATA:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise TimeoutError
                conn.receive_data(await asyncio.wait_for(reader.read(65536), left))

    async def _read_body(self, conn: h11.Connection, reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                raise _Reject(400, "malformed body") from None
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.limits.max_body_bytes:
                    raise _Reject(413, f"body larger than {self.limits.max_body_bytes} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise _Reject(400, "connection closed before the end of the body")
            elif event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)

    @staticmethod
    async def _linger(reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER_S
        while (left := deadline - loop.time()) > 0:
            if not await asyncio.wait_for(reader.read(65536), left):
                return  # the client closed its side

    async def _respond(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       status: int, answer: dict[str, Any]) -> None:
        body = orjson.dumps(answer)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        try:
            reason = _REASONS.get(status, b"")
            data = b"".join(conn.send(ev) or b"" for ev in (
                h11.Response(status_code=status, headers=headers, reason=reason), h11.Data(data=body),
                h11.EndOfMessage()))
        except h11.LocalProtocolError:  # h11 cannot answer in this state (e.g. a garbled request)
            data = (f"HTTP/1.1 {status} {_REASONS.get(status, b'').decode()}\r\n"
                    f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
                    "connection: close\r\n\r\n").encode() + body
        await self._close(writer, data, linger_from=reader)

    async def _close(self, writer: asyncio.StreamWriter, data: bytes = b"",
                     linger_from: asyncio.StreamReader | None = None) -> None:
        """Send ``data`` and close. With ``linger_from``, half-close first and discard what the
        client still sends for up to ``LINGER_S``: closing a socket with unread input makes the
        kernel answer with a reset, which can destroy the answer before the client reads it."""
        try:
            if data:
                writer.write(data)
                await asyncio.wait_for(writer.drain(), 5.0)
            if linger_from is not None and writer.can_write_eof():
                writer.write_eof()
                await self._linger(linger_from)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5.0)
