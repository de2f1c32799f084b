"""A seam for tests: a hook called before every durable write of the state database.

The journal, the activity log and the key/value state store call :func:`before_write` just before
each write. Tests install a hook that raises ``sqlite3.OperationalError("database or disk is
full")`` (a file system that fails on demand) or ends the process at the N-th write (the kill-point
harness). Without a hook (production) the call does nothing.
"""

from __future__ import annotations

from collections.abc import Callable

#: ``hook(store, operation)``; may raise (the write then fails as if the disk had refused it)
WriteHook = Callable[[str, str], None]

_hook: WriteHook | None = None


def set_write_hook(hook: WriteHook | None) -> WriteHook | None:
    """Install ``hook`` (``None`` removes it); returns the previous one."""
    global _hook
    prev, _hook = _hook, hook
    return prev


def before_write(store: str, op: str) -> None:
    if _hook is not None:
        _hook(store, op)
