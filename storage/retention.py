"""Retention: delete daily Parquet files (merged, parts, stray temporaries) older than N days."""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import date, timedelta
from pathlib import Path

from storage.parquet_files import fsync_dir, kind_dirs
from storage.parquet_schema import parse_name

log = logging.getLogger(__name__)


def apply_retention(root: Path, retention_days: int, today: date) -> list[Path]:
    """Delete every day file of every kind under ``root`` whose UTC day is before
    ``today - retention_days``; ``today`` and the ``retention_days`` days before it are kept.

    Stray ``YYYYMMDD*.tmp`` files of expired days go too. Returns the deleted paths.
    """
    if retention_days < 1:
        raise ValueError("retention_days must be >= 1")
    cutoff = today - timedelta(days=retention_days)
    deleted: list[Path] = []
    for _venue, _symbol, _kind, kind_dir in kind_dirs(root):
        removed_here = False
        # Parts before their merged file: a crash in between must not unmask parts it covered.
        for name in sorted(os.listdir(kind_dir), key=lambda n: (".part" not in n, n)):
            parsed = parse_name(name.removesuffix(".tmp"))
            if parsed is None or parsed[0] >= cutoff:
                continue
            path = kind_dir / name
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                deleted.append(path)
                removed_here = True
        if removed_here:
            fsync_dir(kind_dir)
    if deleted:
        log.info("retention: deleted %d file(s) older than %s", len(deleted), cutoff.isoformat())
    return deleted
