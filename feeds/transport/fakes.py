"""Local fake venues on 127.0.0.1 speaking Binance/Bybit/OKX protocols with recorded frames.

For tests and benchmarks only; it binds to 127.0.0.1 and never reaches any other address. One
aiohttp app serves every venue (point ``venues.*`` at it with :meth:`FakeExchange.config_tree`):

* Binance ``/public/stream`` (depth + bookTicker) and ``/market/stream`` (trades): a market
  task plays the recording at ``rate`` frames/s whether or not anyone is connected (the market
  moves while you are away); the server keeps its own book (recorded snapshot + every diff it
  played), so ``GET /fapi/v1/depth`` returns a snapshot consistent with the stream at any time.
  At the end of the data it starts again with update ids shifted up, so ids only grow.
* Bybit ``/v5/public/linear``: ``{"op":"subscribe"}`` acked, ``{"op":"ping"}`` answered, recorded
  frames of the subscribed topics looped; REST instruments-info / open-interest / funding history.
* OKX ``/ws/v5/public``: subscribe acks per arg, text ``ping`` -> ``pong``, recorded frames of the
  subscribed channels looped; REST instruments, open interest and funding rate.
* Binance REST ``/fapi/v1/openInterest``, ``premiumIndex`` and ``fundingInfo`` (synthetic values
  in the documented shapes, stamped with the current time).

Faults (:class:`Faults`): refuse connections (HTTP 503 on upgrade), silence (no data, no pongs),
drop every connection abruptly, inject garbage frames, skip depth diffs (a gap), queue HTTP
statuses per venue (429, 403...), delay the depth snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from core.book import OrderBook
from feeds.transport.fakes_data import BinanceData, load_binance, load_sample, shift_ids


@dataclass
class Faults:
    refuse: set[str] = field(default_factory=set)  # venues whose ws upgrade gets HTTP 503
    silent: set[str] = field(default_factory=set)  # venues that send no data and answer no ping
    garbage: dict[str, int] = field(default_factory=dict)  # venue -> garbage frames to inject
    skip_diffs: int = 0  # depth diffs to leave out of the stream (a gap)
    http_status: dict[str, deque[int]] = field(default_factory=dict)  # venue -> next statuses
    snapshot_delay_s: float = 0.0

    def next_status(self, venue: str) -> int | None:
        q = self.http_status.get(venue)
        return q.popleft() if q else None


@dataclass
class _Client:
    ws: web.WebSocketResponse
    request: web.Request
    venue: str
    stream: str
    subs: set[str] = field(default_factory=set)


GARBAGE = "\x00{not json]]"


class FakeExchange:
    def __init__(self, data_dir: Path, *, rate: float = 2000.0, venue_rate: float = 50.0) -> None:
        self.data_dir = data_dir
        self.rate = rate
        self.venue_rate = venue_rate
        self.faults = Faults()
        self.binance: BinanceData = load_binance(data_dir / "binance-futures" / "btcusdt_20240808.gz")
        self.bybit = load_sample(data_dir / "cryptofeed" / "BYBIT.jsonl.zst", "BYBIT.ws.2")
        self.okx = load_sample(data_dir / "cryptofeed" / "OKX.jsonl.zst", "OKX.ws.1")
        self.clients: list[_Client] = []
        self.connections: dict[str, int] = {}
        self.requests: dict[str, int] = {}
        self.binance_funding_hours: dict[str, float] = {"BLZUSDT": 4}  # what /fapi/v1/fundingInfo lists
        self.sent: dict[str, int] = {}
        self.sent_log: list[tuple[int, str, str]] | None = None  # (ns, stream, text) when enabled
        self.book = OrderBook()
        self.book_id = 0
        self.cycle = 0
        self.pos = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reset_book()

    # ------------------------------------------------------------------ setup
    def _reset_book(self) -> None:
        b = self.binance
        self.book.load(b.snapshot_bids, b.snapshot_asks)
        self.book_id = b.snapshot_id + self.cycle * b.id_span

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/public/stream", self._binance_ws)
        app.router.add_get("/market/stream", self._binance_ws)
        app.router.add_get("/fapi/v1/depth", self._binance_depth)
        app.router.add_get("/fapi/v1/{name:openInterest|premiumIndex|fundingInfo}", self._binance_derivs)
        app.router.add_get("/v5/public/linear", self._bybit_ws)
        app.router.add_get("/v5/market/{name:.*}", self._bybit_rest)
        app.router.add_get("/ws/v5/public", self._okx_ws)
        app.router.add_get("/api/v5/public/instruments", self._okx_rest)
        app.router.add_get("/api/v5/public/{name:open-interest|funding-rate}", self._okx_derivs)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._tasks.append(asyncio.create_task(self._binance_market()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for c in list(self.clients):
            with contextlib.suppress(Exception):
                await c.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def config_tree(self) -> dict[str, Any]:
        """``venues``/``market`` config pointing every endpoint at this server."""
        base, ws = f"http://127.0.0.1:{self.port}", f"ws://127.0.0.1:{self.port}"
        return {
            "market": {"binance_symbol": self.binance.symbol, "bybit_symbol": "SOLUSDT",
                       "okx_usdc_inst": "BTC-USDT"},
            "venues": {
                "binance": {"ws_public_url": f"{ws}/public/stream", "ws_market_url": f"{ws}/market/stream",
                            "rest_url": base},
                "bybit": {"ws_url": f"{ws}/v5/public/linear", "rest_url": base},
                "okx": {"ws_url": f"{ws}/ws/v5/public", "rest_url": base},
            },
        }

    def drop(self, stream: str | None = None) -> int:
        """Abruptly close the TCP connections of ``stream`` (all when None) mid-stream."""
        n = 0
        for c in list(self.clients):
            if stream is None or c.stream == stream:
                tr = c.request.transport
                if tr is not None:
                    tr.abort()
                    n += 1
        return n

    # ------------------------------------------------------------------ plumbing
    def _count(self, d: dict[str, int], key: str) -> None:
        d[key] = d.get(key, 0) + 1

    async def _accept(self, request: web.Request, venue: str, stream: str) -> _Client | web.Response:
        self._count(self.requests, stream)
        if venue in self.faults.refuse:
            return web.Response(status=503, text="refused")
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        self._count(self.connections, stream)
        client = _Client(ws, request, venue, stream)
        self.clients.append(client)
        return client

    async def _send(self, c: _Client, text: str) -> None:
        if c.ws.closed:
            return
        try:
            await c.ws.send_str(text)
        except (ConnectionError, RuntimeError):  # the client went away mid-send
            return
        self._count(self.sent, c.stream)
        if self.sent_log is not None:
            self.sent_log.append((time.time_ns(), c.stream, text))

    async def _garbage(self, c: _Client) -> None:
        n = self.faults.garbage.get(c.venue, 0)
        if n:
            self.faults.garbage[c.venue] = n - 1
            await self._send(c, GARBAGE)

    # ------------------------------------------------------------------ Binance
    async def _binance_ws(self, request: web.Request) -> web.StreamResponse:
        stream = "binance.public" if request.path.startswith("/public") else "binance.market"
        c = await self._accept(request, "binance", stream)
        if isinstance(c, web.Response):
            return c
        try:
            async for _msg in c.ws:  # Binance needs nothing from us with URL-combined streams
                pass
        finally:
            self.clients.remove(c)
        return c.ws

    async def _binance_market(self) -> None:
        """Play the recording forever at ``rate`` frames/s to whoever is connected."""
        b = self.binance
        batch = max(1, int(self.rate / 100))
        next_t = time.monotonic()
        while True:
            offset = self.cycle * b.id_span
            for fr in b.frames[self.pos:]:
                self.pos += 1
                stream = "binance.market" if fr.kind == "trade" else "binance.public"
                skip = False
                if fr.kind == "depth":
                    if fr.u + offset >= self.book_id:
                        self.book.apply(fr.bids, fr.asks)
                        self.book_id = fr.u + offset
                    if self.faults.skip_diffs:
                        self.faults.skip_diffs -= 1
                        skip = True
                if not skip and "binance" not in self.faults.silent:
                    text = shift_ids(fr.text, offset) if fr.kind != "trade" else fr.text
                    for c in self.clients:
                        if c.stream == stream:
                            await self._garbage(c)
                            await self._send(c, text)
                if self.pos % batch == 0:
                    next_t += batch / self.rate
                    delay = next_t - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    elif delay < -1.0:
                        next_t = time.monotonic()
                    else:
                        await asyncio.sleep(0)
            self.pos = 0
            self.cycle += 1
            self._reset_book()

    async def _binance_depth(self, request: web.Request) -> web.Response:
        self._count(self.requests, "binance.depth")
        status = self.faults.next_status("binance")
        if status is not None:
            return web.Response(status=status, text='{"code":-1003,"msg":"fault"}')
        body = msgspec.json.encode({
            "lastUpdateId": self.book_id, "E": int(time.time() * 1000), "T": int(time.time() * 1000),
            "bids": [[repr(p), repr(q)] for p, q in self.book.bids()],
            "asks": [[repr(p), repr(q)] for p, q in self.book.asks()],
        })
        if self.faults.snapshot_delay_s:
            await asyncio.sleep(self.faults.snapshot_delay_s)
        return web.Response(body=body, content_type="application/json")

    def _rest_fault(self, venue: str, name: str, text: str = "fault") -> web.Response | None:
        """Count a REST request; the queued fault status, if any, as the answer."""
        self._count(self.requests, f"{venue}.{name}")
        status = self.faults.next_status(venue)
        return None if status is None else web.Response(status=status, text=text)

    async def _binance_derivs(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        fault = self._rest_fault("binance", name, '{"code":-1003,"msg":"fault"}')
        if fault is not None:
            return fault
        now = int(time.time() * 1000)
        sym = request.query.get("symbol", self.binance.symbol)
        body: Any
        if name == "openInterest":
            body = {"openInterest": "81234.567", "symbol": sym, "time": now}
        elif name == "premiumIndex":
            body = {"symbol": sym, "markPrice": "61000.10000000", "indexPrice": "60990.00000000",
                    "estimatedSettlePrice": "60991.0", "lastFundingRate": "0.00010000",
                    "interestRate": "0.00010000", "nextFundingTime": now - now % 28_800_000 + 28_800_000,
                    "time": now}
        else:
            body = [{"symbol": s, "adjustedFundingRateCap": "0.02500000",
                     "adjustedFundingRateFloor": "-0.02500000", "fundingIntervalHours": h,
                     "disclaimer": False} for s, h in self.binance_funding_hours.items()]
        return web.Response(body=msgspec.json.encode(body), content_type="application/json")

    async def _okx_derivs(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        fault = self._rest_fault("okx", name)
        if fault is not None:
            return fault
        now = int(time.time() * 1000)
        inst = request.query.get("instId", "SOL-USDT-SWAP")
        item: dict[str, str]
        if name == "open-interest":
            item = {"instId": inst, "instType": "SWAP", "oi": "2000000", "oiCcy": "200000",
                    "oiUsd": "30000000", "ts": str(now)}
        else:
            settle = now - now % 28_800_000 + 28_800_000
            item = {"fundingRate": "0.0001", "fundingTime": str(settle), "instId": inst, "instType": "SWAP",
                    "method": "current_period", "nextFundingTime": str(settle + 28_800_000), "ts": str(now)}
        body = {"code": "0", "msg": "", "data": [item]}
        return web.Response(body=msgspec.json.encode(body), content_type="application/json")

    # ------------------------------------------------------------------ Bybit / OKX
    async def _loop_frames(self, c: _Client, frames: tuple[str, ...], match: Any) -> None:
        while True:
            sent = 0
            for text in frames:
                if c.ws.closed:
                    return
                if c.venue in self.faults.silent or not match(c, text):
                    continue
                await self._garbage(c)
                await self._send(c, text)
                sent += 1
                await asyncio.sleep(1.0 / self.venue_rate)
            if not sent:
                await asyncio.sleep(0.2)

    async def _venue_ws(self, request: web.Request, venue: str,
                        frames: tuple[str, ...]) -> web.StreamResponse:
        c = await self._accept(request, venue, f"{venue}.ws")
        if isinstance(c, web.Response):
            return c
        match = _bybit_match if venue == "bybit" else _okx_match
        sender = asyncio.create_task(self._loop_frames(c, frames, match))
        try:
            async for msg in c.ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                if venue in self.faults.silent:
                    continue
                for reply in (_bybit_reply if venue == "bybit" else _okx_reply)(c, msg.data):
                    await self._send(c, reply)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self.clients.remove(c)
        return c.ws

    async def _bybit_ws(self, request: web.Request) -> web.StreamResponse:
        return await self._venue_ws(request, "bybit", self.bybit.ws_frames)

    async def _okx_ws(self, request: web.Request) -> web.StreamResponse:
        return await self._venue_ws(request, "okx", self.okx.ws_frames)

    async def _bybit_rest(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        fault = self._rest_fault("bybit", name)
        if fault is not None:
            return fault
        now = int(time.time() * 1000)
        sym = request.query.get("symbol", "SOLUSDT")
        result: Any
        if name == "instruments-info":
            body = next(v for k, v in self.bybit.http.items() if "category=linear" in k)
            return web.Response(text=body, content_type="application/json")
        if name == "open-interest":
            result = {"symbol": sym, "category": "linear", "list": [
                {"openInterest": "12345678.9", "timestamp": str(now - now % 300_000)}], "nextPageCursor": ""}
        elif name == "funding/history":
            ts = str(now - now % 28_800_000)
            result = {"category": "linear", "list": [
                {"symbol": sym, "fundingRate": "0.0001", "fundingRateTimestamp": ts}]}
        else:
            return web.Response(status=404)
        env = {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now}
        return web.Response(body=msgspec.json.encode(env), content_type="application/json")

    async def _okx_rest(self, request: web.Request) -> web.Response:
        self._count(self.requests, "okx.instruments")
        status = self.faults.next_status("okx")
        if status is not None:
            return web.Response(status=status, text="fault")
        it = request.query.get("instType", "SWAP")
        bodies = (v for k, v in self.okx.http.items() if k.endswith(f"instType={it}"))
        body = next(bodies, '{"code":"0","data":[]}')
        return web.Response(text=body, content_type="application/json")


def _bybit_match(c: _Client, text: str) -> bool:
    i = text.find('"topic":"')
    if i < 0:
        return False
    j = text.find('"', i + 9)
    return text[i + 9:j] in c.subs


def _bybit_reply(c: _Client, text: str) -> list[str]:
    try:
        req = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return []
    op = req.get("op")
    if op == "ping":
        return ['{"success":true,"ret_msg":"pong","conn_id":"fake","req_id":"","op":"ping"}']
    if op == "subscribe":
        c.subs.update(req.get("args", []))
        return ['{"success":true,"ret_msg":"","conn_id":"fake","req_id":"","op":"subscribe"}']
    return []


def _okx_match(c: _Client, text: str) -> bool:
    if not text.startswith('{"arg"'):
        return False
    try:
        arg = msgspec.json.decode(text)["arg"]
    except (msgspec.DecodeError, KeyError, TypeError):
        return False
    return f"{arg.get('channel')}:{arg.get('instId')}" in c.subs


def _okx_reply(c: _Client, text: str) -> list[str]:
    if text == "ping":
        return ["pong"]
    try:
        req = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return ['{"event":"error","code":"60012","msg":"Invalid request"}']
    out = []
    if req.get("op") == "subscribe":
        for arg in req.get("args", []):
            c.subs.add(f"{arg.get('channel')}:{arg.get('instId')}")
            out.append(msgspec.json.encode({"event": "subscribe", "arg": arg, "connId": "fake"}).decode())
    return out
