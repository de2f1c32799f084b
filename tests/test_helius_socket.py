"""The Helius receiver over a raw socket on 127.0.0.1: bodies in several packets (Content-Length and
chunked), slow headers cut off at the header timeout, the connection cap, 100-continue, loopback
unless bind_public, and the seen-signature store that survives a restart (with expiry)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from autotrader.config import ConfigError, load_config
from core.bus import Bus
from core.onchain import DRIFT_EVENTS, DriftTxEvent
from feeds.drift.helius import PATH, HeliusReceiver
from storage.helius_seen import SqliteSeenSignatures
from tests.test_helius import AUTH, DRIFT, enhanced


class Rx:
    def __init__(self, rx: HeliusReceiver, got: list[DriftTxEvent]) -> None:
        self.rx, self.got = rx, got
        self.port = int(rx.url.rsplit(":", 1)[1])

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def _rx(**kw: Any) -> Rx:
    bus = Bus()
    got: list[DriftTxEvent] = []
    bus.on(DRIFT_EVENTS, got.append)
    rx = HeliusReceiver(bus, DRIFT, AUTH, **kw)
    await rx.start("127.0.0.1", 0)
    return Rx(rx, got)


@pytest.fixture
async def rx() -> AsyncIterator[Rx]:
    r = await _rx(header_timeout_s=1.0, body_timeout_s=5.0, max_connections=4, max_body_bytes=4096)
    try:
        yield r
    finally:
        await r.rx.close()


def _head(length: int | None, extra: str = "") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\n"
            f"Content-Type: application/json\r\n{size}{extra}\r\n").encode()


async def _answer(reader: asyncio.StreamReader, timeout: float = 10.0) -> tuple[int, Any]:
    raw = await asyncio.wait_for(reader.read(), timeout)  # the server closes after answering
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, json.loads(body) if body else None


async def test_body_in_two_writes_200ms_apart_is_accepted(rx: Rx) -> None:
    body = json.dumps([enhanced("sigA"), enhanced("sigB")]).encode()
    reader, writer = await rx.open()
    writer.write(_head(len(body)) + body[:40])
    await writer.drain()
    await asyncio.sleep(0.2)  # the second packet comes later: part of the scenario, not a wait
    writer.write(body[40:])
    await writer.drain()
    status, ans = await _answer(reader)
    writer.close()
    assert status == 200 and ans["kept"] == 2, ans
    assert [e.signature for e in rx.got] == ["sigA", "sigB"]


async def test_chunked_body_in_several_packets_is_accepted(rx: Rx) -> None:
    body = json.dumps(enhanced("sigC")).encode()
    reader, writer = await rx.open()
    writer.write(_head(None))
    for i in range(0, len(body), 50):
        part = body[i : i + 50]
        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        await writer.drain()
        await asyncio.sleep(0.05)
    writer.write(b"0\r\n\r\n")
    status, ans = await _answer(reader)
    writer.close()
    assert status == 200 and ans["kept"] == 1


async def test_chunked_body_over_the_limit_is_413(rx: Rx) -> None:
    reader, writer = await rx.open()
    writer.write(_head(None))
    chunk = b"x" * 1000
    try:
        for _ in range(6):  # 6000 bytes > 4096, never announced
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
    except ConnectionError:
        pass
    status, _ = await _answer(reader)
    writer.close()
    assert status == 413 and rx.got == []


async def test_one_byte_a_second_of_headers_is_dropped_within_the_header_timeout(rx: Rx) -> None:
    reader, writer = await rx.open()
    head = _head(2)
    t0 = time.monotonic()

    async def trickle() -> None:
        for b in head:  # ~150 s at this pace: the server must not wait for it
            writer.write(bytes([b]))
            await writer.drain()
            await asyncio.sleep(1.0)

    sender = asyncio.create_task(trickle())
    try:
        status, ans = await _answer(reader, timeout=30)
    finally:
        sender.cancel()
        with pytest.raises((asyncio.CancelledError, ConnectionError)):
            await sender
        writer.close()
    took = time.monotonic() - t0
    assert status == 408 and ans == {"error": "headers too slow"}
    assert took < 10, took  # header_timeout_s = 1 (generous slack for a loaded machine)
    assert rx.rx.server.stats.header_timeouts == 1


async def test_connection_cap_answers_503_without_reading(rx: Rx) -> None:
    held = [await rx.open() for _ in range(4)]  # max_connections = 4, each waiting in its headers
    try:
        deadline = time.monotonic() + 10
        while rx.rx.server.stats.active < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        reader, writer = await rx.open()
        status, ans = await _answer(reader)
        writer.close()
        assert status == 503 and ans == {"error": "server is busy"}
        assert rx.rx.server.stats.refused_busy == 1
    finally:
        for _, w in held:
            w.close()


async def test_expect_100_continue(rx: Rx) -> None:
    body = json.dumps(enhanced("sigE")).encode()
    reader, writer = await rx.open()
    writer.write(_head(len(body), "Expect: 100-continue\r\n"))
    await writer.drain()
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert interim.startswith(b"HTTP/1.1 100 ")
    writer.write(body)
    status, ans = await _answer(reader)
    writer.close()
    assert status == 200 and ans["kept"] == 1


async def test_unauthenticated_body_is_never_read(rx: Rx) -> None:
    reader, writer = await rx.open()
    writer.write(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n".encode())
    status, _ = await _answer(reader)
    writer.close()
    assert status == 401


@pytest.mark.parametrize(("request_line", "status"), [
    (b"GET /nope HTTP/1.1", 404), (b"PUT " + PATH.encode() + b" HTTP/1.1", 405), (b"garbage garbage", 400),
    (b"GET " + PATH.encode() + b"/health HTTP/1.1", 200)])
async def test_routes_and_garbage(rx: Rx, request_line: bytes, status: int) -> None:
    reader, writer = await rx.open()
    writer.write(request_line + b"\r\nHost: x\r\n\r\n")
    got, _ = await _answer(reader)
    writer.close()
    assert got == status


async def test_bind_public_unset_refuses_every_interface() -> None:
    rx = HeliusReceiver(Bus(), DRIFT, AUTH)
    for host in ("0.0.0.0", "::", "", "192.168.1.10"):
        with pytest.raises(ValueError, match="bind_public"):
            await rx.start(host, 0)
    await rx.close()
    for listen in ("0.0.0.0:8787", "[::]:8787", "example.com:8787"):
        with pytest.raises(ConfigError, match="bind_public") as err:
            load_config(None, environ={}, overrides={"venues.helius.listen": listen,
                                                     "venues.helius.auth_header": "x"})
        assert err.value.key == "venues.helius.listen"
    cfg = load_config(None, environ={}, overrides={"venues.helius.listen": "0.0.0.0:8787",
                                                   "venues.helius.auth_header": "x",
                                                   "venues.helius.bind_public": True})
    assert cfg.venues.helius.bind_public


async def _post_once(r: Rx, body: bytes) -> dict[str, Any]:
    reader, writer = await r.open()
    writer.write(_head(len(body)) + body)
    status, ans = await _answer(reader)
    writer.close()
    assert status == 200
    return dict(ans)


async def test_seen_signatures_survive_a_restart_and_expire(tmp_path: Path) -> None:
    db = tmp_path / "helius" / "seen.sqlite3"
    now = [1_700_000_000_000]
    body = json.dumps([enhanced("sig1"), enhanced("sig2")]).encode()
    store = SqliteSeenSignatures(db, ttl_s=3600, max_entries=1000)
    r = await _rx(seen=store, now_ms=lambda: now[0])
    try:
        assert (await _post_once(r, body))["kept"] == 2
    finally:
        await r.rx.close()
        store.close()
    assert db.stat().st_mode & 0o777 == 0o600 and db.parent.stat().st_mode & 0o777 == 0o700

    store = SqliteSeenSignatures(db, ttl_s=3600, max_entries=1000)  # a restart: memory is empty
    r = await _rx(seen=store, now_ms=lambda: now[0])
    try:
        ans = await _post_once(r, body)
        assert ans["kept"] == 0 and ans["duplicates"] == 2 and r.got == []
        now[0] += 3601 * 1000  # past the expiry: a delivery that old is new again
        r.rx._seen.clear()
        assert (await _post_once(r, json.dumps([enhanced("sig1")]).encode()))["kept"] == 1
    finally:
        await r.rx.close()
    assert store.prune(now[0]) == 1  # sig2 expired, sig1 re-added
    store.close()


def test_seen_store_caps_its_size(tmp_path: Path) -> None:
    store = SqliteSeenSignatures(tmp_path / "s.sqlite3", ttl_s=3600, max_entries=10, prune_every=5)
    for i in range(30):
        store.add([f"s{i}"], 1000 + i)
    assert store.prune(1030) == 10
    assert store.contains("s29", 1030) and not store.contains("s0", 1030)
    store.close()


async def test_a_failing_seen_store_keeps_serving(rx: Rx) -> None:
    class Broken:
        def contains(self, signature: str, now_ms: int) -> bool:
            raise OSError("disk gone")

        def add(self, signatures: list[str], now_ms: int) -> None:
            raise OSError("disk gone")

    r = await _rx(seen=Broken())
    try:
        body = json.dumps([enhanced("sigZ")]).encode()
        assert (await _post_once(r, body))["kept"] == 1
        assert (await _post_once(r, body))["duplicates"] == 1  # the in-memory dedupe still holds
        assert r.rx.stats.store_errors >= 2
    finally:
        await r.rx.close()
