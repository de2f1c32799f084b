"""A generic, self-healing websocket connection driving a frame sink.

Loop: connect -> send the subscriptions (rate-limited) -> check every ack within
``ack_timeout_s`` -> read frames, handing each raw frame to ``on_frame(venue, raw, recv_ns)`` ->
on close, error, nack, missing ack or silence: mark the feed down, sleep a capped exponential
backoff with full jitter, reconnect and subscribe again. A watchdog task per connection sends the
venue's application ping, detects a silent server (no frame at all for ``dead_after_s``) and
rotates the connection before the venue's 24 h cut. Protocol-level pings are answered by aiohttp
(``autoping``). Every frame received is fed to the codec (acks and pongs included, exactly as a
replay of the recording would) and, when a tap (the recorder) is set, recorded first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import aiohttp

from core.secrets import scrub
from feeds.transport.backoff import Backoff
from feeds.transport.health import FeedHealth

log = logging.getLogger(__name__)

FrameSink = Callable[[str, bytes | str, int], None]
"""``(venue, raw, recv_ns)``: MarketPipeline.on_ws has this shape."""


class Kind(Enum):
    DATA = 0
    ACK = 1
    NACK = 2
    PONG = 3


Classifier = Callable[[bytes | str], Kind]


class Tap(Protocol):
    """Observer of the raw traffic (the recorder). Must not raise."""

    def connect(self, conn: str, url: str, ts_ns: int) -> None: ...
    def disconnect(self, conn: str, reason: str, ts_ns: int) -> None: ...
    def recv(self, conn: str, data: bytes | str, ts_ns: int) -> None: ...
    def send(self, conn: str, data: str, ts_ns: int) -> None: ...
    def http(self, conn: str, url: str, data: bytes, ts_ns: int) -> None: ...


@dataclass(frozen=True, slots=True)
class WsSpec:
    """What one connection speaks; built from config in :mod:`feeds.transport.venues`."""

    name: str  # feed name, e.g. "binance.public"; also the recording's conn prefix
    venue: str  # codec key for the sink: binance / bybit / okx
    url: str
    max_age_s: float  # connected but no data for this long -> stale
    subscribe: tuple[str, ...] = ()  # messages sent after connecting
    expected_acks: int = 0
    classify: Classifier | None = None  # None: every frame is data
    ping_payload: str | None = None  # application ping text (Bybit/OKX), None: none
    ping_interval_s: float = 20.0
    ping_when_idle: bool = False  # OKX: ping only after ping_interval_s without any frame
    dead_after_s: float = 30.0  # no frame at all (pongs included) for this long -> reconnect
    ack_timeout_s: float = 10.0
    max_conn_age_s: float = 23.5 * 3600  # rotate before the venue's 24 h cut
    max_sends_per_s: float = 5.0  # Binance allows 10 incoming messages/s per connection
    max_msg_size: int = 16 * 1024 * 1024


@dataclass(slots=True)
class Timing:
    """Backoff and watchdog knobs; tests shrink them."""

    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    stable_after_s: float = 10.0  # a connection that lived this long with data resets the backoff
    watchdog_tick_s: float = 0.5
    close_timeout_s: float = 2.0
    connect_timeout_s: float = 10.0


class WsConnection:
    """One venue connection; ``await run()`` until cancelled (it never returns on its own)."""

    def __init__(self, spec: WsSpec, session: aiohttp.ClientSession, on_frame: FrameSink,
                 health: FeedHealth | None = None, tap: Tap | None = None, timing: Timing | None = None,
                 on_state: Callable[[FeedHealth], object] | None = None,
                 on_connected: Callable[[WsConnection], None] | None = None) -> None:
        self.spec = spec
        self.session = session
        self.on_frame = on_frame
        self.health = health or FeedHealth(spec.name, spec.max_age_s)
        self.tap = tap
        self.timing = timing or Timing()
        self.backoff = Backoff(self.timing.backoff_base_s, self.timing.backoff_cap_s)
        self.on_state = on_state
        self.on_connected = on_connected
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.conn_id = ""
        self.sink_errors = 0
        self.sent = 0
        self._n = 0
        self._pending_acks = 0
        self._close_reason = ""
        self._rotate = False
        self._next_send = 0.0
        self._last_ping = 0.0

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        while True:
            self._rotate = False
            started = time.monotonic()
            try:
                await self._connect_once()
                reason = self._close_reason or "closed by server"
            except asyncio.CancelledError:
                self._down("stopped")
                raise
            except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError, RuntimeError) as exc:
                reason = scrub(f"{type(exc).__name__}: {exc}".strip(": "), self.spec.url)  # no API key shown
                self.health.errors += 1
            self._down(reason)
            lived = time.monotonic() - started
            if lived >= self.timing.stable_after_s and self.health.messages:
                self.backoff.reset()
            if self._rotate:
                log.info("%s: rotated after %.0f s", self.spec.name, lived)
                continue
            delay = self.backoff.next()
            log.warning("%s: %s; reconnecting in %.2f s", self.spec.name, reason, delay)
            self.health.detail = f"{reason}; retry in {delay:.1f}s"
            await asyncio.sleep(delay)

    def _down(self, reason: str) -> None:
        was = self.health.connected
        self.health.on_disconnected(reason)
        self.ws = None
        if was and self.tap is not None:
            self.tap.disconnect(self.conn_id, reason, time.time_ns())
        if self.on_state is not None:
            self.on_state(self.health)

    async def _connect_once(self) -> None:
        spec, timing = self.spec, self.timing
        self._close_reason = ""
        self.health.detail = "connecting"
        ws = await self.session.ws_connect(
            spec.url, autoping=True, heartbeat=None, max_msg_size=spec.max_msg_size,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=timing.close_timeout_s),
            compress=0,
        )
        self._n += 1
        self.conn_id = f"{spec.name}.{self._n}"
        self.ws = ws
        watchdog: asyncio.Task[None] | None = None
        try:
            self.health.on_connected()
            if self.tap is not None:
                self.tap.connect(self.conn_id, spec.url, time.time_ns())
            if self.on_state is not None:
                self.on_state(self.health)
            if self.on_connected is not None:
                self.on_connected(self)
            self._pending_acks = spec.expected_acks
            self._last_ping = time.monotonic()
            watchdog = asyncio.create_task(self._watchdog(ws), name=f"ws-watchdog:{spec.name}")
            for msg in spec.subscribe:
                await self.send(msg)
            await self._read(ws)
        finally:
            if watchdog is not None:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), timing.close_timeout_s + 1)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        receive = ws.receive
        on_frame = self.on_frame
        venue = self.spec.venue
        classify = self.spec.classify
        health = self.health
        tap = self.tap
        conn = self.conn_id
        TEXT, BINARY = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        mono, wall = time.monotonic, time.time_ns
        while True:
            msg = await receive()
            t = msg.type
            if t is TEXT or t is BINARY:
                raw: bytes | str = msg.data
            elif t is aiohttp.WSMsgType.ERROR:
                raise ConnectionError(f"websocket error: {ws.exception()!r}")
            elif t is aiohttp.WSMsgType.CLOSE:
                if not self._close_reason:
                    self._close_reason = f"server closed ({msg.data} {msg.extra or ''})".rstrip()
                return
            elif t is aiohttp.WSMsgType.CLOSING or t is aiohttp.WSMsgType.CLOSED:
                return
            else:
                continue
            recv_ns = wall()
            now = mono()
            if tap is not None:
                tap.recv(conn, raw, recv_ns)
            kind = Kind.DATA if classify is None else classify(raw)
            if kind is Kind.DATA:
                health.messages += 1
                health.last_data_mono = now
                health.last_rx_mono = now
            else:
                health.last_rx_mono = now
                if kind is Kind.ACK:
                    self._pending_acks -= 1
                elif kind is Kind.NACK:
                    self.health.errors += 1
                    self._close_reason = f"subscription rejected: {str(raw)[:200]}"
                    on_frame(venue, raw, recv_ns)
                    return
            try:
                on_frame(venue, raw, recv_ns)
            except Exception:  # a bus handler bug must not kill the feed
                self.sink_errors += 1
                health.errors += 1
                if self.sink_errors <= 10 or self.sink_errors % 1000 == 0:
                    log.exception("%s: frame sink raised (%d so far)", self.spec.name, self.sink_errors)

    async def send(self, text: str) -> None:
        """Send a control message, at most ``max_sends_per_s`` per connection."""
        ws = self.ws
        if ws is None or ws.closed:
            return
        now = time.monotonic()
        wait = self._next_send - now
        if wait > 0:
            await asyncio.sleep(wait)
            now = time.monotonic()
        self._next_send = now + 1.0 / self.spec.max_sends_per_s
        if self.tap is not None:
            self.tap.send(self.conn_id, text, time.time_ns())
        await ws.send_str(text)
        self.sent += 1

    async def close(self, reason: str, rotate: bool = False) -> None:
        """Close the current connection; ``run`` reconnects (immediately when rotating)."""
        ws = self.ws
        if ws is None:
            return
        self._close_reason = self._close_reason or reason
        self._rotate = rotate
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), self.timing.close_timeout_s + 1)

    async def _watchdog(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        spec, health = self.spec, self.health
        while not ws.closed:
            await asyncio.sleep(self.timing.watchdog_tick_s)
            now = time.monotonic()
            since_connect = now - (health.connected_at_mono or now)
            idle = now - (health.last_rx_mono or now)
            if (spec.ping_payload is not None and now - self._last_ping >= spec.ping_interval_s
                    and (not spec.ping_when_idle or idle >= spec.ping_interval_s)):
                self._last_ping = now
                try:
                    await self.send(spec.ping_payload)
                except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                    self._close_reason = f"ping failed: {exc}"
            if self._pending_acks > 0 and since_connect > spec.ack_timeout_s:
                health.errors += 1
                await self.close(f"no subscription ack within {spec.ack_timeout_s:g}s")
            elif idle > spec.dead_after_s:
                await self.close(f"silent for {spec.dead_after_s:g}s")
            elif since_connect > spec.max_conn_age_s:
                await self.close("rotating before the 24 h cut", rotate=True)
            if self._close_reason and not ws.closed:
                await self.close(self._close_reason)
