"""The project's benchmarks against NautilusTrader's equivalent, one command, one core.

Usage: ``python bench/bench_vs_nautilus.py [--rounds 5] [--repeat 3] [--cpu N] [--skip-nautilus]``

1. Builds (once, cached) a throwaway venv with NautilusTrader and orjson under
   ``~/.cache/autotrader-bench/`` (never a project dependency; ``--nautilus-venv`` to choose
   where, ``--nautilus-version`` to pin another release).
2. Runs, pinned to one core with ``taskset`` (the same core for both), alternating rounds (the
   order flips every round): ``bench/project_side.py`` in this interpreter and
   ``bench/nautilus_side.py`` in the throwaway venv, both on the shared BTCUSDT recording, each
   taking the best of ``--repeat`` in-process runs.
3. Prints every round, the ranges and the ratios:

   * backtest ratio = (``autotrader backtest`` events/s over all 93,954 frames, the whole live
     path) / (NautilusTrader trades/s from the 21,313 trade frames to 1-minute bars); goal >= 3;
   * depth: diffs/s through the codec and book (top + 10 bps depth after each); goal >= 100,000;
   * trades -> 1-minute bars including parse; goal >= 1,000,000/s;
   * the calibration: ns per iteration of a fixed pure-Python loop in each round, so figures from
     another machine or another hour can be compared.

   Each figure per wall second and per CPU second of the process: on a shared core the wall figure
   counts the time other processes ran there, the CPU figure does not (both are printed; the
   ratios are taken within a round, both sides measured the same way).

The machine is shared and noisy: read the ranges and the per-round ratios, not one figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BTC = HERE.parents[1] / "shared" / "data" / "binance-futures" / "btcusdt_20240808.gz"
NAUTILUS_VERSION = "1.221.0"


def nautilus_python(venv: Path, version: str) -> Path:
    py = venv / "bin" / "python"
    marker = venv / f".ok-{version}"
    if marker.exists():
        return py
    print(f"creating the NautilusTrader venv {venv} (nautilus_trader=={version}, orjson)...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", f"nautilus_trader=={version}", "orjson"],
                   check=True)
    marker.touch()
    return py


def pinned(cpu: int, argv: list[str]) -> dict[str, object]:
    cmd = (["taskset", "-c", str(cpu)] if shutil.which("taskset") else []) + argv
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=HERE.parent)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)))
    ap.add_argument("--recording", type=Path, default=BTC)
    ap.add_argument("--nautilus-venv", type=Path,
                    default=Path.home() / ".cache" / "autotrader-bench" / f"nautilus-py{sys.version_info[0]}"
                    f"{sys.version_info[1]}")
    ap.add_argument("--nautilus-version", default=NAUTILUS_VERSION)
    ap.add_argument("--skip-nautilus", action="store_true")
    args = ap.parse_args()

    nt_py = None if args.skip_nautilus else nautilus_python(args.nautilus_venv, args.nautilus_version)
    ours_cmd = [sys.executable, str(HERE / "project_side.py"), str(args.recording), str(args.repeat)]
    print(f"pinned to cpu {args.cpu}; {args.rounds} alternating rounds, best of {args.repeat} per side\n")
    head = (f"{'round':>5} {'backtest ev/s':>14} {'nautilus tr/s':>14} {'ratio':>6} {'cpu ratio':>9} "
            f"{'depth diffs/s':>14} {'trades->bars/s':>15} {'(block) /s':>12} {'calib ns':>9}")
    print(head)
    rows = []
    res: dict[str, dict[str, Any]] = {}
    for r in range(args.rounds):
        order = ["ours", "nautilus"] if r % 2 == 0 else ["nautilus", "ours"]
        res = {}
        for side in order:
            if side == "ours":
                res["ours"] = pinned(args.cpu, ours_cmd)
            elif nt_py is not None:
                res["nautilus"] = pinned(args.cpu, [str(nt_py), str(HERE / "nautilus_side.py"),
                                                    str(args.recording), str(args.repeat)])
        o, nt = res["ours"], res.get("nautilus", {})
        nan = float("nan")
        row = {
            "backtest": o["backtest"]["per_s"], "backtest_cpu": o["backtest"]["per_cpu_s"],
            "nautilus": nt.get("trades_per_s", nan), "nautilus_cpu": nt.get("trades_per_cpu_s", nan),
            "depth": o["depth"]["per_s"], "bars": o["trades_bars"]["per_s"],
            "bars_block": o["trades_bars_block"]["per_s"], "calib": o["calibration_ns"],
            "depth_cpu": o["depth"]["per_cpu_s"], "bars_cpu": o["trades_bars"]["per_cpu_s"],
            "bars_block_cpu": o["trades_bars_block"]["per_cpu_s"],
        }
        row["ratio"] = row["backtest"] / row["nautilus"]
        row["ratio_cpu"] = row["backtest_cpu"] / row["nautilus_cpu"]
        rows.append(row)
        print(f"{r + 1:>5} {row['backtest']:>14,.0f} {row['nautilus']:>14,.0f} {row['ratio']:>6.2f} "
              f"{row['ratio_cpu']:>9.2f} {row['depth']:>14,.0f} {row['bars']:>15,.0f} "
              f"{row['bars_block']:>12,.0f} {row['calib']:>9.1f}", flush=True)
    col = {k: [float(x[k]) for x in rows] for k in rows[0]}
    print(f"\n{'':<36} {'min':>11} {'median':>11} {'max':>11}   goal")

    def line(label: str, key: str, goal: str = "", fmt: str = ",.0f") -> None:
        xs = col[key]
        print(f"{label:<36} {min(xs):>11{fmt}} {statistics.median(xs):>11{fmt}} {max(xs):>11{fmt}}   {goal}")

    line("backtest events/s (all frames)", "backtest")
    line("  per CPU second", "backtest_cpu")
    if nt_py is not None:
        line("nautilus trades/s -> 1m bars", "nautilus")
        line("  per CPU second", "nautilus_cpu")
        line("ratio, wall (same round)", "ratio", ">= 3", ".2f")
        line("ratio, CPU time (same round)", "ratio_cpu", ">= 3", ".2f")
    line("depth -> book diffs/s", "depth", ">= 100,000")
    line("  per CPU second", "depth_cpu", ">= 100,000")
    line("trades -> 1m bars/s (per frame)", "bars")
    line("  per CPU second", "bars_cpu")
    line("trades -> 1m bars/s (blocks)", "bars_block", ">= 1,000,000")
    line("  per CPU second", "bars_block_cpu", ">= 1,000,000")
    line("calibration ns/iter (CPU)", "calib", "", ".1f")
    print(f"\nhot path: {res['ours'].get('hot_path')}; python {sys.version.split()[0]}; "
          f"nautilus {res.get('nautilus', {}).get('nautilus_version', '-')}; cpu {args.cpu}")


if __name__ == "__main__":
    main()
