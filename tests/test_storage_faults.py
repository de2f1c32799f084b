"""Storage errors fail closed (issue 15, scope 2 and 3), with a storage layer whose writes fail on
demand: nothing the venue did is dropped, the engine takes no new risk (REDUCING, with the reason),
the writes are retried, and a kill never depends on the disk."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.models import Side
from core.storage_health import StorageHealth
from core.venue import OrderRequest, OrderType
from execution.engine import TradingState
from execution.paper import PaperVenue
from storage.activity_log import ActivityLog
from storage.journal import Journal
from storage.journal_buffer import JournalBuffer
from storage.state_store import StateStore
from storage.write_buffer import ActivityBuffer
from tests.fs_faults import fill, small_tmpfs
from tests.stack_harness import FailingDisk, StackHarness, write_hook
from tests.test_engine import T0


@pytest.fixture
def disk() -> FailingDisk:
    d = FailingDisk()
    with write_hook(d):
        yield d


async def test_paper_venue_never_drops_events_when_saving_fails() -> None:
    """The reported failure: a fill event was lost when the account could not be saved."""
    def refuse(_: bytes) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    from core.clock import EventClock
    from core.models import BookTop, Trade

    clock = EventClock(T0)
    v = PaperVenue(clock=clock, persist=refuse)
    v.on_book(BookTop(venue="b", symbol="S", timestamp=T0, update_id=1, bid_px=100, bid_qty=5, ask_px=100.1,
                      ask_qty=5, spread_bps=10, bid_usd=1e6, ask_usd=1e6))
    order = await v.place(OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1, price=100,
                                       client_tag="i:e1"))
    assert order.status == "open"  # the place did not raise although the save did
    v.on_trade(Trade(venue="b", symbol="S", ts=T0 + 1, price=99.9, qty=5, side=Side.SELL))
    evs = v.events()
    assert any(getattr(e, "fill", None) is not None for e in evs), evs
    assert (await v.position("SOL-PERP")).size == pytest.approx(1.0)
    assert v.persist_failures >= 2


async def test_disk_full_keeps_the_position_protected_and_stops_new_risk(tmp_path: Path,
                                                                          disk: FailingDisk) -> None:
    h = StackHarness(tmp_path / "state.sqlite3")
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    assert "i1:e1" in await h.orders()
    disk.failing = True  # the disk fills up while the entry rests
    h.at_ms(T0 + 1000)
    h.trade(99.9, 50, Side.SELL)  # the entry fills: the venue's events must not be lost
    await h.engine.step()
    assert await h.position() == pytest.approx(10.0)
    orders = await h.orders()
    assert "i1:sl1" in orders, "the stop is placed although nothing can be saved"
    assert {"i1:tp1", "i1:tp2", "i1:tp3"} <= set(orders), "take-profits are reduce-only: allowed"
    assert h.engine.trading_state == TradingState.REDUCING
    assert "disk is full" in h.engine.trading_reason
    snap = h.engine.snapshot()
    assert snap["storage"]["ok"] is False and "journal" in snap["storage"]["failing"]
    st = await h.stack.status()
    assert "disk is full" in st["storage"]["reason"]
    # no new risk while it fails
    h.intent("i2")
    await h.engine.step()
    rej = [e for e in h.events if e.kind == "intent_rejected" and e.intent_id == "i2"]
    assert rej and "reducing" in str(rej[0].data["reasons"])
    pending = h.stack.activity.pending  # type: ignore[union-attr]
    assert pending > 0
    # space returns: the backlog is written, in order; the engine stays REDUCING until resumed
    disk.failing = False
    assert h.stack.flush_storage()
    assert h.engine.trading_state == TradingState.REDUCING
    rows = ActivityLog(tmp_path / "state.sqlite3", readonly=True).query(newest_first=False)
    kinds = [r.kind for r in rows]
    assert kinds.index("sl_placed") < kinds.index("tp_placed") and "trading_state" in kinds
    j = Journal(tmp_path / "state.sqlite3")
    assert j.find_order(client_tag="i1:sl1") is not None, "the stop's journal rows were written later"
    assert j.find_order(client_tag="i1:e1").state == "filled"  # type: ignore[union-attr]
    j.close()
    h.engine.set_trading_state(TradingState.ACTIVE, "operator resume")
    assert h.engine.trading_state == TradingState.ACTIVE
    h.close()


async def test_resume_while_storage_still_fails_stays_reducing(tmp_path: Path, disk: FailingDisk) -> None:
    h = StackHarness(tmp_path / "state.sqlite3")
    await h.filled_long()
    disk.failing = True
    h.stack.activity.append("note", ts_ms=T0, message="x")  # type: ignore[union-attr]
    await h.engine.step()
    assert h.engine.trading_state == TradingState.REDUCING
    h.engine.set_trading_state(TradingState.ACTIVE, "operator resume")
    assert h.engine.trading_state == TradingState.REDUCING
    assert h.engine.trading_reason.startswith("storage: activity write failed")
    disk.failing = False
    h.close()


async def test_kill_on_a_full_disk_cancels_first_and_holds_after_restart(tmp_path: Path,
                                                                          disk: FailingDisk) -> None:
    db = tmp_path / "state.sqlite3"
    h = StackHarness(db)
    await h.filled_long()
    assert len(await h.orders()) == 4
    disk.failing = True
    result = await h.engine.kill("disk full test")  # no sqlite3.OperationalError escapes
    assert result.confirmed and list(await h.orders()) == ["i1:sl1"]  # the stop of the position stays
    assert h.engine.trading_state == TradingState.HALTED
    marker = Path(str(db) + ".kill")
    assert b'"killed":true' in marker.read_bytes() and b"disk full test" in marker.read_bytes()
    h.stack.close()  # the process ends with the disk still full
    disk.failing = False

    h2 = StackHarness(db)
    assert h2.engine.trading_state == TradingState.HALTED
    assert h2.engine.killswitch.reason == "disk full test" and not h2.engine.automation_on
    assert b'"killed":false' in marker.read_bytes(), "the database holds the kill now: marker cleared"
    h2.close()
    h3 = StackHarness(db)
    assert h3.engine.trading_state == TradingState.HALTED  # from the database alone
    h3.close()


async def test_kill_marker_falls_back_to_the_runtime_dir(tmp_path: Path, disk: FailingDisk) -> None:
    db = tmp_path / "db" / "state.sqlite3"
    run = tmp_path / "run"
    h = StackHarness(db, runtime_dir=run)
    await h.filled_long()
    marker = Path(str(db) + ".kill")
    marker.unlink()
    marker.mkdir()  # the marker beside the database cannot be written (even by root)
    disk.failing = True
    await h.engine.kill("fallback test")
    assert len(list(run.glob("kill-*.json"))) == 1
    h.stack.close()
    disk.failing = False
    h2 = StackHarness(db, runtime_dir=run)
    assert h2.engine.trading_state == TradingState.HALTED and h2.engine.killswitch.reason == "fallback test"
    h2.close()


def test_activity_backlog_is_bounded_and_its_overflow_is_reported(tmp_path: Path, disk: FailingDisk) -> None:
    health = StorageHealth()
    buf = ActivityBuffer(ActivityLog(tmp_path / "a.sqlite3"), health, max_rows=3, now_ms=lambda: T0)
    disk.failing = True
    for i in range(5):
        assert buf.append("note", ts_ms=T0 + i, message=f"row {i}") is False
    assert buf.pending == 3 and buf.dropped == 2 and health.dropped == {"activity": 2}
    assert not health.ok and "activity" in health.reason
    disk.failing = False
    assert buf.flush() and health.ok
    rows = buf.query(newest_first=False)
    assert [r.message for r in rows[:3]] == ["row 0", "row 1", "row 2"]
    assert rows[3].kind == "error" and "2 activity row(s) lost" in rows[3].message
    buf.close()


def test_journal_overlay_answers_reads_while_writes_wait(tmp_path: Path, disk: FailingDisk) -> None:
    health = StorageHealth()
    jb = JournalBuffer(Journal(tmp_path / "j.sqlite3"), health)
    assert jb.begin_intent("a", {"x": 1}, ts_ms=1)
    disk.failing = True
    assert jb.record_order("a", "entry", "a:e1", None, ts_ms=2)
    assert not jb.record_order("a", "entry", "a:e1", None, ts_ms=3), "a waiting tag is still known"
    jb.update_order("a:e1", order_id="p1", state="open", ts_ms=4)
    assert jb.begin_intent("b", {}, ts_ms=5) and not jb.begin_intent("b", {}, ts_ms=6)
    jb.intent_state("a", "active", ts_ms=7)
    assert jb.find_order(order_id="p1").client_tag == "a:e1"  # type: ignore[union-attr]
    assert [o.client_tag for o in jb.open_orders()] == ["a:e1"]
    assert {i.intent_id for i in jb.open_intents()} == {"a", "b"}
    assert jb.get_intent("a").state == "active"  # type: ignore[union-attr]
    assert jb.pending == 4 and not health.ok
    disk.failing = False
    assert jb.flush() and health.ok and jb.pending == 0
    j2 = Journal(tmp_path / "j.sqlite3")
    assert j2.find_order(client_tag="a:e1").state == "open"  # type: ignore[union-attr]
    assert j2.get_intent("a").state == "active" and j2.get_intent("b") is not None  # type: ignore[union-attr]
    j2.close()
    jb.close()


def test_state_store_keeps_the_latest_value_while_it_fails(tmp_path: Path, disk: FailingDisk) -> None:
    from storage.write_buffer import StateBuffer

    health = StorageHealth()
    sb = StateBuffer(StateStore(tmp_path / "s.sqlite3"), health)
    disk.failing = True
    assert not sb.put("k", b"1") and not sb.put("k", b"2")
    assert sb.get("k") == b"2" and sb.pending == 1 and "state" in health.failing
    disk.failing = False
    assert sb.flush() and health.ok
    sb.close()
    assert StateStore(tmp_path / "s.sqlite3").get("k") == b"2"


# ------------------------------------------------------------------ a real file system that fills up
@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "fs") as fs:
        yield fs


async def test_a_really_full_file_system_fails_closed_and_recovers(small_fs: Path) -> None:
    db = small_fs / "state.sqlite3"
    h = StackHarness(db)
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    filler = fill(small_fs)
    h.at_ms(T0 + 1000)
    h.trade(99.9, 50, Side.SELL)
    await h.engine.step()
    assert await h.position() == pytest.approx(10.0) and "i1:sl1" in await h.orders()
    assert h.engine.trading_state == TradingState.REDUCING
    assert "full" in h.engine.trading_reason
    result = await h.engine.kill("kill on a full file system")
    assert result.confirmed and list(await h.orders()) == ["i1:sl1"]  # the stop of the position stays
    assert b'"killed":true' in Path(str(db) + ".kill").read_bytes(), "the preallocated marker took it"
    filler.unlink()
    assert h.stack.flush_storage()
    assert b'"killed":false' in Path(str(db) + ".kill").read_bytes()
    h.close()
    h2 = StackHarness(db)
    assert h2.engine.trading_state == TradingState.HALTED
    assert h2.engine.killswitch.reason == "kill on a full file system"
    kinds = [r.kind for r in h2.stack.activity.query(newest_first=False)]  # type: ignore[union-attr]
    assert "sl_placed" in kinds and "kill_switch" in kinds and "trading_state" in kinds
    h2.close()


async def test_kill_on_a_full_file_system_without_prepared_marker_survives_restart(small_fs: Path) -> None:
    """Full before the kill and no room for even a marker beside the database: the runtime dir."""
    db = small_fs / "state.sqlite3"
    h = StackHarness(db, runtime_dir=small_fs.parent / "run")
    await h.filled_long()
    Path(str(db) + ".kill").unlink()
    fill(small_fs)
    result = await h.engine.kill("nowhere to write")
    assert result.confirmed
    h.stack.close()
    h2 = StackHarness(db, runtime_dir=small_fs.parent / "run")
    assert h2.engine.trading_state == TradingState.HALTED
    assert h2.engine.killswitch.reason == "nowhere to write"
    h2.close()


@pytest.mark.parametrize("store", ["journal", "state", "activity"])
async def test_each_write_path_alone_fails_closed(tmp_path: Path, store: str) -> None:
    """Only one store refuses its writes (the journal, the venue's state, the activity log)."""
    disk = FailingDisk(stores=(store,), error="disk I/O error")
    with write_hook(disk):
        h = StackHarness(tmp_path / "state.sqlite3")
        h.book(100.0, 100.1)
        h.intent()
        await h.engine.step()
        disk.failing = True
        h.at_ms(T0 + 1000)
        h.trade(99.9, 50, Side.SELL)
        await h.engine.step()
        assert disk.refused and {s for s, _ in disk.refused} == {store}
        assert await h.position() == pytest.approx(10.0) and "i1:sl1" in await h.orders()
        assert h.engine.trading_state == TradingState.REDUCING
        assert h.engine.trading_reason == f"storage: {store} write failed: disk I/O error"
        assert not h.stack.flush_storage()  # still failing: retried, kept
        disk.failing = False
        assert h.stack.flush_storage() and h.stack.health.ok
        h.close()
    h2 = StackHarness(tmp_path / "state.sqlite3")  # what was kept in memory reached the disk
    assert h2.engine.trading_state == TradingState.REDUCING, "the control state says reducing"
    await h2.engine.step()
    assert await h2.position() == pytest.approx(10.0) and "i1:sl1" in await h2.orders()
    rows = h2.stack.activity.query(newest_first=False)  # type: ignore[union-attr]
    assert "sl_placed" in [r.kind for r in rows]
    h2.close()
