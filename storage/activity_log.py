"""Activity log: every order, fill, guard block and kill, in SQLite (WAL), written before it is shown.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``, so every :meth:`ActivityLog.append`
is fsynced to the WAL before it returns (a crash or power loss after ``append`` returns never loses
the row). Orders and kills are rare, so the fsync per row costs nothing that matters.

One writer: the runtime owns one ``ActivityLog``; readers (``autotrader activity export`` against
a running daemon) open the same file with ``readonly=True`` and see every committed row (WAL lets
readers and the writer run concurrently).

Rows are ordered by ``id`` (write order), not by ``ts_ms``: in a replay ``ts_ms`` is event time.

The order/intent journal (:mod:`storage.journal`) may live in the same file (its own tables).
"""

from __future__ import annotations

import contextlib
import csv
import re
import sqlite3
import threading
import time
from collections.abc import Generator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

import msgspec

from core.engine_types import EVENT_KINDS, EngineEvent
from core.event_text import describe
from storage.faults import before_write
from storage.private_files import owner_only_umask, private_dir, tighten

SCHEMA_VERSION = 1

#: Known activity kinds: every engine event kind and a few of the process's own. ``append`` refuses
#: anything else (a typo must not silently invent a kind).
KINDS: frozenset[str] = frozenset(EVENT_KINDS) | frozenset(
    {
        # orders
        "order_submitted",
        "order_accepted",
        "order_rejected",
        "order_partially_filled",
        "order_filled",
        "order_cancelled",
        "order_replaced",
        "order_modified",
        "order_expired",
        # protection / exits
        "sl_placed",
        "sl_moved",
        "trail_moved",
        "tp_placed",
        "tp_hit",
        "sl_hit",
        "position_flattened",
        # intents
        "intent_received",
        "intent_skipped",
        "intent_done",
        # guards, kill switch, automation
        "guard_block",
        "kill_switch",
        "kill_confirmed",
        "automation_enabled",
        "automation_disabled",
        # restart reconciliation
        "reconcile",
        "orphan_adopted",
        "orphan_cancelled",
        "order_missing",
        # venue and process
        "venue_status",
        "startup",
        "shutdown",
        "error",
        "note",
    }
)

