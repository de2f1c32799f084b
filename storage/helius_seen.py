"""The Helius receiver's delivered signatures in SQLite (:class:`core.onchain.SeenSignatures`), so a
retry that arrives after a restart is a duplicate, not a second application of the transaction.

Entries expire after ``ttl_s`` and the table keeps at most ``max_entries`` (oldest dropped).
WAL with ``synchronous=NORMAL``: a commit is not fsynced (the receiver runs on the trading loop),
so a power cut may forget the last deliveries — the same window as the Parquet buffer. The file is
0600 in a 0700 directory. Errors are raised as OSError (the receiver counts them and keeps its
in-memory dedupe)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (signature TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS seen_by_time ON seen (seen_ms);
"""


class SeenStoreError(OSError):
    pass


class SqliteSeenSignatures:
    def __init__(self, path: Path, *, ttl_s: float, max_entries: int, prune_every: int = 1000) -> None:
        self.path = path
        self.ttl_ms = int(ttl_s * 1000)
        self.max_entries = max_entries
        self.prune_every = prune_every
        self._adds = 0
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # SQLite's -wal/-shm copy the mode
            self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout=2000")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise SeenStoreError(f"{path}: cannot open the seen-signature store: {e}") from None

    def contains(self, signature: str, now_ms: int) -> bool:
        try:
            with self._lock:
                row = self._conn.execute("SELECT 1 FROM seen WHERE signature = ? AND seen_ms >= ?",
                                         (signature, now_ms - self.ttl_ms)).fetchone()
        except sqlite3.Error as e:
            raise SeenStoreError(f"{self.path}: {e}") from None
        return row is not None

    def add(self, signatures: list[str], now_ms: int) -> None:
        if not signatures:
            return
        try:
            with self._lock:
                self._conn.execute("BEGIN")
                try:
                    self._conn.executemany("INSERT OR REPLACE INTO seen (signature, seen_ms) VALUES (?, ?)",
                                           [(s, now_ms) for s in signatures])
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._adds += len(signatures)
                if self._adds >= self.prune_every:
                    self._adds = 0
                    self._prune(now_ms)
        except sqlite3.Error as e:
            raise SeenStoreError(f"{self.path}: {e}") from None

    def prune(self, now_ms: int) -> int:
        """Drop expired entries and the oldest beyond ``max_entries``; returns how many are left."""
        try:
            with self._lock:
                return self._prune(now_ms)
        except sqlite3.Error as e:
            raise SeenStoreError(f"{self.path}: {e}") from None

    def _prune(self, now_ms: int) -> int:
        c = self._conn
        c.execute("DELETE FROM seen WHERE seen_ms < ?", (now_ms - self.ttl_ms,))
        n = int(c.execute("SELECT COUNT(*) FROM seen").fetchone()[0])
        if n > self.max_entries:
            c.execute("DELETE FROM seen WHERE signature IN (SELECT signature FROM seen ORDER BY seen_ms "
                      "LIMIT ?)", (n - self.max_entries,))
            n = self.max_entries
        return n

    def close(self) -> None:
        with self._lock:
            self._conn.close()
