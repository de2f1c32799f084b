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


def span(xs: list[float]) -> str:
    return f"{min(xs):>11,.0f} {statistics.median(xs):>11,.0f} {max(xs):>11,.0f}"


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
    head = (f"{'round':>5} {'backtest ev/s':>14} {'nautilus tr/s':>14} {'ratio':>6} {'depth diffs/s':>14} "
            f"{'trades->bars/s':>15} {'(block) /s':>12} {'calib ns':>9}")
    print(head)
    rows = []
    for r in range(args.rounds):
        order = ["ours", "nautilus"] if r % 2 == 0 else ["nautilus", "ours"]
        res: dict[str, dict[str, object]] = {}
        for side in order:
            if side == "ours":
                res["ours"] = pinned(args.cpu, ours_cmd)
            elif nt_py is not None:
                res["nautilus"] = pinned(args.cpu, [str(nt_py), str(HERE / "nautilus_side.py"),
                                                    str(args.recording), str(args.repeat)])
        o = res["ours"]
        bt = o["backtest"]["per_s"]  # type: ignore[index]
        nt = res["nautilus"]["trades_per_s"] if "nautilus" in res else float("nan")
        row = {"backtest": bt, "nautilus": nt, "ratio": bt / nt, "depth": o["depth"]["per_s"],  # type: ignore[index]
               "bars": o["trades_bars"]["per_s"], "bars_block": o["trades_bars_block"]["per_s"],  # type: ignore[index]
               "calib": o["calibration_ns"]}
        rows.append(row)
        print(f"{r + 1:>5} {bt:>14,.0f} {nt:>14,.0f} {row['ratio']:>6.2f} {row['depth']:>14,.0f} "
              f"{row['bars']:>15,.0f} {row['bars_block']:>12,.0f} {row['calib']:>9.1f}", flush=True)
    print(f"\n{'':<32} {'min':>11} {'median':>11} {'max':>11}   goal")
    col = {k: [float(x[k]) for x in rows] for k in rows[0]}  # type: ignore[arg-type]
    print(f"{'backtest events/s (all frames)':<32} {span(col['backtest'])}")
    if nt_py is not None:
        print(f"{'nautilus trades/s -> 1m bars':<32} {span(col['nautilus'])}")
        ratio = col["ratio"]
        print(f"{'ratio (same round)':<32} {min(ratio):>11.2f} {statistics.median(ratio):>11.2f} "
              f"{max(ratio):>11.2f}   >= 3")
    print(f"{'depth -> book diffs/s':<32} {span(col['depth'])}   >= 100,000")
    print(f"{'trades -> 1m bars/s (per frame)':<32} {span(col['bars'])}   >= 1,000,000")
    print(f"{'trades -> 1m bars/s (blocks)':<32} {span(col['bars_block'])}   >= 1,000,000")
    print(f"{'calibration ns/iter':<32} {min(col['calib']):>11.1f} {statistics.median(col['calib']):>11.1f} "
          f"{max(col['calib']):>11.1f}")
    print(f"\nhot path: {rows and res['ours'].get('hot_path')}; python {sys.version.split()[0]}; "
          f"nautilus {res.get('nautilus', {}).get('nautilus_version', '-')}")


if __name__ == "__main__":
    main()
