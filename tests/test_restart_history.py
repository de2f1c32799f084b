"""History on restart, as a user would see it: a daemon replays the first part of a session with
Parquet storage and is stopped (SIGTERM); a new daemon on the same store replays the rest. Its
windows (the day's bars with CVD and VWAP, 6 h of liquidations of every venue, the 24 h OI series,
the latest funding and OI per instrument, ATR/RSI/OBV and the 5-minute liquidation window) equal
those of one daemon that replayed the whole session without a restart.

The second part starts as a restarted live process starts: the REST bodies fetched at start
(OKX instruments, Binance fundingInfo) and a Bybit ticker snapshot (the answer to the new
subscription) come first.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import zstandard

from autotrader.control import request_sync
from feeds.binance.codec import BinanceCodec
from tests.conftest import REPO_ROOT
from tests.test_daemon import CLI, Daemon

SPLIT_MINUTE = 33  # after the cascade: the first part holds liquidations of all three venues


def _read(path: Path) -> tuple[str, list[dict[str, Any]]]:
    with path.open("rb") as fh:
        text = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh), encoding="utf-8").read()
    lines = text.splitlines()
    return lines[0], [json.loads(x) for x in lines[1:] if x.strip()]


def _write(path: Path, header: str, events: list[dict[str, Any]]) -> Path:
    body = "\n".join([header, *(json.dumps(e) for e in events)]) + "\n"
    path.write_bytes(zstandard.ZstdCompressor().compress(body.encode()))
    return path


def _depth_snapshot(first: list[dict[str, Any]], rest: list[dict[str, Any]], at_ns: int) -> dict[str, Any]:
    """The REST depth snapshot a restarted process fetches: the book after the first part, as of
    the first diff of the second part (``lastUpdateId`` = its ``U``)."""
    codec = BinanceCodec(["SOLUSDT"])
    for e in first:
        if e["conn"].startswith("binance") and e["t"] in ("recv", "http"):
            if e["t"] == "recv":
                codec.feed_ws(e["data"], e["ts_ns"])
            else:
                codec.feed_http(e["url"], e["data"], e["ts_ns"])
    book = codec.books["SOLUSDT"].book
    diff = next(json.loads(e["data"])["data"] for e in rest if '"depthUpdate"' in e.get("data", "")[:80])
    body = {"lastUpdateId": diff["U"], "E": at_ns // 1_000_000, "T": at_ns // 1_000_000,
            "bids": [[repr(p), repr(q)] for p, q in book.bids()],
            "asks": [[repr(p), repr(q)] for p, q in book.asks()]}
    return {"t": "http", "ts_ns": at_ns, "ts": at_ns / 1e9, "conn": "binance.http.1",
            "url": "https://fapi.binance.com/fapi/v1/depth?symbol=SOLUSDT&limit=1000",
            "data": json.dumps(body)}


Events = list[dict[str, Any]]


def _restart_frames(first: Events, rest: Events, at_ns: int) -> Events:
    """What a restarted process receives first: the start-up REST bodies (instruments,
    fundingInfo, a depth snapshot) and a Bybit snapshot of the ticker state so far (Bybit answers
    a subscription with a snapshot)."""
    out: list[dict[str, Any]] = [_depth_snapshot(first, rest, at_ns)]
    for e in first:
        url = e.get("url", "")
        if e["t"] == "http" and ("instruments" in url or "fundingInfo" in url):
            out.append(e | {"ts_ns": at_ns, "ts": at_ns / 1e9})
    state: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for e in first:
        if e["t"] == "recv" and e["data"].startswith('{"topic":"tickers.'):
            last = json.loads(e["data"])
            state.update(last["data"])
    snap = {"topic": last["topic"], "type": "snapshot", "data": state, "cs": last["cs"], "ts": last["ts"]}
    out.append({"t": "recv", "ts_ns": at_ns, "ts": at_ns / 1e9, "conn": "bybit.ws.1",
                "data": json.dumps(snap)})
    return out


class StoreDaemon(Daemon):
    """``run --no-ui --replay PATH --speed max --store`` with its own state, socket and store in ``tmp``."""

    def __init__(self, tmp: Path, recording: Path) -> None:
        import os
        import subprocess

        tmp.mkdir(exist_ok=True)
        self.tmp = tmp
        self.env = {
            **os.environ,
            "AUTOTRADER__CONTROL__SOCKET_PATH": str(tmp / "ctl.sock"),
            "AUTOTRADER__STORAGE__STATE_DB": str(tmp / "state.sqlite3"),
            "AUTOTRADER__STORAGE__ROOT": str(tmp / "store"),
            "AUTOTRADER__LOGGING__STATUS_INTERVAL_S": "1",
            "AUTOTRADER__LIQMAP__SCAN": '"off"',
            "AUTOTRADER__GUARDS__ATR_PERIOD": "3",  # ATR(5m) ready within the 45-minute session
        }
        self.args = [*CLI, "run", "--no-ui", "--replay", str(recording), "--speed", "max", "--store"]
        self.log = (tmp / "daemon.log").open("a")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.log, cwd=REPO_ROOT,
                                     env=self.env)


def _windows(d: Daemon) -> dict[str, Any]:
    d.wait_for("the end of the replay", lambda s: s["replay_done"] is True, timeout=240)
    out: dict[str, Any] = request_sync(Path(d.env["AUTOTRADER__CONTROL__SOCKET_PATH"]), "windows", timeout=30)
    return out


def _same(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats up to rounding (the restarted day sums come back as VWAP × volume)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_a_restart_gives_back_every_window(demo_recording: Path, short_tmp: Path) -> None:
    header, events = _read(demo_recording)
    start_ms = json.loads(header)["start_ms"]
    cut_ns = (start_ms + SPLIT_MINUTE * 60_000 + 17_300) * 1_000_000  # mid-minute: an open bar
    k = next(i for i, e in enumerate(events) if e["ts_ns"] >= cut_ns)
    part1 = _write(short_tmp / "p1.jsonl.zst", header, events[:k])
    restart = _restart_frames(events[:k], events[k:], events[k]["ts_ns"] - 1000)
    part2 = _write(short_tmp / "p2.jsonl.zst", header, restart + events[k:])
    whole = _write(short_tmp / "all.jsonl.zst", header, events)

    once = StoreDaemon(short_tmp / "c", whole)  # the uninterrupted run, beside the other two
    try:
        first = StoreDaemon(short_tmp / "a", part1)
        try:
            before = _windows(first)
        finally:
            assert first.stop() == 0, first.tail()
        second = StoreDaemon(short_tmp / "a", part2)  # a restart: same state and store
        try:
            after = _windows(second)
        finally:
            assert second.stop() == 0, second.tail()
        expected = _windows(once)
    finally:
        assert once.stop() == 0, once.tail()

    lines = (short_tmp / "a" / "daemon.log").read_text().splitlines()
    log = [json.loads(x) for x in lines if x.startswith("{")]
    loaded = [r for r in log if r.get("msg") == "history loaded"]
    assert len(loaded) == 2 and loaded[0]["bars"] == 0 and loaded[1]["bars"] == len(before["bars"])
    assert {x["venue"] for x in before["liquidations"]} == {"binance", "bybit", "okx"}
    assert len(after["bars"]) > len(before["bars"]) > 30
    assert after["guards"]["atr_5m"] is not None
    _same(after, expected)


@pytest.fixture
def short_tmp() -> Any:
    """A short directory: AF_UNIX socket paths are limited to 107 bytes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="at-") as d:
        yield Path(d)
