"""Where the durable writes stand (safety principle 7, "storage errors fail closed").

Every store of the state database (the order journal, the venue's state, the activity log)
reports each write it could not make and each time its backlog is written again. The engine reads
:attr:`StorageHealth.reason`: while it is not empty no new risk goes out (REDUCING); protective
orders stay and are still managed. Nothing here does I/O: the stores in ``storage/`` report, the
composition root shows it (top bar, ``status``, metrics, stderr).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Listener = Callable[[str, bool, str], None]  # (store, failing, error)


class StorageHealth:
    def __init__(self) -> None:
        #: store -> the last error of a write that is still waiting (absent when it is fine)
        self.failing: dict[str, str] = {}
        self.failures_total: dict[str, int] = {}
        #: writes waiting in memory per store (the backlog written again when space returns)
        self.pending: dict[str, int] = {}
        #: rows dropped because a bounded backlog overflowed (counted and reported, never silent)
        self.dropped: dict[str, int] = {}
        self.since_ms: dict[str, int] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, fn: Listener) -> None:
        """``fn(store, failing, error)`` on every change of a store between fine and failing."""
        self._listeners.append(fn)

    def failed(self, store: str, error: str, now_ms: int = 0, pending: int | None = None) -> None:
        self.failures_total[store] = self.failures_total.get(store, 0) + 1
        if pending is not None:
            self.pending[store] = pending
        first = store not in self.failing
        self.failing[store] = error
        if first:
            self.since_ms[store] = now_ms
            for fn in list(self._listeners):
                fn(store, True, error)

    def recovered(self, store: str) -> None:
        """Every waiting write of ``store`` is durable again."""
        self.pending[store] = 0
        if store in self.failing:
            del self.failing[store]
            self.since_ms.pop(store, None)
            for fn in list(self._listeners):
                fn(store, False, "")

    def set_pending(self, store: str, n: int) -> None:
        self.pending[store] = n

    def drop(self, store: str, n: int = 1) -> None:
        self.dropped[store] = self.dropped.get(store, 0) + n

    @property
    def ok(self) -> bool:
        return not self.failing

    @property
    def reason(self) -> str:
        """'' when every write is durable; else one line naming each failing store and its error."""
        if not self.failing:
            return ""
        parts = [f"{store} write failed: {err}" for store, err in sorted(self.failing.items())]
        return "storage: " + "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "failing": dict(self.failing),
            "since_ms": dict(self.since_ms),
            "pending": {k: v for k, v in self.pending.items() if v},
            "dropped": dict(self.dropped),
            "failures_total": dict(self.failures_total),
        }
