"""``autotrader ui`` attached to a daemon the test starts (``run --no-ui --replay`` on the demo
session), as a user over SSH would: the same screen from a snapshot and the event stream; kill from
the UI reaches the daemon; quitting the UI leaves the daemon running; a daemon restart is survived;
several UIs at once. Plus the pieces: the control socket's streams, the feed's ordering."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from textual.widgets import Static

from autotrader.attach import RemoteSession, backoff_s
from autotrader.control import ControlError, ControlServer, open_stream, request
from core.bus import Bus
from core.engine_types import EngineEvent
from core.ui_port import LinkState
from tests.conftest import REPO_ROOT
from tests.test_daemon import Daemon
from tests.tui_fixtures import populate
from tui.attached import AttachedApp
from tui.sync import ModelSnapshot, ModelTap, QueueFeed, model_from, snapshot_of


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """AF_UNIX socket paths are limited to 107 bytes: a short directory."""
    with tempfile.TemporaryDirectory(prefix="at-ui-") as d:
        yield Path(d)


async def until(cond: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Wait for a condition (never a fixed pause as proof): the machine may be loaded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def screen_text(app: AttachedApp) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in s) for s in strips)


# --------------------------------------------------------------------------- pieces


def test_snapshot_round_trips_through_json() -> None:
    bus = Bus()
    tap = ModelTap(bus)
    populate(bus)
    snap = snapshot_of(tap.model)
    wire = msgspec.json.decode(msgspec.json.encode(msgspec.to_builtins(snap)))
    back = msgspec.convert(wire, ModelSnapshot)
    assert back == snap
    m = model_from(back)
    assert sorted(m.bars) == sorted(tap.model.bars) and len(m.liqs) == len(tap.model.liqs)
    assert m.oi_series() == tap.model.oi_series() and m.guard == tap.model.guard
    assert m.oi_total() == tap.model.oi_total() is not None  # every venue's latest OI
    assert m.funding_apr() == tap.model.funding_apr() is not None


def test_queue_feed_applies_in_order_and_a_snapshot_replaces_the_model() -> None:
    feed = QueueFeed()
    ev = EngineEvent(kind="order_filled", intent_id="i1", ts=5, data={"role": "entry"})
    feed.push("engine:events", ev)
    n, events = feed.drain()
    assert n == 1 and events == [ev] and list(feed.model.events) == [ev]
    old = feed.model
    before = EngineEvent(kind="intent_accepted", intent_id="i2", ts=6)
    feed.push("engine:events", before)  # queued before the snapshot: the snapshot holds it already
    feed.load(ModelSnapshot(events=[before], now_ms=7))
    after = EngineEvent(kind="order_submitted", intent_id="i2", ts=8)
    feed.push("engine:events", after)
    feed.set_link(LinkState(connected=True, text="reconnected"))
    n, events = feed.drain()
    assert feed.model is not old and feed.model.seq > old.seq
    assert list(feed.model.events) == [before, after] and events == [after]  # toasts: only what is new
    assert [s.text for s in feed.take_link_changes()] == ["reconnected"] and feed.take_link_changes() == []


def test_backoff_is_capped_exponential_with_jitter() -> None:
    import random

    rng = random.Random(1)
    caps = [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    for attempt, cap in enumerate(caps, start=1):
        d = backoff_s(attempt, rng)
        assert cap / 2 <= d <= cap


async def test_control_stream_first_answer_then_items_until_the_server_closes(short_tmp: Path) -> None:
    async def ticks(args: dict[str, Any]) -> Any:
        yield {"hello": args.get("who")}
        i = 0
        while True:
            i += 1
            yield i
            await asyncio.sleep(0.01)

    path = short_tmp / "c.sock"
    server = ControlServer(path, {}, {"ticks": ticks})
    await server.start()
    conn = await open_stream(path, "ticks", {"who": "ui"})
    assert conn.first == {"hello": "ui"}
    assert [await conn.next() for _ in range(3)] == [1, 2, 3]
    other = await open_stream(path, "ticks", {})  # several clients at once
    assert await other.next() == 1
    with pytest.raises(ControlError, match="unknown command 'nope'"):
        await request(path, "nope")
    await server.close()
    with pytest.raises(ControlError):
        for _ in range(1000):  # what was already written, then the end
            await conn.next()
    await conn.close()
    await other.close()


# --------------------------------------------------------------------------- against a daemon


def _start(tmp: Path, recording: Path) -> Daemon:
    return Daemon(tmp, recording, "30")


def _settle(d: Daemon) -> dict[str, Any]:
    return d.wait_for("the daemon's first frames", lambda s: s.get("event_ts", 0) > 0, timeout=90)


async def test_attached_ui_kill_reaches_the_daemon_and_quitting_leaves_it_running(
        demo_recording: Path, short_tmp: Path) -> None:
    d = _start(short_tmp, demo_recording)
    try:
        _settle(d)
        feed = QueueFeed()
        session = RemoteSession(short_tmp / "ctl.sock", feed)
        conn = await session.connect()
        app = AttachedApp(Bus(), session, session.info, session.guards, feed=feed)  # type: ignore[arg-type]
        link = asyncio.create_task(session.run(conn))
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: bool(app.model.feeds) and app.model.now_ms > 0, "the snapshot on screen")
            await until(lambda: "synthetic demo" in screen_text(app), "the demo label")
            t0 = app.model.now_ms
            await until(lambda: app.model.now_ms > t0, "the event stream")
            await pilot.press("ctrl+k")
            await until(lambda: app.kill_note.startswith("KILLED"), "the kill's answer")
            st = await asyncio.to_thread(d.status)
            assert st is not None and st["engine"]["trading_state"] == "halted"
            await until(lambda: "HALTED" in screen_text(app), "HALTED in the top bar")
            await pilot.press("escape", "g")  # the delegation panel asks the daemon too
            await until(lambda: "paper venue has no delegation" in str(app.screen.query_one(
                "#deleg-info", Static).render()), "the daemon's answer in the delegation panel")
            await pilot.press("escape")
            await pilot.press("q")  # detach: no dialog, nothing changes in the daemon
            await until(lambda: not app.is_running, "the UI to exit")
        link.cancel()
        assert d.proc.poll() is None, "quitting the UI stopped the daemon"
        st = await asyncio.to_thread(d.status)
        assert st is not None and st["engine"]["trading_state"] == "halted"
        kills = await asyncio.to_thread(d.activity, "kill_switch")
        assert any(k["data"].get("stage") == "engaged" for k in kills)
    finally:
        assert d.stop() == 0


async def test_attached_ui_survives_a_daemon_restart_and_several_attach(
        demo_recording: Path, short_tmp: Path) -> None:
    d = _start(short_tmp, demo_recording)
    second: Daemon | None = None
    try:
        _settle(d)
        path = short_tmp / "ctl.sock"
        feeds = [QueueFeed(), QueueFeed()]
        sessions = [RemoteSession(path, f, idle_timeout_s=5.0) for f in feeds]
        conns = [await s.connect() for s in sessions]
        app = AttachedApp(Bus(), sessions[0], sessions[0].info, sessions[0].guards,  # type: ignore[arg-type]
                          feed=feeds[0])
        links = [asyncio.create_task(s.run(c)) for s, c in zip(sessions, conns, strict=True)]
        other = feeds[1]
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.link is not None and app.link.connected, "attached")
            first = sessions[0].instance
            other.drain()
            await until(lambda: other.drain()[0] > 0, "the second UI's stream")
            d.stop(signal.SIGTERM)
            await until(lambda: app.link is not None and not app.link.connected, "LINK LOST", 30)
            await until(lambda: "LINK LOST" in screen_text(app), "LINK LOST on screen", 10)
            assert app.is_running  # the UI stays; it reconnects
            second = _start(short_tmp, demo_recording)
            await until(lambda: app.link is not None and app.link.connected, "reconnected", 90)
            assert sessions[0].instance != first and "restarted" in app.link.text
            await until(lambda: app.model.now_ms > 0 and bool(app.model.feeds), "the new snapshot")
            await until(lambda: sessions[1].connected and sessions[1].instance == sessions[0].instance,
                        "the second UI reconnected too", 30)
            await pilot.press("q")
        for t in links:
            t.cancel()
        assert second.proc.poll() is None
    finally:
        d.stop()
        if second is not None:
            assert second.stop() == 0


def test_ui_without_a_daemon_says_so(short_tmp: Path) -> None:
    env = {**os.environ, "AUTOTRADER__CONTROL__SOCKET_PATH": str(short_tmp / "none.sock")}
    out = subprocess.run([sys.executable, "-m", "autotrader", "ui"], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=env, timeout=60)
    assert out.returncode == 1
    assert "no running autotrader at" in out.stderr and "autotrader run --no-ui" in out.stderr
    assert "Traceback" not in out.stderr
