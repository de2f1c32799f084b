"""Owner-only files: the state database, the journal, the activity log and exports are created 0600
in 0700 directories (they hold positions, orders and account ids).

Directories this process creates are 0700; an existing directory is left as it is (it may be the
user's choice, e.g. ``storage.state_db = "/srv/at/state.sqlite3"``), but every file written here is
0600 whatever the umask.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) 0700; an existing directory is kept as it is."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=DIR_MODE)
        os.chmod(d, DIR_MODE)


def tighten(path: Path) -> None:
    """Make an existing regular file of ours 0600 (files made by older versions were 0644)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) != FILE_MODE:
        os.chmod(path, FILE_MODE)


@contextlib.contextmanager
def owner_only_umask() -> Iterator[None]:
    """Files created inside (SQLite's database, WAL and shared-memory files) are born 0600."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def open_private(path: Path, mode: str = "w", **kw: object) -> TextIO:
    """``open(path, mode)`` for a text file created (or truncated) 0600 in a 0700 directory."""
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode, **kw)  # type: ignore[call-overload,no-any-return]
    except BaseException:
        os.close(fd)
        raise
