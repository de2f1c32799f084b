"""CPU and memory of the terminal UI, running ``autotrader demo`` in a real tmux pane (Linux /proc).

    python bench/bench_tui.py [--cpu-seconds 60] [--rss-speed 30] [--rss-seconds 60] [--size 120x40]

1. CPU at live data rates: the demo at speed 1 (the recording's own pace: ~10 Binance depth
   diffs/s plus trades, Bybit tickers, OKX trades, liquidations), CPU time of the process over
   ``--cpu-seconds`` after a 5 s warm-up, as % of one core (goal < 15 %).
2. RSS over a 30-minute accelerated replay: the demo at ``--rss-speed`` × for ``--rss-seconds``
   (30 × 60 s = 30 minutes of market), RSS sampled every 2 s; prints RSS after warm-up, at the end,
   the maximum and the growth after warm-up (goal: flat).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(d.name))
    return out


def find_app(root: int) -> int | None:
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "autotrader" in cmd and "demo" in cmd and "env " not in cmd[:4]:
            return pid
        todo.extend(children(pid))
    return None


def cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Demo:
    def __init__(self, speed: str, size: str) -> None:
        self.session = f"autotrader-bench-{os.getpid()}-{speed}"
        self.tmp = Path(tempfile.mkdtemp(prefix="autotrader-bench-"))
        env = {}
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
            d = self.tmp / name.lower()
            d.mkdir(mode=0o700)
            env[name] = str(d)
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        w, h = size.split("x")
        tmux("new-session", "-d", "-s", self.session, "-x", w, "-y", h,
             f"exec env {exports} autotrader demo --speed {shlex.quote(speed)}")
        pane = int(tmux("display-message", "-p", "-t", self.session, "#{pane_pid}").strip())
        pid = None
        for _ in range(100):
            pid = find_app(pane)
            if pid is not None:
                break
            time.sleep(0.1)
        if pid is None:
            self.close()
            raise SystemExit("cannot find the autotrader process in the tmux pane")
        self.pid = pid

    def screen(self) -> str:
        return tmux("capture-pane", "-p", "-t", self.session)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-seconds", type=float, default=60.0)
    ap.add_argument("--rss-speed", default="30")
    ap.add_argument("--rss-seconds", type=float, default=60.0)
    ap.add_argument("--size", default="120x40")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 2
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; pane {args.size}")

    demo = Demo("1", args.size)
    try:
        time.sleep(5)
        c0, t0 = cpu_s(demo.pid), time.monotonic()
        time.sleep(args.cpu_seconds)
        c1, t1 = cpu_s(demo.pid), time.monotonic()
        ok = "HALTED" not in demo.screen()
        pct = (c1 - c0) / (t1 - t0) * 100
        print(f"cpu, demo at speed 1 over {t1 - t0:.0f} s: {pct:.1f} % of one core "
              f"({c1 - c0:.2f} s CPU; goal < 15 %){'' if ok else ' [screen not live?]'}")
    finally:
        demo.close()

    demo = Demo(args.rss_speed, args.size)
    samples: list[tuple[float, float]] = []
    try:
        start = time.monotonic()
        c0 = cpu_s(demo.pid)
        while (now := time.monotonic() - start) < args.rss_seconds:
            samples.append((now, rss_mb(demo.pid)))
            time.sleep(2.0)
        samples.append((time.monotonic() - start, rss_mb(demo.pid)))
        c1 = cpu_s(demo.pid)
    finally:
        demo.close()
    market_min = float(args.rss_speed) * args.rss_seconds / 60
    warm = [r for t, r in samples if t >= min(10.0, args.rss_seconds / 3)]
    first, last, peak = warm[0], warm[-1], max(r for _, r in samples)
    print(f"rss, demo at speed {args.rss_speed} for {args.rss_seconds:.0f} s "
          f"(~{market_min:.0f} min of market): "
          f"after warm-up {first:.1f} MB, end {last:.1f} MB, max {peak:.1f} MB, growth after warm-up "
          f"{last - first:+.1f} MB; cpu {(c1 - c0) / args.rss_seconds * 100:.0f} % of one core")
    print("rss samples (s, MB): " + " ".join(f"{t:.0f}:{r:.0f}" for t, r in samples[::3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
