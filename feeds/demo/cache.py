"""Generate the demo once per (generator version, seed, length) and reuse the file."""

from __future__ import annotations

import os
from pathlib import Path

from feeds.demo.generator import DEMO_VERSION, LABEL, generate_demo
from feeds.replay import RecordingError, open_recording


def demo_filename(seed: int = 7, minutes: int = 45) -> str:
    """The cache file name; it changes whenever the generator's output may change."""
    suffix = "" if minutes == 45 else f"-m{minutes}"
    return f"demo-v{DEMO_VERSION}-seed{seed}{suffix}.jsonl.zst"


def _usable(path: Path, seed: int) -> bool:
    try:
        header = open_recording(path).header
    except (RecordingError, OSError):
        return False
    return (
        header.get("label") == LABEL
        and header.get("generator_version") == DEMO_VERSION
        and header.get("seed") == seed
    )


def ensure_demo(cache_dir: Path, *, seed: int = 7, minutes: int = 45) -> Path:
    """The demo recording in ``cache_dir``, generated on first use (atomically: temp file + rename)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / demo_filename(seed, minutes)
    if path.is_file() and _usable(path, seed):
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.zst")
    try:
        generate_demo(tmp, seed=seed, minutes=minutes)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
