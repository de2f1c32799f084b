"""Buffered, crash-safe Parquet recorder for market data.

Layout: ``<root>/<venue>/<SYMBOL>/<kind>/YYYYMMDD.parquet`` (kinds: ``bars``, ``funding``,
``open_interest``, ``liquidations``, ``usdc_trades``; derived ``bars_1h``), one file per UTC day
of the rows' own event timestamps, plus ``YYYYMMDD.partNNNNN.parquet`` files for rows flushed
since the day was last compacted. Schemas: :mod:`storage.parquet_schema`.

Durability (protocol details in :mod:`storage.parquet_files`):

* :meth:`ParquetStore.add` buffers a row in memory. Once the oldest buffered row has waited
  ``flush_interval_s`` (by the injected clock), the next ``add`` — or :meth:`maybe_flush`, which
  the owner should call from a periodic timer so sparse kinds are not held back — writes
  everything buffered: one new part file per (venue, symbol, kind, day), each via ``.tmp`` +
  fsync + atomic rename. A crash (SIGKILL) therefore loses at most the rows buffered in the last
  ``flush_interval_s`` (plus the duration of one flush), and every ``*.parquet`` file left behind
  is complete and readable.
* After writing parts the flush compacts days that are finished (earlier than the clock's UTC
  day) or have ``max_parts`` parts or more, and recomputes ``bars_1h`` for each day whose bars
  changed. :meth:`close` flushes and compacts everything it touched.
* At construction the store removes stray ``*.tmp`` files, finishes interrupted compactions
  (compacting every day that still has parts and refreshing its hourly rollup), and applies
  retention when ``retention_days`` is given (then again once per UTC day, at a flush).

One writer per root. ``add`` and ``flush`` are thread-safe, so an asyncio owner may run
``flush``/``maybe_flush`` in a worker thread (``asyncio.to_thread``) while ``add`` stays on the
loop. Rows are stored exactly as given (no de-duplication): the recorder should add closed
bars only.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

from core.clock import Clock, WallClock
from storage.parquet_files import (
    atomic_write_table,
    clean_dir,
    compact_day,
    kind_dirs,
    list_days,
    next_part_seq,
)
from storage.parquet_schema import (
    KINDS,
    ROLLUP_KIND,
    Record,
    day_of_ms,
    part_name,
    rows_to_table,
    schema_of,
    to_row,
)
from storage.retention import apply_retention
from storage.rollups import write_day_rollup

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (kind, venue, symbol)
Row = tuple[Any, ...]


class ParquetStore:
    """Batch rows per (kind, venue, symbol) and write them as daily Parquet files."""

    def __init__(
        self,
        root: Path,
        flush_interval_s: float = 60.0,
        clock: Clock | None = None,
        *,
        retention_days: int | None = None,
        max_parts: int = 30,
        auto_flush: bool = True,
        recover: bool = True,
    ) -> None:
        if flush_interval_s <= 0:
            raise ValueError("flush_interval_s must be > 0")
        if max_parts < 1:
            raise ValueError("max_parts must be >= 1")
        self.root = Path(root)
        self.flush_interval_s = float(flush_interval_s)
        self.clock: Clock = clock if clock is not None else WallClock()
        self.retention_days = retention_days
        self.max_parts = max_parts
        self.auto_flush = auto_flush
        self.flushes = 0
        self.rows_written = 0
        self.compactions = 0
        self._buf: dict[Key, list[Row]] = defaultdict(list)
        self._oldest_s: float | None = None
        self._buf_lock = threading.Lock()
        self._io_lock = threading.RLock()
        self._next_seq: dict[tuple[Path, date], int] = {}
        self._touched: set[tuple[Key, date]] = set()
        self._retention_day: date | None = None
        self._closed = False
        self.root.mkdir(parents=True, exist_ok=True)
        if recover:
            self.recover()
        self._maybe_apply_retention()

    # ------------------------------------------------------------------ paths

    def kind_dir(self, kind: str, venue: str, symbol: str) -> Path:
        return self.root / venue / symbol / kind

    def _today(self) -> date:
        return day_of_ms(self.clock.now_ms())

    # ------------------------------------------------------------------ writing

    def add(self, kind: str, venue: str, symbol: str, record: Record) -> None:
        """Buffer one record of ``kind`` (its core model); flush when the window has passed."""
        if self._closed:
            raise RuntimeError("ParquetStore is closed")
        row = to_row(kind, record)
        with self._buf_lock:
            if self._oldest_s is None:
                self._oldest_s = self.clock.now_s()
            self._buf[(kind, venue, symbol)].append(row)
        if self.auto_flush and self.due():
            self.flush()

    def add_many(self, kind: str, venue: str, symbol: str, records: list[Record]) -> None:
        if self._closed:
            raise RuntimeError("ParquetStore is closed")
        rows = [to_row(kind, r) for r in records]
        if not rows:
            return
        with self._buf_lock:
            if self._oldest_s is None:
                self._oldest_s = self.clock.now_s()
            self._buf[(kind, venue, symbol)].extend(rows)
        if self.auto_flush and self.due():
            self.flush()

    def due(self) -> bool:
        """True when the oldest buffered row has waited at least ``flush_interval_s``."""
        oldest = self._oldest_s
        return oldest is not None and self.clock.now_s() - oldest >= self.flush_interval_s

    def pending_rows(self) -> int:
        with self._buf_lock:
            return sum(len(rows) for rows in self._buf.values())

    def maybe_flush(self) -> bool:
        """Flush if due (call this from a timer, e.g. every second); returns whether it flushed."""
        if self.due():
            self.flush()
            return True
        return False

    def flush(self) -> int:
        """Write everything buffered as part files, then compact/roll up as needed.

        Returns the number of rows written. If writing fails, the rows not yet on disk go back
        into the buffer and the error propagates.
        """
        with self._io_lock:
            with self._buf_lock:
                buf, self._buf = self._buf, defaultdict(list)
                self._oldest_s = None
            written_days: set[tuple[Key, date]] = set()
            groups = [
                (key, day, rows) for key, key_rows in buf.items() for day, rows in self._by_day(key, key_rows)
            ]
            count = 0
            for i, (key, day, rows) in enumerate(groups):
                try:
                    self._write_part(key, day, rows)
                except BaseException:
                    self._requeue(groups[i:])
                    raise
                count += len(rows)
                written_days.add((key, day))
                self._touched.add((key, day))
            self.flushes += 1
            self.rows_written += count
            self._after_write(written_days)
            self._maybe_apply_retention()
            return count

    def close(self) -> None:
        """Flush, compact every day this store wrote to, and refuse further rows."""
        if self._closed:
            return
        with self._io_lock:
            self.flush()
            for key, day in sorted(self._touched):
                kind, venue, symbol = key
                if compact_day(self.kind_dir(kind, venue, symbol), day, kind):
                    self.compactions += 1
            self._touched.clear()
            self._closed = True

    def __enter__(self) -> ParquetStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ maintenance

    def recover(self) -> None:
        """Remove ``*.tmp`` files and compact every day left with parts (e.g. after a crash)."""
        with self._io_lock:
            for venue, symbol, kind, path in kind_dirs(self.root):
                clean_dir(path)
                if kind not in KINDS:
                    continue
                for day, files in sorted(list_days(path).items()):
                    if not files.parts:
                        continue
                    if compact_day(path, day, kind):
                        self.compactions += 1
                    if kind == "bars":
                        self._rollup(venue, symbol, day)

    def compact(self) -> int:
        """Compact every day with parts under the root now; returns how many days were merged."""
        merged = 0
        with self._io_lock:
            for _venue, _symbol, kind, path in kind_dirs(self.root):
                if kind not in KINDS:
                    continue
                for day, files in sorted(list_days(path).items()):
                    if files.parts and compact_day(path, day, kind):
                        merged += 1
            self.compactions += merged
        return merged

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _by_day(key: Key, rows: list[Row]) -> list[tuple[date, list[Row]]]:
        # the event timestamp is the first column of every kind's schema
        by_day: dict[date, list[Row]] = {}
        for row in rows:
            by_day.setdefault(day_of_ms(int(row[0])), []).append(row)
        return sorted(by_day.items())

    def _requeue(self, groups: list[tuple[Key, date, list[Row]]]) -> None:
        with self._buf_lock:
            for key, _day, rows in groups:
                self._buf[key][:0] = rows
            if self._oldest_s is None:
                self._oldest_s = self.clock.now_s()

    def _write_part(self, key: Key, day: date, rows: list[Row]) -> None:
        kind, venue, symbol = key
        path = self.kind_dir(kind, venue, symbol)
        seq = self._next_seq.get((path, day))
        if seq is None:
            seq = next_part_seq(path, day)
        atomic_write_table(path / part_name(day, seq), rows_to_table(kind, rows))
        self._next_seq[(path, day)] = seq + 1

    def _after_write(self, written: set[tuple[Key, date]]) -> None:
        today = self._today()
        for key, day in sorted(written):
            kind, venue, symbol = key
            path = self.kind_dir(kind, venue, symbol)
            files = list_days(path).get(day)
            nparts = len(files.parts) if files is not None else 0
            finished = day < today or nparts >= self.max_parts
            if nparts and finished and compact_day(path, day, kind):
                self.compactions += 1
            if kind == "bars":
                self._rollup(venue, symbol, day)

    def _rollup(self, venue: str, symbol: str, day: date) -> None:
        try:
            write_day_rollup(self.root / venue / symbol, day)
        except OSError:
            log.exception("hourly rollup of %s/%s %s failed", venue, symbol, day)

    def _maybe_apply_retention(self) -> None:
        if self.retention_days is None:
            return
        today = self._today()
        if self._retention_day == today:
            return
        self._retention_day = today
        try:
            apply_retention(self.root, self.retention_days, today)
        except OSError:
            log.exception("retention pass failed")


__all__ = ["ROLLUP_KIND", "ParquetStore", "schema_of"]
