"""How long ``autotrader demo`` takes, at its default speed, to reach its first intent (a user's wait).

    python bench/check_demo_start.py [--speed 1] [--limit 60]

Starts ``autotrader demo --no-ui`` in a temporary config/data/state/runtime directory (the demo
recording itself is generated once into the user's cache first, not timed), reads its log lines and
prints: the wall time until the warm-up was fast-forwarded, until the first intent, and the event
time the first intent would take without the fast-forward. Exits 1 when the first intent takes
longer than ``--limit`` seconds. Stops the demo it started (SIGTERM)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import platformdirs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed", default="1")
    ap.add_argument("--limit", type=float, default=60.0)
    args = ap.parse_args()
    from feeds.demo import ensure_demo
    from feeds.replay import open_recording

    demo = ensure_demo(Path(platformdirs.user_cache_dir("autotrader")) / "demo")
    start_ms = int(open_recording(demo).header["start_ms"])
    with tempfile.TemporaryDirectory(prefix="at-demo-") as d:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(platformdirs.user_cache_dir()))}  # the cached demo
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
            p = Path(d) / name.lower()
            p.mkdir(mode=0o700)
            env[name] = str(p)
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "autotrader", "demo", "--no-ui", "--speed", args.speed]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
                                env=env)
        ff = first = None
        intent_ts = None
        assert proc.stderr is not None
        try:
            for line in proc.stderr:
                if '"warm-up fast-forwarded"' in line and ff is None:
                    ff = time.monotonic() - t0
                if '"msg":"intent"' in line:
                    first = time.monotonic() - t0
                    intent_ts = int(json.loads(line)["timestamp"])
                    break
                if time.monotonic() - t0 > args.limit * 3:
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"demo --speed {args.speed}: warm-up fast-forwarded after {ff:.1f} s" if ff is not None else
          "warm-up: not fast-forwarded")
    if first is None or intent_ts is None:
        print(f"no intent within {args.limit * 3:.0f} s")
        return 1
    print(f"first intent after {first:.1f} s of wall time (limit {args.limit:g} s); without the fast-forward "
          f"it would come {(intent_ts - start_ms) / 1000 / float(args.speed):.0f} s after the start")
    return 0 if first <= args.limit else 1


if __name__ == "__main__":
    raise SystemExit(main())
