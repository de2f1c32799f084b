"""A real file system that fills up: a small tmpfs mounted for one test (root only; the test is
skipped with the reason where mounting is not allowed)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(mnt: Path, size: str = "4m") -> Iterator[Path]:
    mnt.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(fs: Path) -> Path:
    """Write a file until the file system is full; returns it (unlink it to free the space)."""
    filler = fs / "filler"
    with filler.open("wb", buffering=0) as f:  # unbuffered: close() has nothing left to flush
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return filler
