"""Run ``autotrader demo`` as a user would, in a tmux pane, and check the screen.

    python bench/check_tui_tmux.py [--size 120x40] [--wait 20] [--speed 1]

After ``--wait`` seconds the pane is captured and every panel must show data; then ``ctrl+k`` is
sent and the pane must show HALTED and at most the stop of the position (the kill cancels entries
and take-profits and keeps the stop) within 2 s. Prints both captures (the
README's text capture comes from here) and the kill latency; exits 1 if a check fails. The
config, data, state and control socket live in a temporary directory (the demo recording is
cached in the user's cache dir as usual)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKS: list[tuple[str, str]] = [
    ("top bar: label, venue, automation, state",
     r"PAPER paper.*synthetic demo.*auto (ON|off).*(ACTIVE|HALTED)"),
    ("top bar: feed dots with ages", r"[●○]binance \d+\.\ds"),
    ("cards: spread", r"\d+\.\d\d bps"),
    ("cards: depth", r"\d+(\.\d+)?k/\d+(\.\d+)?k"),
    ("cards: funding APR", r"-?\d+\.\d\d%"),
    ("cards: OI (every venue)", r"\d+(\.\d+)?[MB] USD"),
    ("cards: liquidations 5m", r"liqs 5m"),
    ("guard status", r"GUARDS (PASSING|WARNING|BREACH|STALE)"),
    ("price chart with VWAP and CVD", r"● close  ─ VWAP \d"),
    ("liquidation heatmap: current price marked", r"─+.*◀\d+\.\d\d"),
    ("liquidation heatmap legend", r"(notional|no liquidations in the last)"),
    ("Drift liq-map panel", r"(no Drift|liq-map)"),
    ("OI sparkline (one point a minute)", r"[▁▂▃▄▅▆▇█]+ *│.*\n.*\d+(\.\d+)?[MB] \("),
    ("activity log rows", r"\d\d:\d\d:\d\d  \w+|reconcile"),
    ("position table", r"SOL-PERP +(flat|[+-]\d)"),
    ("open orders table", r"open orders · \d+"),
    ("footer shows the kill switch", r"\^k KILL"),
]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def capture(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="120x40")
    ap.add_argument("--wait", type=float, default=20.0)
    ap.add_argument("--speed", default="1")
    ap.add_argument("--command", default="autotrader demo")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 2
    w, h = args.size.split("x")
    session = f"autotrader-check-{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="autotrader-tmux-"))
    env = {}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
        d = tmp / name.lower()
        d.mkdir(mode=0o700)
        env[name] = str(d)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    cmd = f"env {exports} {args.command} --speed {shlex.quote(args.speed)}"
    tmux("new-session", "-d", "-s", session, "-x", w, "-y", h, cmd)
    failures: list[str] = []
    try:
        time.sleep(args.wait)
        screen = capture(session)
        print(f"--- after {args.wait:g} s ({args.size}, `{args.command} --speed {args.speed}`)")
        print(screen.rstrip())
        for what, pattern in CHECKS:
            if not re.search(pattern, screen):
                failures.append(f"no data: {what} (/{pattern}/)")
        t0 = time.monotonic()
        tmux("send-keys", "-t", session, "C-k")
        halted = None
        while time.monotonic() - t0 < 5.0:
            screen = capture(session)
            # the kill panel opens over the tables; the top bar and the guard line stay visible
            panel = "trading HALTED" in screen and "cancelled" in screen
            table = re.search(r"open orders · [01]\b", screen) is not None
            if "HALTED" in screen and "KILLED" in screen and (panel or table):
                halted = time.monotonic() - t0
                break
            time.sleep(0.05)
        took = f"{halted:.2f} s" if halted is not None else "not within 5 s"
        print(f"--- after ctrl+k: HALTED and the kill panel shown in {took}")
        print(screen.rstrip())
        if halted is None or halted > 2.0:
            failures.append(f"ctrl+k: HALTED and the kill panel not shown within 2 s ({halted})")
        tmux("send-keys", "-t", session, "Escape")  # close the panel: the orders table holds the stop only
        t1, shown = time.monotonic(), False
        while time.monotonic() - t1 < 5.0 and not shown:
            screen = capture(session)
            shown = re.search(r"open orders · [01]\b", screen) is not None and "trading HALTED" not in screen
            time.sleep(0.05)
        print("--- after esc: the orders table (entries and take-profits gone, the stop stays)")
        print(screen.rstrip())
        if not shown:
            failures.append("after the kill: the orders table does not show at most the stop")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    print("tmux check:", "ok" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
