"""The first thing a run does with its state database: take its lock (one writer per state
directory, :mod:`storage.state_lock`), and only then wipe it when the run starts afresh (the demo).
A second instance is refused before it reads, wipes or writes anything."""

from __future__ import annotations

import sys
from pathlib import Path

from storage.activity_log import remove_db
from storage.state_lock import StateLock, StateLockError, command_line

__all__ = ["StateLockError", "claim_state"]


def claim_state(state_db: Path, *, fresh: bool = False) -> StateLock:
    """Lock ``state_db`` (raises :class:`StateLockError` naming the holder), then wipe it if ``fresh``.
    The lock is held until :meth:`StateLock.release` or the end of the process."""
    lock = StateLock(state_db)
    lock.acquire(command_line(sys.argv))
    if fresh:
        remove_db(state_db)
    return lock
