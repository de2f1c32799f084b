"""Memory of a backtest against the length of what it replays: it streams, so RSS stays flat.

Usage: ``python bench/bench_backtest_rss.py [--hours 24] [--keep DIR]``

Builds "a day" by concatenating the shared BTCUSDT recording (6 minutes) with itself, each copy
shifted in time (receive time, event times) and in depth update ids so it continues the previous
one (``--hours`` of it, as hourly-like files in a temporary directory, or ``--keep DIR`` to reuse),
then runs ``autotrader backtest`` in a fresh process on (a) the 6-minute recording and (b) the day,
and prints the process's resident memory (VmRSS) when 25 %, 50 % and 100 % of the frames have been
fed, the peak (VmHWM) and the RSS right after the imports and the setup (before the first frame).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BTC = HERE.parents[1] / "shared" / "data" / "binance-futures" / "btcusdt_20240808.gz"
SPAN_MS = 360_000  # one copy = 6 minutes
_FIELDS = re.compile(rb'"(E|T|U|u|pu|lastUpdateId|t)":(\d+)')


def build_day(out: Path, hours: float) -> list[Path]:
    with gzip.open(BTC, "rb") as fh:
        lines = fh.read().splitlines(keepends=True)
    ids = [int(m.group(2)) for ln in lines[:2000] for m in _FIELDS.finditer(ln) if m.group(1) in (b"u", b"U")]
    id_span = (max(ids) - min(ids)) * 200  # far beyond one copy's range
    copies = max(1, round(hours * 3_600_000 / SPAN_MS))
    per_file = 10  # one hour per file
    paths = []
    for f0 in range(0, copies, per_file):
        p = out / f"btcusdt-day-{f0 // per_file:03d}.gz"
        paths.append(p)
        if p.exists():
            continue
        with gzip.open(p, "wb", compresslevel=1) as fh:
            for k in range(f0, min(copies, f0 + per_file)):
                dt_ms, did, dtid = k * SPAN_MS, k * id_span, k * 10_000_000

                def shift(m: re.Match[bytes], dt_ms: int = dt_ms, did: int = did, dtid: int = dtid) -> bytes:
                    key, v = m.group(1), int(m.group(2))
                    if key in (b"E", b"T"):
                        v += dt_ms
                    elif key == b"t":
                        v += dtid
                    else:
                        v += did
                    return b'"%s":%d' % (key, v)

                for ln in lines:
                    ns, _, frame = ln.partition(b" ")
                    fh.write(b"%d %s" % (int(ns) + dt_ms * 1_000_000, _FIELDS.sub(shift, frame)))
    return paths


def child(paths: list[str]) -> None:
    """Run the backtest here and print RSS samples as JSON (``--child``)."""
    from autotrader.backtest import Backtest
    from autotrader.config import validate
    from feeds.replay import open_recording

    def rss() -> tuple[float, float]:
        vals = {}
        for ln in Path("/proc/self/status").read_text().splitlines():
            k, _, v = ln.partition(":")
            if k in ("VmRSS", "VmHWM"):
                vals[k] = int(v.split()[0]) / 1024
        return vals["VmRSS"], vals["VmHWM"]

    total = 0
    for p in paths:  # count frames first (a pass of the reader), untimed
        total += sum(1 for _ in open_recording(p).frames())
    marks = {round(total * f): f for f in (0.25, 0.5, 1.0)}
    bt = Backtest(validate({}), [Path(p) for p in paths])
    samples = {"setup": rss()[0]}
    nxt = sorted(marks)

    def progress(n: int) -> None:
        while nxt and n >= nxt[0]:
            samples[f"{marks[nxt.pop(0)]:.0%}"] = rss()[0]

    t0 = time.perf_counter()
    r = asyncio.run(bt.run(progress))
    samples["100%"] = samples.get("100%", rss()[0])
    print(json.dumps({"frames": r.frames, "span_h": r.event_span_s / 3600, "wall_s": time.perf_counter() - t0,
                      "rss": samples, "peak": rss()[1]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--keep", type=Path)
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = args.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        day = build_day(d, args.hours)
        took = time.perf_counter() - t0
        print(f"built {args.hours:g} h of shifted copies in {len(day)} files ({took:.0f} s)")
        print(f"{'case':<28} {'frames':>11} {'hours':>6} {'setup MB':>9} {'25% MB':>8} {'50% MB':>8} "
              f"{'100% MB':>8} {'peak MB':>8} {'wall s':>7}")
        for name, paths in (("BTCUSDT recording (6 min)", [BTC]), (f"{args.hours:g} h concatenated", day)):
            out = subprocess.run([sys.executable, __file__, "--child", *map(str, paths)], check=True,
                                 capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            s = r["rss"]
            print(f"{name:<28} {r['frames']:>11,} {r['span_h']:>6.2f} {s['setup']:>9.0f} {s['25%']:>8.0f} "
                  f"{s['50%']:>8.0f} {s['100%']:>8.0f} {r['peak']:>8.0f} {r['wall_s']:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
