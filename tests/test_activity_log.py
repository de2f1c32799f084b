"""Activity log: WAL, append/query/filter, export round trips, unknown kinds, durability on SIGKILL."""

from __future__ import annotations

import csv
import io
import json
import math
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.activity_log import KINDS, ActivityLog, ActivityLogError, parse_since


@pytest.fixture
def alog(tmp_path: Path) -> Iterator[ActivityLog]:
    log = ActivityLog(tmp_path / "sub" / "activity.sqlite")
    yield log
    log.close()


def _fill(log: ActivityLog) -> None:
    log.append("order_submitted", ts_ms=1_000, intent_id="i1", order_id="", message="entry buy 1 @ 100",
               data={"side": "buy", "size": 1.0, "price": 100.0})
    log.append("order_filled", ts_ms=2_000, intent_id="i1", order_id="o1", data={"avg_price": 100.0})
    log.append("sl_placed", ts_ms=3_000, intent_id="i1", order_id="o2", data={"trigger": 95.0})
    log.append("guard_block", ts_ms=4_000, message="spread 12 bps > 8 bps", data={"blocks": ["spread"]})
    log.append("kill_switch", ts_ms=5_000, message="manual: test", data={"reason": "test"})


def test_wal_mode_and_schema_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "activity.sqlite"
    with ActivityLog(path) as log:
        assert path.exists()
        assert log.journal_mode() == "wal"
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        conn.close()


def test_required_kinds_known() -> None:
    required = {
        "order_submitted", "order_partially_filled", "order_filled", "order_cancelled", "order_replaced",
        "sl_placed", "sl_moved", "trail_moved", "tp_hit", "sl_hit", "guard_block", "kill_switch", "error",
    }
    assert required <= KINDS


def test_append_and_query(alog: ActivityLog) -> None:
    _fill(alog)
    rows = alog.query()
    kinds = [r.kind for r in rows]
    assert kinds == ["kill_switch", "guard_block", "sl_placed", "order_filled", "order_submitted"]
    oldest = alog.query(newest_first=False)
    assert [r.id for r in oldest] == sorted(r.id for r in rows)
    first = oldest[0]
    assert first.intent_id == "i1" and first.message == "entry buy 1 @ 100"
    assert first.data == {"side": "buy", "size": 1.0, "price": 100.0}
    filtered = alog.query(kinds={"order_filled", "kill_switch"})
    assert [r.kind for r in filtered] == ["kill_switch", "order_filled"]
    assert [r.ts_ms for r in alog.query(since_ms=3_000, newest_first=False)] == [3_000, 4_000, 5_000]
    assert [r.kind for r in alog.query(limit=2)] == ["kill_switch", "guard_block"]
    assert alog.query(kinds=set()) == []
    assert alog.count() == 5


def test_append_returns_id_and_row(alog: ActivityLog) -> None:
    a = alog.append("note", ts_ms=1)
    row = alog.append_row("error", ts_ms=2, message="boom", data={"x": math.nan, "p": Path("/x")})
    assert row.id == a + 1
    assert row.data == {"x": None, "p": "/x"}  # non-finite -> null, unknown objects -> str
    assert alog.query(limit=1)[0] == row


def test_unknown_kind_refused(alog: ActivityLog) -> None:
    with pytest.raises(ActivityLogError, match="unknown activity kind 'order_fileld'"):
        alog.append("order_fileld", ts_ms=1)
    with pytest.raises(ActivityLogError, match="ts_ms"):
        alog.append("note", ts_ms=1.5)  # type: ignore[arg-type]
    with pytest.raises(ActivityLogError, match="dict"):
        alog.append("note", ts_ms=1, data=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ActivityLogError, match="unknown activity kind"):
        alog.query(kinds={"nope"})
    assert alog.count() == 0


def test_extra_kinds(tmp_path: Path) -> None:
    with ActivityLog(tmp_path / "x.sqlite", extra_kinds={"custom_thing"}) as log:
        log.append("custom_thing", ts_ms=1)
        assert log.query()[0].kind == "custom_thing"


def test_export_jsonl_round_trip(alog: ActivityLog) -> None:
    _fill(alog)
    out = io.StringIO()
    assert alog.export("jsonl", out) == 5
    lines = out.getvalue().splitlines()
    parsed = [json.loads(line) for line in lines]
    expected = [r.to_dict() for r in alog.query(newest_first=False)]
    assert parsed == expected
    out2 = io.StringIO()
    assert alog.export("jsonl", out2, since_ms=4_000) == 2
    assert [json.loads(x)["kind"] for x in out2.getvalue().splitlines()] == ["guard_block", "kill_switch"]


