"""``autotrader backtest PATH`` and ``autotrader intent ... --replay PATH``: run a backtest, print
its report as a table (or JSON with ``--json``)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import orjson

from autotrader.backtest import Backtest, BacktestReport, ManualOrder
from autotrader.cli_common import fail, get_config
from autotrader.funnel_text import render_funnel, render_warnings
from autotrader.paper_stack import paper_only
from autotrader.progress import frame_progress
from autotrader.session import session_defaults
from core.manual import ManualIntentError
from feeds.replay import RecordingError


def parse_at(text: str) -> tuple[int | None, int]:
    """``--at``: epoch ms (13 digits) → (at_ms, 0); ``90s``/``5m``/``1h``/``1500ms`` or plain seconds
    → (None, offset ms from the first frame)."""
    t = text.strip().lower()
    if t.isdigit() and len(t) >= 12:
        return int(t), 0
    units = (("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000))
    suffix, mult = next(((u, m) for u, m in units if t.endswith(u)), ("", 1000))
    num = t[: len(t) - len(suffix)]
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"--at must be an offset like 90s, 5m, 1h or epoch ms, got {text!r}") from None
    if not 0 <= value * mult < 2**62:  # NaN, inf and beyond any recording
        raise ValueError(f"--at must be a non-negative offset like 90s or 5m, got {text!r}")
    return None, int(value * mult)


def _ts(ms: int | None) -> str:
    return "-" if not ms else datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S")


def render_report(r: BacktestReport) -> str:
    lines = [
        f"backtest {r.path}",
        f"  {r.frames:,} events over {r.event_span_s:,.0f} s of market time in {r.wall_s:.2f} s "
        f"({r.events_per_s:,.0f} events/s)",
        f"  intents {r.intents} (accepted {r.accepted}, rejected {r.rejected}; "
        f"by guards {r.guard_rejections}), guard blocks {r.guard_blocks}, kills {len(r.kills)}",
        "",
        f"  {'intent':<34} {'side':<4} {'entry':>8} {'size':>10} {'avg entry':>11} {'avg exit':>11} "
        f"{'PnL USD':>10} {'fees USD':>8}  outcome",
    ]
    for t in r.trades:
        exit_px = f"{t.avg_exit:.2f}" if t.avg_exit is not None else "-"
        lines.append(f"  {t.intent_id[:34]:<34} {t.side:<4} {_ts(t.entry_ts):>8} {t.size:>10.4f} "
                     f"{t.avg_entry:>11.2f} {exit_px:>11} {t.pnl:>10.2f} {t.fees:>8.2f}  {t.outcome}")
    if not r.trades:
        lines.append("  (no trades)")
    lines += [
        "",
        f"  realized {r.realized_pnl:,.2f} USD  unrealized {r.unrealized_pnl:,.2f} USD  "
        f"fees {r.fees:,.2f} USD  funding {r.funding:,.2f} USD",
        f"  net PnL {r.net_pnl:+,.2f} USD  (equity {r.start_equity:,.2f} -> {r.end_equity:,.2f})  "
        f"max drawdown {r.max_drawdown_usd:,.2f} USD ({r.max_drawdown_pct:.2f} %)",
        f"  at the end: position {r.open_position:+g} SOL, {r.open_orders} open order(s)",
    ]
    for k in r.kills:
        lines.append(f"  kill: {k}")
    lines += ["", *render_funnel(r.funnel)]
    if r.warnings:
        lines += ["", *render_warnings(r.warnings)]
    return "\n".join(lines)


RECORDING_SUFFIXES = (".gz", ".zst", ".jsonl", ".txt")


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; a directory -> its recording files (by name: the recorder's hourly files
    sort in time order), recursively."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(RECORDING_SUFFIXES))
            if not found:
                fail(f"{p}: no recordings in this directory (*.gz, *.zst, *.jsonl)")
            out += found
        elif p.exists():
            out.append(p)
        else:
            fail(f"{p}: no such recording")
    return out


def parse_when(text: str, option: str) -> int:
    """``--from``/``--to``: epoch ms (12+ digits), or an ISO date/time (UTC unless it says otherwise)."""
    t = text.strip()
    if t.isdigit() and len(t) >= 12:
        return int(t)
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        fail(f"{option} must be a UTC date/time like 2024-08-08T23:55 or epoch ms, got {text!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _run(config: Path | None, sets: list[str] | None, paths: list[Path], manual: list[ManualOrder],
         json_out: bool, progress: bool | None = None, start: str | None = None,
         end: str | None = None) -> tuple[int, Backtest | None]:
    files = expand_paths(paths)
    defaults, session = session_defaults(files[0], sets)  # one configuration with the runtime on this data
    if session:
        print(f"autotrader: {session}", file=sys.stderr)
    cfg, note = paper_only(get_config(config, sets, defaults), "a backtest")
    if note:
        print(f"autotrader: {note}", file=sys.stderr)
    start_ms = parse_when(start, "--from") if start else None
    end_ms = parse_when(end, "--to") if end else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        fail("--to must be after --from")
    show = (sys.stderr.isatty() if progress is None else progress) and not json_out
    bt = Backtest(cfg, files, manual, start_ms=start_ms, end_ms=end_ms)
    try:
        with frame_progress("backtest", show) as tick:
            report = asyncio.run(bt.run(tick))
    except RecordingError as exc:
        fail(str(exc))
    except ManualIntentError as exc:
        fail(f"manual intent: {exc}")
    if json_out:
        sys.stdout.write(orjson.dumps(msgspec.to_builtins(report)).decode() + "\n")
        for w in report.warnings:  # the JSON carries them too; a script's operator sees them here
            print(f"autotrader: warning: {w}", file=sys.stderr)
    else:
        print(render_report(report))
    return 0, bt


def run_backtest(config: Path | None, sets: list[str] | None, paths: list[Path], json_out: bool, *,
                 progress: bool | None = None, start: str | None = None, end: str | None = None,
                 sweeps: list[str] | None = None, jobs: int | None = None) -> int:
    if sweeps:
        return _sweep(config, sets, paths, json_out, start, end, sweeps, jobs)
    return _run(config, sets, paths, [], json_out, progress, start, end)[0]


def _sweep(config: Path | None, sets: list[str] | None, paths: list[Path], json_out: bool,
           start: str | None, end: str | None, sweeps: list[str], jobs: int | None) -> int:
    from autotrader.sweep import Job, SweepError, combinations, parse_sweeps, render_sweep, run_sweep

    try:
        combos = combinations(parse_sweeps(sweeps))
    except SweepError as exc:
        fail(str(exc))
    notes = set()
    for combo in combos:  # every combination validated before anything runs
        _, note = paper_only(get_config(config, [*(sets or []), *(f"{k}={v}" for k, v in combo.items())]),
                             "a backtest")
        notes.add(note)
    for note in sorted(n for n in notes if n):
        print(f"autotrader: {note}", file=sys.stderr)
    if jobs is not None and jobs < 1:
        fail("--jobs must be at least 1")
    files = expand_paths(paths)
    start_ms = parse_when(start, "--from") if start else None
    end_ms = parse_when(end, "--to") if end else None
    work = [Job(config, list(sets or []), c, files, start_ms, end_ms) for c in combos]
    try:
        rows = run_sweep(work, jobs)
    except RecordingError as exc:
        fail(str(exc))
    if json_out:
        sys.stdout.write(orjson.dumps(rows).decode() + "\n")
    else:
        print(f"sweep: {len(rows)} backtests over {', '.join(map(str, files))}")
        print(render_sweep(rows))
    return 0


def run_backtest_with_intent(
    config: Path | None,
    sets: list[str] | None,
    path: Path,
    *,
    side: str,
    size: float,
    sl: float,
    price: float | None,
    tps: list[tuple[float, float | None]],
    at: str,
    json_out: bool,
) -> int:
    try:
        at_ms, offset = parse_at(at)
    except ValueError as exc:
        fail(str(exc))
    m = ManualOrder(side=side, size=size, sl=sl, price=price, tps=tps, at_ms=at_ms, offset_ms=offset)
    code, bt = _run(config, sets, [path], [m], json_out)
    if bt is not None and not json_out:
        print("\n  manual intent:")
        for ev in bt.events:
            if ev.intent_id == m.id:
                from core.event_text import describe

                print(f"    {_ts(ev.ts)}  {ev.kind:<22} {describe(ev)}")
    return code
