"""The activity log and the key/value state store as the runtime writes them: a write the storage
refuses (disk full, I/O error, read-only file system) is kept in memory, reported to the
:class:`core.storage_health.StorageHealth` (the engine goes REDUCING) and written again later
(:meth:`flush`, called about once a second and before every new write). Nothing is dropped because
a save failed; the activity backlog is bounded and what overflows it is counted and reported.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any

from core.engine_types import EngineEvent
from core.event_text import describe
from core.storage_health import StorageHealth
from storage.activity_log import ActivityLog, ActivityRow, ActivityWriteError
from storage.state_store import StateStore, StateStoreError

log = logging.getLogger(__name__)

#: rows waiting while the activity log cannot be written (engine events are rare: hours of them)
MAX_PENDING_ROWS = 10_000


def is_storage_error(exc: BaseException) -> bool:
    """A failure of the storage itself (retry later), not of the data written (a bug: raise)."""
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return False
    return isinstance(exc, sqlite3.DatabaseError | OSError | ActivityWriteError | StateStoreError)


def short(exc: BaseException) -> str:
    cause = exc.__cause__
    return str(cause) if cause is not None and str(cause) else (str(exc) or type(exc).__name__)


class ActivityBuffer:
    """:class:`ActivityLog` writes that wait in memory (oldest first, order kept) while it fails."""

    STORE = "activity"

    def __init__(self, log_: ActivityLog, health: StorageHealth, *, max_rows: int = MAX_PENDING_ROWS,
                 now_ms: Callable[[], int] = lambda: 0) -> None:
        self.log = log_
        self.health = health
        self.max_rows = max_rows
        self.now_ms = now_ms
        self._rows: deque[dict[str, Any]] = deque()  # append_row keyword arguments
        self.dropped = 0
        self._dropped_unsaid = 0

    @property
    def path(self) -> Any:
        return self.log.path

    @property
    def kinds(self) -> frozenset[str]:
        return self.log.kinds

    @property
    def pending(self) -> int:
        return len(self._rows)

    def append_event(self, ev: EngineEvent) -> None:
        self.append(ev.kind, ts_ms=ev.ts, intent_id=ev.intent_id, order_id=str(ev.data.get("order_id") or ""),
                    message=describe(ev), data=ev.data)

    def append(self, kind: str, *, ts_ms: int, intent_id: str = "", order_id: str = "", message: str = "",
               data: dict[str, Any] | None = None) -> bool:
        """Write the row now (True) or keep it for :meth:`flush` (False). A row the log refuses as
        such (an unknown kind) raises: that is a bug, not a storage problem."""
        row: dict[str, Any] = {"kind": kind, "ts_ms": ts_ms, "intent_id": intent_id, "order_id": order_id,
               "message": message, "data": data}
        if kind not in self.log.kinds:
            self.log.append_row(**row)  # raises ActivityLogError naming the kind
        if self._rows and not self.flush():
            self._queue(row)
            return False
        try:
            self.log.append_row(**row)
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            self._queue(row)
            self._failed(exc)
            return False
        return True

    def _queue(self, row: dict[str, Any]) -> None:
        if len(self._rows) >= self.max_rows:
            self.dropped += 1
            self._dropped_unsaid += 1
            self.health.drop(self.STORE)
            return
        self._rows.append(row)
        self.health.set_pending(self.STORE, len(self._rows))

    def _failed(self, exc: BaseException) -> None:
        self.health.failed(self.STORE, short(exc), self.now_ms(), pending=len(self._rows))

    def flush(self) -> bool:
        """Write the backlog in order; True when nothing waits any more."""
        rows = self._rows
        try:
            while rows:
                self.log.append_row(**rows[0])
                rows.popleft()
            if self._dropped_unsaid:
                n = self._dropped_unsaid
                self.log.append_row("error", ts_ms=self.now_ms(), message=(
                    f"{n} activity row(s) lost: the in-memory backlog ({self.max_rows} rows) overflowed "
                    "while the activity log could not be written"), data={"stage": "storage", "dropped": n})
                self._dropped_unsaid = 0
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            self._failed(exc)
            return False
        self.health.recovered(self.STORE)
        return True

    # reads: what is durable (a waiting row shows once it is written)
    def query(self, *args: Any, **kw: Any) -> list[ActivityRow]:
        return self.log.query(*args, **kw)

    def close(self) -> None:
        self.flush()
        self.log.close()


class StateBuffer:
    """:class:`StateStore` puts that wait in memory (the latest value per key) while it fails."""

    STORE = "state"

    def __init__(self, store: StateStore, health: StorageHealth, *,
                 now_ms: Callable[[], int] = lambda: 0) -> None:
        self.store = store
        self.health = health
        self.now_ms = now_ms
        self._pending: dict[str, bytes] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def put(self, key: str, value: bytes) -> bool:
        """Durable now (True), or kept (the latest value of ``key``) for :meth:`flush` (False)."""
        self._pending[key] = value
        return self.flush()

    def put_json(self, key: str, value: Any) -> bool:
        import msgspec

        return self.put(key, msgspec.json.encode(value))

    def get(self, key: str) -> bytes | None:
        return self._pending[key] if key in self._pending else self.store.get(key)

    def get_json(self, key: str) -> Any:
        import msgspec

        raw = self.get(key)
        return None if raw is None else msgspec.json.decode(raw)

    def flush(self) -> bool:
        try:
            for key in list(self._pending):
                self.store.put(key, self._pending[key])
                del self._pending[key]
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            self.health.failed(self.STORE, short(exc), self.now_ms(), pending=len(self._pending))
            return False
        self.health.recovered(self.STORE)
        return True

    def close(self) -> None:
        self.flush()
        self.store.close()
