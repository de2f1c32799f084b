"""State files are owner-only (issue 15, scope 7): the state database (activity log, journal, paper
account) with its WAL and shared-memory files, the lock, the kill marker and activity exports are
0600, in a 0700 directory when autotrader creates it; the journal is WAL with synchronous=FULL."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from storage.activity_log import ActivityLog
from storage.journal import Journal
from storage.kill_marker import KillMarker
from storage.state_lock import StateLock
from tests.conftest import REPO_ROOT


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_state_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "new" / "dir" / "state.sqlite3"
        log = ActivityLog(db)
        j = Journal(db)
        log.append("note", ts_ms=1, message="x")
        assert j.begin_intent("i", {})
        lock = StateLock(db)
        lock.acquire("autotrader test")
        marker = KillMarker(db)
        marker.prepare()
        for p in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm"), lock.path, marker.primary):
            assert p.exists() and _mode(p) == 0o600, (p, oct(_mode(p)))
        assert _mode(tmp_path / "new") == 0o700 and _mode(tmp_path / "new" / "dir") == 0o700
        conn = j._db()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        lock.release()
        j.close()
        log.close()
    finally:
        os.umask(old)


def test_an_older_world_readable_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    ActivityLog(db).close()
    os.chmod(db, 0o644)
    ActivityLog(db).close()
    assert _mode(db) == 0o600


def test_activity_export_is_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    with ActivityLog(db) as log:
        log.append("note", ts_ms=1, message="x")
    out = tmp_path / "exports" / "activity.jsonl"
    env = {**os.environ, "AUTOTRADER__CONTROL__SOCKET_PATH": str(tmp_path / "none.sock")}
    res = subprocess.run([sys.executable, "-m", "autotrader", "activity", "export", "--db", str(db), "--out",
                          str(out)], capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=60,
                         preexec_fn=lambda: os.umask(0o022))
    assert res.returncode == 0, res.stderr
    assert _mode(out) == 0o600 and _mode(out.parent) == 0o700
    assert '"message":"x"' in out.read_text()
