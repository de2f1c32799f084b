"""The minute signals feed as JSON lines: ``<root>/all/<SYMBOL>/signals/YYYYMMDD.jsonl`` (the
row's UTC day), beside the Parquet files of the same kind, one object per closed minute, appended
and flushed as it is published (``autotrader signals --follow`` tails it).

A failed write keeps the lines and retries them with the next row (and at close); the error is
counted and logged once per failure streak. A file whose last line is torn (a crash or a full
disk mid-write) gets a newline before the next row, so the torn line stays alone (readers skip
it) and never swallows a good row. Files older than ``retention_days`` are removed at a
day change, like the Parquet files.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec

from core.minute_signals import SIGNALS_VENUE, MinuteSignal

log = logging.getLogger(__name__)
SUFFIX = ".jsonl"  # autotrader.signals_cmd has the same constant (it does not import this module early)


def day_key(day: date) -> str:
    return day.strftime("%Y%m%d")


def day_of_ms(ts_ms: int) -> date:
    return datetime.fromtimestamp(max(0, ts_ms) / 1000, tz=UTC).date()


def signals_dir(root: Path, symbol: str) -> Path:
    return Path(root) / SIGNALS_VENUE / symbol / "signals"


class SignalsJsonl:
    def __init__(self, root: Path, retention_days: int | None = None) -> None:
        self.root = Path(root)
        self.retention_days = retention_days
        self.pending: list[tuple[Path, bytes]] = []
        self.written = 0
        self.errors = 0
        self._failing = False
        self._day: date | None = None

    def write(self, row: MinuteSignal) -> None:
        day = day_of_ms(row.ts)
        path = signals_dir(self.root, row.symbol) / f"{day_key(day)}{SUFFIX}"
        self.pending.append((path, msgspec.json.encode(row) + b"\n"))
        self.flush()
        if day != self._day:
            self._day = day
            self._retention(path.parent, day)

    def flush(self) -> bool:
        """Append every pending line; False (lines kept) when the disk refused."""
        while self.pending:
            path, line = self.pending[0]
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    data = _after_torn_tail(fd) + line
                    if os.write(fd, data) != len(data):  # a full disk: torn, retried after a newline
                        raise OSError(f"short write ({len(data)} bytes asked)")
                finally:
                    os.close(fd)
            except OSError as exc:
                self.errors += 1
                if not self._failing:
                    log.error("signals feed: cannot append to %s: %s (kept, retried)", path, exc)
                self._failing = True
                return False
            self.pending.pop(0)
            self.written += 1
            self._failing = False
        return True

    def _retention(self, kind_dir: Path, today: date) -> None:
        if self.retention_days is None:
            return
        cutoff = day_key(today - timedelta(days=self.retention_days))
        try:
            for p in kind_dir.glob(f"*{SUFFIX}"):
                if p.name[:8].isdigit() and p.name[:8] < cutoff:
                    p.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("signals feed retention: %s", exc)

    def close(self) -> None:
        self.flush()


def _after_torn_tail(fd: int) -> bytes:
    """``b"\\n"`` when the file ``fd`` is open on ends without one (a torn last line), else ``b""``."""
    size = os.fstat(fd).st_size
    return b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
