"""Crash-safe daily Parquet files: atomic writes, part files, compaction, consistent reads.

The protocol (one writer per root; any number of readers, in- or out-of-process):

1. **Atomic writes.** Every file is written as ``<name>.tmp``, flushed and fsync'ed, then
   ``os.replace``'d onto ``<name>`` and the directory fsync'ed. A crash (SIGKILL, power loss)
   therefore leaves either the complete new file or no file at all under a ``.parquet`` name;
   at worst a stray ``*.tmp``, which readers never open and :func:`clean_dir` removes.
2. **Parts.** Each flush appends the buffered rows of one day as a new part
   ``YYYYMMDD.partNNNNN.parquet``; NNNNN only increases within a day directory (the writer
   continues after the highest part on disk and after the merged file's ``parts_through``).
3. **Compaction.** The merged file ``YYYYMMDD.parquet`` holds the old merged rows plus every part
   up to ``P`` and records ``P`` in its schema metadata (``autotrader.parts_through``). It is
   written atomically first; only then are the parts ``<= P`` deleted.
4. **Reads** take the merged file (if any) plus only the parts whose NNNNN is greater than its
   ``parts_through``. So during the window between steps of a compaction (or after a crash in
   it) nothing is counted twice, and today's not-yet-compacted parts are always included. If a
   part vanishes under a reader (a concurrent compaction deleted it), the read starts over.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.parquet_schema import SCHEMA_VERSION, merged_name, parse_name, schema_of, ts_column

log = logging.getLogger(__name__)

PARTS_THROUGH_KEY = b"autotrader.parts_through"
KIND_KEY = b"autotrader.kind"
VERSION_KEY = b"autotrader.schema_version"
_READ_RETRIES = 5


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_table(path: Path, table: pa.Table, metadata: dict[bytes, bytes] | None = None) -> None:
    """Write ``table`` to ``path`` via ``path.tmp`` + fsync + ``os.replace`` + directory fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


@dataclass
class DayFiles:
    """The files of one day in one kind directory."""

    merged: Path | None = None
    parts: dict[int, Path] = field(default_factory=dict)


def list_days(kind_dir: Path) -> dict[date, DayFiles]:
    """Every day with a merged file or parts in ``kind_dir`` (``*.tmp`` and foreign names ignored)."""
    days: dict[date, DayFiles] = {}
    try:
        names = os.listdir(kind_dir)
    except FileNotFoundError:
        return days
    for name in names:
        parsed = parse_name(name)
        if parsed is None:
            continue
        day, seq = parsed
        files = days.setdefault(day, DayFiles())
        if seq is None:
            files.merged = kind_dir / name
        else:
            files.parts[seq] = kind_dir / name
    return days


def parts_through(path: Path) -> int:
    """The highest part number folded into a merged file (0 when none)."""
    meta = pq.read_schema(path).metadata or {}
    try:
        return int(meta.get(PARTS_THROUGH_KEY, b"0"))
    except ValueError:
        return 0


def _read_file(path: Path, kind: str) -> tuple[pa.Table, int]:
    pf = pq.ParquetFile(path)
    table = pf.read()
    meta = pf.schema_arrow.metadata or {}
    try:
        through = int(meta.get(PARTS_THROUGH_KEY, b"0"))
    except ValueError:
        through = 0
    schema = schema_of(kind)
    table = table.select(schema.names).cast(schema) if table.schema != schema else table
    return table.replace_schema_metadata(None), through


def _read_day_once(kind_dir: Path, day: date, kind: str) -> tuple[pa.Table, int]:
    files = list_days(kind_dir).get(day, DayFiles())
    tables: list[pa.Table] = []
    through = 0
    if files.merged is not None:
        merged, through = _read_file(files.merged, kind)
        tables.append(merged)
    top = through
    for seq in sorted(files.parts):
        if seq <= through:
            continue
        part, _ = _read_file(files.parts[seq], kind)
        tables.append(part)
        top = seq
    if not tables:
        return schema_of(kind).empty_table(), 0
    return pa.concat_tables(tables), top


def read_day(kind_dir: Path, day: date, kind: str) -> tuple[pa.Table, int]:
    """All rows of ``day`` (merged file + newer parts) and the highest part number included.

    Retries when a file disappears mid-read (a concurrent compaction or retention pass).
    """
    for attempt in range(_READ_RETRIES):
        try:
            return _read_day_once(kind_dir, day, kind)
        except FileNotFoundError:
            if attempt == _READ_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def compact_day(kind_dir: Path, day: date, kind: str) -> int:
    """Merge the day's parts into ``YYYYMMDD.parquet`` atomically, then delete them.

    Returns the number of part files folded in (0 when there was nothing to do).
    """
    files = list_days(kind_dir).get(day)
    if files is None or not files.parts:
        return 0
    through = parts_through(files.merged) if files.merged is not None else 0
    pending = [s for s in files.parts if s > through]
    if pending:
        table, top = read_day(kind_dir, day, kind)
        col = ts_column(kind)
        if table.num_rows:
            table = table.take(pc.sort_indices(table, sort_keys=[(col, "ascending")]))
        meta = {
            PARTS_THROUGH_KEY: str(top).encode(),
            KIND_KEY: kind.encode(),
            VERSION_KEY: SCHEMA_VERSION.encode(),
        }
        atomic_write_table(kind_dir / merged_name(day), table, meta)
        through = top
    removed = 0
    for seq, path in files.parts.items():
        if seq <= through:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            removed += 1
    if removed:
        fsync_dir(kind_dir)
    return len(pending)


def next_part_seq(kind_dir: Path, day: date) -> int:
    """The part number the next flush of ``day`` must use."""
    files = list_days(kind_dir).get(day)
    if files is None:
        return 1
    top = max(files.parts, default=0)
    if files.merged is not None:
        top = max(top, parts_through(files.merged))
    return top + 1


def clean_dir(kind_dir: Path) -> int:
    """Remove stray ``*.tmp`` files left by a crash; returns how many were removed."""
    removed = 0
    try:
        names = os.listdir(kind_dir)
    except FileNotFoundError:
        return 0
    for name in names:
        if name.endswith(".tmp"):
            with contextlib.suppress(FileNotFoundError):
                (kind_dir / name).unlink()
            removed += 1
    return removed


def kind_dirs(root: Path) -> list[tuple[str, str, str, Path]]:
    """Every ``(venue, symbol, kind, path)`` directory under ``root``."""
    out: list[tuple[str, str, str, Path]] = []
    if not root.is_dir():
        return out
    for venue_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for sym_dir in sorted(p for p in venue_dir.iterdir() if p.is_dir()):
            for k_dir in sorted(p for p in sym_dir.iterdir() if p.is_dir()):
                out.append((venue_dir.name, sym_dir.name, k_dir.name, k_dir))
    return out
