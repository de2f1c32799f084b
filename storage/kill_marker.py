"""A kill that the state database could not record still holds after a restart.

The marker is a small file beside the state database (``<state db>.kill``), created at start with
a fixed size so that recording a kill later only overwrites bytes already on the disk: it works on
a full disk. It holds ``{"killed": false}`` until a kill cannot be written to the database; then
``{"killed": true, "reason": ..., "ts": ...}``, fsynced. If that file cannot be written either, a
second one under the runtime directory (``kill-<hash of the database path>.json``; tmpfs on most
systems, so it survives a crash but not a reboot) is tried. The next start reads both and comes up
HALTED with the kill's reason; the marker goes back to "no kill" once the database holds the
engine's control state again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from storage.private_files import FILE_MODE, private_dir

log = logging.getLogger(__name__)

SIZE = 1024


def _padded(obj: dict[str, Any]) -> bytes:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    if len(raw) > SIZE - 1:
        reason = str(obj.get("reason", ""))
        over = len(raw) - (SIZE - 1)
        obj = {**obj, "reason": reason[: max(0, len(reason) - over - 3)] + "..."}
        raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()[: SIZE - 1]
    return raw + b" " * (SIZE - 1 - len(raw)) + b"\n"


def _write_in_place(path: Path, data: bytes, create: bool) -> None:
    flags = os.O_WRONLY | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        n = os.pwrite(fd, data, 0)
        if n != len(data):
            raise OSError(f"short write to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)
    if create:
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        obj = json.loads(raw.decode("utf-8", "replace").strip() or "{}")
    except ValueError:
        # a torn or garbled marker: assume the worst (a kill that must hold)
        return {"killed": True, "reason": f"kill marker {path} unreadable: treated as a kill"}
    return obj if isinstance(obj, dict) and obj.get("killed") else None


class KillMarker:
    def __init__(self, state_db: Path, runtime_dir: Path | None = None) -> None:
        self.primary = Path(str(state_db) + ".kill")
        digest = hashlib.sha256(str(Path(state_db).resolve()).encode()).hexdigest()[:16]
        self.fallback = runtime_dir / f"kill-{digest}.json" if runtime_dir is not None else None
        self.engaged = False

    def prepare(self) -> None:
        """Create the primary marker at its full size (best effort: a failure is only logged)."""
        try:
            if not self.primary.exists() or self.primary.stat().st_size < SIZE:
                _write_in_place(self.primary, _padded({"killed": False}), create=True)
        except OSError as exc:
            log.warning("kill marker %s not prepared: %s", self.primary, exc)

    def read(self) -> dict[str, Any] | None:
        """The recorded kill (``reason``, ``ts``) when a marker holds one, else None."""
        for path in (self.primary, self.fallback):
            if path is not None:
                found = _read(path)
                if found is not None:
                    return {**found, "path": str(path)}
        return None

    def write(self, reason: str, ts_ms: int) -> Path | None:
        """Record a kill the database could not take; the path that holds it (None: neither could)."""
        data = _padded({"killed": True, "reason": reason, "ts": ts_ms})
        for path, create in ((self.primary, False), (self.primary, True), (self.fallback, True)):
            if path is None:
                continue
            try:
                if create and path == self.fallback:
                    private_dir(path.parent)
                if not create and not path.exists():
                    continue
                _write_in_place(path, data, create)
            except OSError as exc:
                log.error("kill marker %s not written: %s", path, exc)
                continue
            self.engaged = True
            return path
        return None

    def clear(self) -> None:
        """The database holds the control state again: the marker says "no kill"."""
        if self.primary.exists():
            try:
                _write_in_place(self.primary, _padded({"killed": False}), create=False)
            except OSError as exc:
                log.warning("kill marker %s not cleared: %s", self.primary, exc)
                return
        if self.fallback is not None:
            with contextlib.suppress(FileNotFoundError):
                self.fallback.unlink()
        self.engaged = False