def test_export_csv_round_trip(alog: ActivityLog) -> None:
    _fill(alog)
    alog.append("error", ts_ms=6_000, message='comma, "quote"\nnewline', data={"k": "v,w"})
    out = io.StringIO()
    assert alog.export("csv", out) == 6
    reader = csv.DictReader(io.StringIO(out.getvalue()))
    got = [
        {**row, "id": int(row["id"]), "ts_ms": int(row["ts_ms"]), "data": json.loads(row["data"])}
        for row in reader
    ]
    assert got == [r.to_dict() for r in alog.query(newest_first=False)]


def test_export_bad_format(alog: ActivityLog) -> None:
    with pytest.raises(ActivityLogError, match="jsonl"):
        alog.export("xml", io.StringIO())  # type: ignore[arg-type]


def test_readonly_reader_sees_committed_rows(tmp_path: Path) -> None:
    path = tmp_path / "activity.sqlite"
    with ActivityLog(path) as writer:
        writer.append("startup", ts_ms=1)
        with ActivityLog(path, readonly=True) as reader:
            assert [r.kind for r in reader.query()] == ["startup"]
            writer.append("shutdown", ts_ms=2)
            assert [r.kind for r in reader.query()] == ["shutdown", "startup"]
            with pytest.raises(ActivityLogError, match="read-only"):
                reader.append("note", ts_ms=3)
    with pytest.raises(ActivityLogError, match="no activity database"):
        ActivityLog(tmp_path / "missing.sqlite", readonly=True)


def test_reopen_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "activity.sqlite"
    with ActivityLog(path) as log:
        _fill(log)
    with ActivityLog(path) as log:
        assert log.count() == 5
        assert log.append("note", ts_ms=9) == 6


def test_rows_committed_before_sigkill_survive(tmp_path: Path) -> None:
    path = tmp_path / "activity.sqlite"
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from storage.activity_log import ActivityLog
        log = ActivityLog(Path({str(path)!r}))
        i = 0
        while True:
            i += 1
            row_id = log.append("order_submitted", ts_ms=i, intent_id=f"i{{i}}", data={{"n": i}})
            sys.stdout.write(f"{{row_id}}\\n")
            sys.stdout.flush()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        while len(acked) < 200:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(int(line))
        proc.send_signal(signal.SIGKILL)  # mid-write, no cleanup
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert len(acked) == 200, "writer subprocess died early"
    assert proc.returncode == -signal.SIGKILL
    with ActivityLog(path) as log:
        stored = {r.id: r for r in log.query(newest_first=False)}
    missing = [i for i in acked if i not in stored]
    assert not missing, f"rows acknowledged but lost: {missing[:10]}"
    assert all(stored[i].data == {"n": i} for i in acked)


def test_parse_since() -> None:
    now = 1_700_000_000_000
    assert parse_since("24h", now) == now - 86_400_000
    assert parse_since("15m", now) == now - 900_000
    assert parse_since("7d", now) == now - 7 * 86_400_000
    assert parse_since("1700000000000") == 1_700_000_000_000
    assert parse_since("2024-01-01") == 1_704_067_200_000
    assert parse_since("2024-01-01T01:00:00+01:00") == 1_704_067_200_000
    with pytest.raises(ActivityLogError, match="--since"):
        parse_since("yesterday")


def test_export_refuses_to_overwrite_its_own_database(tmp_path: Path) -> None:
    """`activity export --out` naming the database (or its WAL) is refused (exit 2); the log stays."""
    from typer.testing import CliRunner

    from autotrader.cli import app

    path = tmp_path / "state.sqlite3"
    with ActivityLog(path) as log:
        log.append("startup", ts_ms=1)
    for out in (path, tmp_path / "." / "state.sqlite3-wal"):
        r = CliRunner().invoke(app, ["activity", "export", "--db", str(path), "--out", str(out)])
        assert r.exit_code == 2 and "the activity database itself" in r.output, r.output
    with ActivityLog(path, readonly=True) as reader:
        assert [r.kind for r in reader.query()] == ["startup"]
