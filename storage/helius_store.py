"""Parquet of the Drift transactions kept by the Helius receiver: buffered from
``onchain:drift:events`` and flushed as atomic daily part files ``YYYYMMDD.partNNNNN.parquet``."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.bus import Bus
from core.onchain import DRIFT_EVENTS, DriftTxEvent
from storage.parquet_files import atomic_write_table

SCHEMA = pa.schema([("signature", pa.string()), ("slot", pa.int64()), ("timestamp", pa.int64()),
                    ("type", pa.string()), ("source", pa.string()), ("received_at", pa.int64()),
                    ("payload", pa.string())])
_PART = re.compile(r"^(\d{8})\.part(\d{5})\.parquet$")


class HeliusStore:
    def __init__(self, bus: Bus, directory: Path) -> None:
        self.dir = directory
        self._rows: list[DriftTxEvent] = []
        self._lock = threading.Lock()
        self._off = bus.on(DRIFT_EVENTS, self._on_event)

    def _on_event(self, ev: DriftTxEvent) -> None:
        with self._lock:
            self._rows.append(ev)

    def pending(self) -> int:
        return len(self._rows)

    def flush(self) -> int:
        """Write the buffered rows (one part per UTC day of ``received_at``); returns rows written.
        Rows stay buffered if the write fails."""
        with self._lock:
            rows, self._rows = self._rows, []
        by_day: dict[str, list[DriftTxEvent]] = {}
        for r in rows:
            day = datetime.fromtimestamp(r.received_at / 1000, UTC).strftime("%Y%m%d")
            by_day.setdefault(day, []).append(r)
        written = 0
        left = sorted(by_day.items())
        try:
            while left:
                day, evs = left[0]
                table = pa.table({n: [getattr(e, n) for e in evs] for n in SCHEMA.names}, schema=SCHEMA)
                atomic_write_table(self.dir / f"{day}.part{self._next_part(day):05d}.parquet", table,
                                   {b"autotrader.kind": b"helius_drift"})
                written += len(evs)
                left.pop(0)
        except OSError:
            with self._lock:  # keep what was not written for the next flush
                self._rows[:0] = [e for _, evs in left for e in evs]
            raise
        return written

    def _next_part(self, day: str) -> int:
        parts = [int(m.group(2)) for p in self.dir.glob(f"{day}.part*.parquet") if (m := _PART.match(p.name))]
        return max(parts, default=0) + 1

    def close(self) -> None:
        self._off()
        self.flush()


def read_all(directory: Path) -> pa.Table:
    files = sorted(p for p in directory.glob("*.parquet") if _PART.match(p.name))
    if not files:
        return SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(f) for f in files])
