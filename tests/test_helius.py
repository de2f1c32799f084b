"""The Helius webhook receiver over HTTP on 127.0.0.1: auth, limits, JSON, dedupe, Drift filter,
Parquet, health; a hypothesis fuzz never gets a 5xx."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.bus import Bus
from core.onchain import DRIFT_EVENTS, DriftTxEvent
from feeds.drift.helius import PATH, HeliusReceiver, parse_listen
from storage.helius_store import HeliusStore, read_all

DRIFT = "dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH"
AUTH = "Bearer s3cret-webhook-value"


def enhanced(sig: str, program: str = DRIFT) -> dict[str, Any]:
    return {
        "signature": sig,
        "slot": 123,
        "timestamp": 1_700_000_000,
        "type": "UNKNOWN",
        "source": "DRIFT",
        "instructions": [
            {"programId": "ComputeBudget111111111111111111111111111111", "accounts": []},
            {"programId": program, "accounts": ["u1"], "innerInstructions": []},
        ],
        "accountData": [{"account": "u1", "nativeBalanceChange": 0}],
    }


def raw_tx(sig: str) -> dict[str, Any]:
    return {
        "slot": 9,
        "blockTime": 1_700_000_001,
        "meta": {"err": None},
        "transaction": {"signatures": [sig], "message": {"accountKeys": ["a", DRIFT], "instructions": []}},
    }


async def _start(tmp: Path, **kw: Any) -> tuple[HeliusReceiver, HeliusStore, list[DriftTxEvent]]:
    bus = Bus()
    got: list[DriftTxEvent] = []
    bus.on(DRIFT_EVENTS, got.append)
    store = HeliusStore(bus, tmp / "helius")
    rx = HeliusReceiver(bus, DRIFT, AUTH, **kw)
    await rx.start("127.0.0.1", 0)
    return rx, store, got


async def _post(url: str, body: bytes, auth: str | None = AUTH) -> tuple[int, Any, float]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": auth} if auth is not None else {})
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s, s.post(url + PATH, data=body, headers=headers) as r:
        text = await r.text()
        return r.status, json.loads(text) if text else None, time.monotonic() - t0


async def test_wrong_or_missing_auth_is_401_and_nothing_stored(tmp_path: Path) -> None:
    rx, store, got = await _start(tmp_path)
    try:
        body = json.dumps([enhanced("sigA")]).encode()
        # (trailing blanks are not part of an HTTP field value, RFC 9110 5.5: "AUTH " is AUTH)
        for auth in (None, "", "Bearer wrong", AUTH + "x", AUTH[:-1], AUTH.lower()):
            status, _, _ = await _post(rx.url, body, auth)
            assert status == 401
        assert got == [] and store.pending() == 0
    finally:
        await rx.close()
    store.close()
    assert read_all(tmp_path / "helius").num_rows == 0


async def test_kept_deduped_filtered_and_persisted(tmp_path: Path) -> None:
    rx, store, got = await _start(tmp_path)
    try:
        batch = [
            enhanced("sig1"),
            enhanced("sig2", program="Other1111111111111111111111111111111111111"),
            raw_tx("sig3"),
            {"no": "signature"},
        ]
        status, ans, took = await _post(rx.url, json.dumps(batch).encode())
        assert status == 200 and ans == {"received": 4, "kept": 2, "duplicates": 0, "ignored": 2}
        assert took < 1.0
        # Helius retries: the same delivery again, and one more duplicate inside a new batch
        status, ans, _ = await _post(rx.url, json.dumps(batch).encode())
        assert ans["kept"] == 0 and ans["duplicates"] == 2
        status, ans, _ = await _post(rx.url, json.dumps(enhanced("sig1")).encode())  # a single object
        assert status == 200 and ans["duplicates"] == 1
        async with aiohttp.ClientSession() as s, s.get(rx.url + PATH + "/health") as r:
            health = await r.json()
        assert (
            r.status == 200 and health["status"] == "ok" and health["kept"] == 2 and health["duplicates"] == 3
        )
    finally:
        await rx.close()
    assert [e.signature for e in got] == ["sig1", "sig3"]
    assert got[0].slot == 123 and got[0].timestamp == 1_700_000_000 and got[0].source == "DRIFT"
    assert got[1].timestamp == 1_700_000_001 and json.loads(got[1].payload) == raw_tx("sig3")
    store.close()
    table = read_all(tmp_path / "helius")
    assert table.column("signature").to_pylist() == ["sig1", "sig3"]


async def test_oversized_and_malformed_bodies_are_4xx(tmp_path: Path) -> None:
    rx, store, got = await _start(tmp_path, max_body_bytes=2048)
    try:
        big = json.dumps([enhanced(f"s{i}") for i in range(50)]).encode()
        assert len(big) > 2048
        assert (await _post(rx.url, big))[0] == 413
        for bad in (b"{not json", b"", b"42", b'"text"', b"[1, 2]", b"[{}, 3]", b"\xff\xfe"):
            assert (await _post(rx.url, bad))[0] == 400, bad
    finally:
        await rx.close()
    assert got == [] and store.pending() == 0


def test_receiver_refuses_an_empty_auth_header_and_parses_listen() -> None:
    with pytest.raises(ValueError, match="auth header"):
        HeliusReceiver(Bus(), DRIFT, "")
    assert parse_listen("127.0.0.1:8787") == ("127.0.0.1", 8787)
    assert parse_listen("[::1]:9000") == ("::1", 9000)


# ---------------------------------------------------------------------- fuzz over HTTP
class _Server:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.bus = Bus()
        self.rx = HeliusReceiver(self.bus, DRIFT, AUTH, max_body_bytes=4096)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.rx.start("127.0.0.1", 0), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.rx.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    with _Server() as s:
        yield s


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from([DRIFT, "sig", ""]),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "signature",
                    "slot",
                    "timestamp",
                    "type",
                    "source",
                    "transaction",
                    "signatures",
                    "instructions",
                    "programId",
                    "accountKeys",
                    "x",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(json_values, max_size=4).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=bodies,
    auth=st.sampled_from([AUTH, AUTH, "nope", None]),
    ctype=st.sampled_from(["application/json", "text/plain", "application/octet-stream"]),
)
def test_fuzz_never_5xx(server: _Server, body: bytes, auth: str | None, ctype: str) -> None:
    headers = {"Content-Type": ctype} | ({"Authorization": auth} if auth is not None else {})
    req = urllib.request.Request(server.rx.url + PATH, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    assert status < 500
    if auth != AUTH:
        assert status == 401