COLUMNS = ("id", "ts_ms", "kind", "intent_id", "order_id", "message", "data")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS activity (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    intent_id TEXT    NOT NULL DEFAULT '',
    order_id  TEXT    NOT NULL DEFAULT '',
    message   TEXT    NOT NULL DEFAULT '',
    data      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS activity_ts ON activity (ts_ms);
CREATE INDEX IF NOT EXISTS activity_kind ON activity (kind, id);
"""


class ActivityLogError(Exception):
    """The activity log refused a row or could not be opened."""


class ActivityWriteError(ActivityLogError):
    """A row could not be written (disk full, I/O error, read-only file system): the row itself
    was fine, the storage was not."""


class ActivityRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    ts_ms: int
    kind: str
    intent_id: str = ""
    order_id: str = ""
    message: str = ""
    data: dict[str, Any] = msgspec.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts_ms": self.ts_ms,
            "kind": self.kind,
            "intent_id": self.intent_id,
            "order_id": self.order_id,
            "message": self.message,
            "data": self.data,
        }


def _enc_hook(obj: Any) -> Any:
    # anything msgspec cannot encode natively (Path, Decimal, exceptions...) is stored as text
    return str(obj)


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)


def encode_data(data: dict[str, Any] | None) -> str:
    """``data`` as JSON text (non-finite floats become null, unknown objects their ``str``)."""
    if data is None:
        return "{}"
    if not isinstance(data, dict):
        raise ActivityLogError(f"activity data must be a dict, got {type(data).__name__}")
    return _encoder.encode(data).decode()


def open_db(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with ``synchronous=FULL`` (shared by the activity log and journal).

    Created 0600 (with its WAL and shared-memory files) in a 0700 directory when it creates one.
    Autocommit mode (``isolation_level=None``): each statement commits unless wrapped in an
    explicit ``BEGIN``; writes are committed before the call that made them returns.
    """
    if readonly:
        if not path.exists():
            raise ActivityLogError(f"no activity database at {path}")
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout=5000")
        return conn
    private_dir(path.parent)
    with owner_only_umask():  # the database, its WAL and shared-memory files are born 0600
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=5000")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise ActivityLogError(f"could not put {path} in WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
    for suffix in ("", "-wal", "-shm"):
        tighten(Path(str(path) + suffix))
    return conn


def remove_db(path: Path) -> None:
    """Delete a state database with its WAL and shared-memory files (a fresh start)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


class ActivityLog:
    """Append-only activity log. Thread-safe (one connection behind a lock); one writer process."""

    def __init__(self, path: Path, *, readonly: bool = False, extra_kinds: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.kinds: frozenset[str] = KINDS | frozenset(extra_kinds)
        self._lock = threading.Lock()
        try:
            self._conn: sqlite3.Connection | None = open_db(self.path, readonly=readonly)
            if not readonly:
                self._conn.executescript(_SCHEMA)
                if self._conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")  # a write: only once
        except sqlite3.Error as exc:
            raise ActivityLogError(f"cannot open activity log {self.path}: {exc}") from exc

    # --- writing -----------------------------------------------------------------------------

    def append(
        self,
        kind: str,
        *,
        ts_ms: int,
        intent_id: str = "",
        order_id: str = "",
        message: str = "",
        data: dict[str, Any] | None = None,
    ) -> int:
        """Write one row and commit it (fsync) before returning its id."""
        return self.append_row(
            kind, ts_ms=ts_ms, intent_id=intent_id, order_id=order_id, message=message, data=data
        ).id

    def append_event(self, ev: EngineEvent) -> ActivityRow:
        """Record one engine event (before it is published)."""
        oid = str(ev.data.get("order_id") or "")
        return self.append_row(ev.kind, ts_ms=ev.ts, intent_id=ev.intent_id, order_id=oid,
                               message=describe(ev), data=ev.data)

    def append_row(
        self,
        kind: str,
        *,
        ts_ms: int,
        intent_id: str = "",
        order_id: str = "",
        message: str = "",
        data: dict[str, Any] | None = None,
    ) -> ActivityRow:
        """Like :meth:`append` but returns the stored row (to publish it once it is durable)."""
        if kind not in self.kinds:
            raise ActivityLogError(
                f"unknown activity kind {kind!r}; known kinds: {', '.join(sorted(self.kinds))}"
            )
        if isinstance(ts_ms, bool) or not isinstance(ts_ms, int):
            raise ActivityLogError(f"ts_ms must be an int (ms since the epoch), got {ts_ms!r}")
        text = encode_data(data)
        with self._lock:
            conn = self._writer()
            try:
                before_write("activity", kind)
                cur = conn.execute(
                    "INSERT INTO activity (ts_ms, kind, intent_id, order_id, message, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (ts_ms, kind, str(intent_id), str(order_id), str(message), text),
                )
            except sqlite3.Error as exc:
                raise ActivityWriteError(f"activity log write failed ({self.path}): {exc}") from exc
            row_id = cur.lastrowid
        assert row_id is not None
        return ActivityRow(
            id=row_id,
            ts_ms=ts_ms,
            kind=kind,
            intent_id=str(intent_id),
            order_id=str(order_id),
            message=str(message),
            data=msgspec.json.decode(text),
        )

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ActivityLogError("activity log is closed")
        if self.readonly:
            raise ActivityLogError("activity log opened read-only")
        return self._conn

    # --- reading -----------------------------------------------------------------------------

    def _select(
        self,
        kinds: set[str] | frozenset[str] | None,
        since_ms: int | None,
        limit: int | None,
        newest_first: bool,
    ) -> tuple[str, list[Any]]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM activity"
        where: list[str] = []
        params: list[Any] = []
        if kinds is not None:
            unknown = set(kinds) - self.kinds
            if unknown:
                raise ActivityLogError(f"unknown activity kind(s): {', '.join(sorted(unknown))}")
            if not kinds:
                where.append("0")
            else:
                where.append(f"kind IN ({', '.join('?' * len(kinds))})")
                params.extend(sorted(kinds))
        if since_ms is not None:
            where.append("ts_ms >= ?")
            params.append(int(since_ms))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id " + ("DESC" if newest_first else "ASC")
        if limit is not None:
            if limit < 0:
                raise ActivityLogError(f"limit must be >= 0, got {limit}")
            sql += " LIMIT ?"
            params.append(int(limit))
        return sql, params

    @staticmethod
    def _row(r: tuple[Any, ...]) -> ActivityRow:
        return ActivityRow(
            id=r[0], ts_ms=r[1], kind=r[2], intent_id=r[3], order_id=r[4], message=r[5],
            data=msgspec.json.decode(r[6]) if r[6] else {},
        )

    def _iter(
        self,
        kinds: set[str] | frozenset[str] | None,
        since_ms: int | None,
        limit: int | None,
        newest_first: bool,
    ) -> Generator[ActivityRow, None, None]:
        sql, params = self._select(kinds, since_ms, limit, newest_first)
        with self._lock:
            if self._conn is None:
                raise ActivityLogError("activity log is closed")
            rows = self._conn.execute(sql, params)
            while True:
                batch = rows.fetchmany(500)
                if not batch:
                    return
                for r in batch:
                    yield self._row(r)

    def query(
        self,
        kinds: set[str] | frozenset[str] | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[ActivityRow]:
        """Rows with ``kind`` in ``kinds`` and ``ts_ms >= since_ms``, newest (last written) first."""
        return list(self._iter(kinds, since_ms, limit, newest_first))

    def count(self) -> int:
        with self._lock:
            if self._conn is None:
                raise ActivityLogError("activity log is closed")
            n: int = self._conn.execute("SELECT COUNT(*) FROM activity").fetchone()[0]
        return n

    def export(
        self,
        fmt: Literal["jsonl", "csv"],
        out: TextIO,
        since_ms: int | None = None,
        kinds: set[str] | frozenset[str] | None = None,
    ) -> int:
        """Write rows oldest first as JSON lines or CSV (``data`` as a JSON text column); returns
        the number of rows written."""
        if fmt not in ("jsonl", "csv"):
            raise ActivityLogError(f"export format must be 'jsonl' or 'csv', got {fmt!r}")
        # closing: a failed write (a reader that closed the pipe) must end the generator, which
        # holds the lock, before anyone (close()) waits for it
        n = 0
        with contextlib.closing(self._iter(kinds, since_ms, None, newest_first=False)) as rows:
            if fmt == "jsonl":
                for row in rows:
                    out.write(_encoder.encode(row.to_dict()).decode())
                    out.write("\n")
                    n += 1
            else:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(COLUMNS)
                for row in rows:
                    writer.writerow(
                        [row.id, row.ts_ms, row.kind, row.intent_id, row.order_id, row.message,
                         _encoder.encode(row.data).decode()]
                    )
                    n += 1
        out.flush()
        return n

    def journal_mode(self) -> str:
        with self._lock:
            if self._conn is None:
                raise ActivityLogError("activity log is closed")
            return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ActivityLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_since(text: str, now_ms: int | None = None) -> int:
    """``--since`` value → ms since the epoch. Accepts a duration back from now (``90s``, ``15m``,
    ``24h``, ``7d``, ``2w``), an ISO-8601 date/time (UTC unless it carries an offset) or integer
    epoch milliseconds."""
    raw = text.strip()
    m = _DURATION.match(raw)
    value: int | None = None
    if m:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        back = float(m.group(1)) * _UNIT_MS[m.group(2)]
        value = now - int(back) if back < 2**62 else None
    elif raw.isdigit():
        value = int(raw)
    if m or raw.isdigit():
        if value is None or not -(2**62) < value < 2**62:  # SQLite integers are 64-bit
            raise ActivityLogError(f"--since is out of range: {text!r}")
        return value
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ActivityLogError(
            f"--since must be a duration (e.g. 24h, 7d), an ISO date/time or epoch ms, got {text!r}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
