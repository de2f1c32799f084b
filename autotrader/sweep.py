"""``autotrader backtest ... --sweep key=v1,v2,...``: one backtest per combination of values, on
every core (one process per backtest), and a table of the results.

Each combination is applied like ``--set key=value`` on top of the command's own ``--set``s, so a
value is parsed and validated exactly as there; every combination is validated before anything
runs (a bad key or value is one error line, exit 2).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotrader.backtest import Backtest


class SweepError(ValueError):
    """A malformed ``--sweep`` option."""


def parse_sweeps(specs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["risk.risk_per_trade_pct=0.5,1", ...]`` -> ``[("risk.risk_per_trade_pct", ["0.5", "1"]), ...]``."""
    out: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",")]
        if not sep or not key or not all(vals):
            raise SweepError(f"--sweep must look like section.key=v1,v2,..., got {spec!r}")
        if any(k == key for k, _ in out):
            raise SweepError(f"--sweep {key} given twice")
        out.append((key, vals))
    return out


def combinations(sweeps: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    keys = [k for k, _ in sweeps]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in sweeps))]


@dataclass(frozen=True)
class Job:
    config: Path | None
    sets: list[str]
    combo: dict[str, str]
    paths: list[Path]
    start_ms: int | None
    end_ms: int | None


def run_job(job: Job) -> dict[str, Any]:
    """One backtest (in a worker process): the combination and the report's headline figures."""
    from autotrader.cli_common import get_config
    from autotrader.paper_stack import paper_only

    cfg, _ = paper_only(get_config(job.config, [*job.sets, *(f"{k}={v}" for k, v in job.combo.items())]),
                        "a backtest")
    r = asyncio.run(Backtest(cfg, job.paths, start_ms=job.start_ms, end_ms=job.end_ms).run())
    return {
        "set": job.combo, "frames": r.frames, "intents": r.intents, "accepted": r.accepted,
        "trades": len(r.trades), "net_pnl": r.net_pnl, "fees": r.fees, "max_drawdown_usd": r.max_drawdown_usd,
        "max_drawdown_pct": r.max_drawdown_pct, "guard_blocks": r.guard_blocks, "kills": len(r.kills),
        "end_equity": r.end_equity, "wall_s": r.wall_s,
    }


def run_sweep(jobs: list[Job], workers: int | None = None) -> list[dict[str, Any]]:
    """Run every job, ``workers`` processes at a time (default: every core); results in job order."""
    n = max(1, min(len(jobs), workers or os.cpu_count() or 1))
    if n == 1:
        return [run_job(j) for j in jobs]
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        return list(pool.map(run_job, jobs))


def render_sweep(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0]["set"]) if rows else []
    widths = [max(len(k), *(len(r["set"][k]) for r in rows)) for k in keys]
    head = "  ".join(f"{k:>{w}}" for k, w in zip(keys, widths, strict=True))
    lines = [f"{head}  {'intents':>7} {'trades':>6} {'net PnL':>10} {'fees':>9} {'max DD':>9} {'DD %':>6} "
             f"{'blocks':>6} {'kills':>5} {'wall s':>7}"]
    for r in rows:
        vals = "  ".join(f"{r['set'][k]:>{w}}" for k, w in zip(keys, widths, strict=True))
        lines.append(f"{vals}  {r['intents']:>7} {r['trades']:>6} {r['net_pnl']:>+10.2f} {r['fees']:>9.4f} "
                     f"{r['max_drawdown_usd']:>9.2f} {r['max_drawdown_pct']:>6.2f} {r['guard_blocks']:>6} "
                     f"{r['kills']:>5} {r['wall_s']:>7.2f}")
    return "\n".join(lines)
