"""Small durable key/value state in the state database (SQLite, WAL, ``synchronous=FULL``): the paper
venue's account and the engine's control state (a kill stays engaged across a restart).

Each :meth:`StateStore.put` is committed (fsynced) before it returns."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from storage.activity_log import open_db
from storage.faults import before_write

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    updated_ms INTEGER NOT NULL
);
"""


class StateStoreError(Exception):
    pass


class StateStore:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._conn: sqlite3.Connection | None = open_db(self.path, readonly=readonly)
            if not readonly:
                self._conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError, Exception) as exc:
            raise StateStoreError(f"cannot open state store {self.path}: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateStoreError("state store is closed")
        return self._conn

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            try:
                before_write("state", key)
                self._db().execute(
                    "INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                    (key, value, int(time.time() * 1000)),
                )
            except sqlite3.Error as exc:
                raise StateStoreError(f"state store write failed ({self.path}): {exc}") from exc

    def get(self, key: str) -> bytes | None:
        with self._lock:
            try:
                row = self._db().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            except sqlite3.OperationalError:  # a read-only view of a database without the table yet
                return None
        return None if row is None else bytes(row[0])

    def put_json(self, key: str, value: Any) -> None:
        self.put(key, msgspec.json.encode(value))

    def get_json(self, key: str) -> Any:
        raw = self.get(key)
        return None if raw is None else msgspec.json.decode(raw)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
