"""One writer per state database: an exclusive ``flock`` on ``<state db>.lock`` beside it, taken
before anything reads, wipes or writes state and held for the life of the process (the kernel
releases it when the process ends, however it ends).

The holder writes who it is into the lock file (pid, start time, command: never an option's value,
which could be a secret); a second instance only reads that to say who holds the lock, and touches
nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.private_files import FILE_MODE, private_dir


class StateLockError(Exception):
    """Another process holds the state database (or the lock cannot be taken)."""


def lock_path(state_db: Path) -> Path:
    return Path(str(state_db) + ".lock")


def _holder_text(info: dict[str, Any]) -> str:
    parts = []
    if info.get("pid"):
        parts.append(f"pid {info['pid']}")
    started = info.get("started_ms")
    if isinstance(started, int | float) and started > 0:
        when = datetime.fromtimestamp(started / 1000, UTC)
        parts.append("started " + when.strftime("%Y-%m-%d %H:%M:%S UTC"))
    if info.get("command"):
        parts.append(f"command '{info['command']}'")
    return ", ".join(parts) or "holder unknown"


class StateLock:
    def __init__(self, state_db: Path) -> None:
        self.state_db = Path(state_db)
        self.path = lock_path(self.state_db)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, command: str) -> None:
        """Take the lock or raise :class:`StateLockError` naming the running instance and the path."""
        if self._fd is not None:
            return
        try:
            private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise StateLockError(f"cannot open the state lock {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = self._read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateLockError(
                    f"another autotrader is using the state database {self.state_db} "
                    f"({_holder_text(holder)}); lock {self.path}") from None
            raise StateLockError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        self._fd = fd
        info = {"pid": os.getpid(), "started_ms": int(time.time() * 1000), "command": command}
        with contextlib.suppress(OSError):  # who holds it: a courtesy (the flock is the lock)
            data = json.dumps(info).encode() + b"\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)

    @staticmethod
    def _read_holder(fd: int) -> dict[str, Any]:
        try:
            raw = os.pread(fd, 4096, 0)
            obj = json.loads(raw.decode("utf-8", "replace") or "{}")
        except (OSError, ValueError):
            return {}
        return obj if isinstance(obj, dict) else {}

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def command_line(argv: list[str]) -> str:
    """``autotrader <command> --flag ...`` from ``argv``: the command and option names only (an
    option's value may be a secret, e.g. ``--set venues.helius.auth_header=...``)."""
    words = ["autotrader"]
    expect_value = False
    for a in argv[1:]:
        if a.startswith("-"):
            words.append(a.split("=", 1)[0])
            expect_value = "=" not in a
        elif expect_value:
            expect_value = False
        elif len(words) == 1 or not words[-1].startswith("-"):
            words.append(a if a.isidentifier() else "…")
    return " ".join(words)
