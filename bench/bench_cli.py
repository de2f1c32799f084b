"""Start time and peak RSS of the light CLI commands against a bare ``import typer, rich.console``.

Usage: ``python bench/bench_cli.py [--rounds N] [--recording PATH] [--compare SRC]``.

Starts one headless instance (``autotrader run --no-ui --replay`` of the synthetic demo session,
or ``--recording``, at max speed, in a temporary state directory), then runs, in every round and
in turn, the reference ``python -c "import typer, rich.console"`` and each light command as a new
process through the ``autotrader`` console script, as a user types it. Per process: wall time from
spawn to exit, CPU (user + sys) and peak RSS (``wait4``'s ``ru_maxrss``). Prints the median and
min of each over the rounds, the ratio of the median wall time to the reference's, and the goals
of issue 20: every light command < 0.3 s and < 60 MB; ``--version`` within 2.5x the reference.
``kill`` halts the instance in the first round; later rounds measure its "already halted" answer
(the same client path). The machine is shared and noisy: compare within one run only.

``--compare SRC`` also runs ``--version`` and ``status`` from another source tree of the project
(e.g. ``git archive main | tar -x -C /tmp/base``) in the same venv, through ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_WALL_S = 0.3
GOAL_RSS_MB = 60.0
GOAL_VERSION_RATIO = 2.5
REFERENCE = "python -c 'import typer, rich.console'"

LIGHT: list[tuple[str, ...]] = [
    ("--version",),
    ("--help",),
    ("status",),
    ("status", "--json"),
    ("guards",),
    ("activity", "--limit", "20"),
    ("kill", "--reason", "bench_cli"),
]


def autotrader_cmd() -> list[str]:
    script = Path(sys.executable).parent / "autotrader"
    return [str(script)] if script.exists() else [sys.executable, "-m", "autotrader"]


def run_once(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float, int]:
    """(wall s, cpu s, peak RSS MB, exit code) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, proc.returncode


def start_instance(tmp: Path, recording: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    argv = [*autotrader_cmd(), "run", "--no-ui", "--replay", str(recording), "--speed", "max"]
    with (tmp / "daemon.log").open("ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the instance exited ({proc.returncode}); see {tmp / 'daemon.log'}")
        out = subprocess.run([*autotrader_cmd(), "status", "--json"], capture_output=True, env=env)
        if out.returncode == 0 and json.loads(out.stdout)["engine"]["trading_state"] == "active":
            return proc
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the instance did not answer within 120 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--recording", type=Path, default=None,
                    help="Recording the instance replays (default: the synthetic demo session).")
    ap.add_argument("--compare", type=Path, default=None,
                    help="Another source tree of the project: its --version and status too.")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="at-bench-"))  # short: AF_UNIX paths are limited to 107 bytes
    env = {**os.environ, "AUTOTRADER__CONTROL__SOCKET_PATH": str(tmp / "ctl.sock"),
           "AUTOTRADER__STORAGE__STATE_DB": str(tmp / "state.sqlite3"),
           "AUTOTRADER__METRICS__PORT": "0", "XDG_CONFIG_HOME": str(tmp / "config")}
    recording = args.recording
    if recording is None:
        from feeds.demo.generator import generate_demo

        recording = generate_demo(tmp / "demo.jsonl.zst").path
    daemon = start_instance(tmp, recording, env)
    cases: list[tuple[str, list[str]]] = [(REFERENCE, [sys.executable, "-c", "import typer, rich.console"])]
    cases += [("autotrader " + " ".join(a), [*autotrader_cmd(), *a]) for a in LIGHT]
    if args.compare is not None:
        src = str(args.compare.resolve())
        cases += [(f"[{args.compare.name}] " + " ".join(a),
                   ["env", f"PYTHONPATH={src}", sys.executable, "-m", "autotrader", *a])
                  for a in (("--version",), ("status",))]
    results: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name, _ in cases}
    try:
        for r in range(args.rounds):
            order = cases[r % len(cases):] + cases[: r % len(cases)]  # alternate who goes first
            for name, argv in order:
                results[name].append(run_once(argv, env, tmp))  # not the checkout: its '' on sys.path
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    ref_wall = statistics.median(w for w, *_ in results[REFERENCE])
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.rounds} alternating rounds; python {sys.version.split()[0]}; {os.cpu_count()} cpus; "
          f"load average {load} (wall times scale with it; the ratios and CPU much less)")
    print(f"{'command':<40} {'wall med':>8} {'min':>6} {'cpu med':>7} {'RSS MB':>6} {'x ref':>6}  exit  goal")
    failed = False
    for name, rows in results.items():
        wall = statistics.median(w for w, *_ in rows)
        cpu = statistics.median(c for _, c, _, _ in rows)
        rss = max(m for _, _, m, _ in rows)
        codes = sorted({c for *_, c in rows})
        ratio = wall / ref_wall
        goal = ""
        if name.startswith("autotrader "):
            ok = wall < GOAL_WALL_S and rss < GOAL_RSS_MB and codes == [0]
            if name == "autotrader --version":
                ok = ok and ratio <= GOAL_VERSION_RATIO
            goal = "ok" if ok else "MISSED"
            failed |= not ok
        print(f"{name:<40} {wall:>8.3f} {min(w for w, *_ in rows):>6.3f} {cpu:>7.3f} {rss:>6.1f} "
              f"{ratio:>6.2f}  {','.join(map(str, codes)):>4}  {goal}")
    print(f"goals: < {GOAL_WALL_S} s and < {GOAL_RSS_MB:g} MB each (RSS: the max over rounds); "
          f"--version <= {GOAL_VERSION_RATIO}x the reference's median")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
