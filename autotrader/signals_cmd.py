"""``autotrader signals [--follow] [--json] [--limit N] [--symbol S]``: the minute signals feed.

Reads the JSON lines the runtime appends under ``<storage.root>/all/<SYMBOL>/signals/`` (no
running instance needed, no heavy imports): the latest ``--limit`` rows, oldest first, as a table
or (``--json``) one JSON object per line exactly as stored; ``--follow`` then prints each new row
as it is written (across UTC day files) until interrupted (exit 0). Exit 1 when nothing is stored.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from autotrader.cli_common import ConfigOpt, SetOpt, fail, get_config

SUFFIX = ".jsonl"  # storage.signals_jsonl's files (imported where used: the CLI module stays light)

HEADER = (f"{'time (UTC)':<16} {'price':>9} {'cvd':>8} {'vwap':>9} {'fund%':>7} {'basis':>6} {'OI USD':>7} "
          f"{'liqs 1m':>9}  {'guards':<8} regime")


def _compact(x: float | None) -> str:
    if x is None:
        return "-"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def _num(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def render_row(r: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(r["ts"] / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    liqs = f"{r['liq_count']}·{_compact(r['liq_notional'])}"
    guards = str(r["guard_status"]).upper()
    why = "" if r["guard_status"] == "passing" else f" ({', '.join(r['failing_guards'][:3])})"
    regime = "on" if r["regime_on"] else f"off: {r['regime_reason']}"
    fund, basis = _num(r["funding_apr"], ".2f"), _num(r["basis_bps"], "+.1f")
    return (f"{when:<16} {r['price']:>9.4f} {_compact(r['cvd']):>8} {r['vwap']:>9.4f} "
            f"{fund:>7} {basis:>6} {_compact(r['oi_usd']):>7} {liqs:>9}  {guards:<8} {regime}{why}")


def _files(d: Path) -> list[Path]:
    return sorted(p for p in d.glob(f"*{SUFFIX}") if p.name[:8].isdigit()) if d.is_dir() else []


def _last_rows(files: list[Path], limit: int) -> tuple[list[str], dict[Path, int]]:
    """The last ``limit`` complete lines, and how far each file was read (``--follow`` goes on
    from there, so a row written meanwhile is printed once)."""
    out: deque[str] = deque(maxlen=limit) if limit else deque(maxlen=0)
    offsets: dict[Path, int] = {}
    for p in files:
        data = p.read_bytes()
        end = data.rfind(b"\n") + 1  # a line still being written is left for --follow
        offsets[p] = end
        for line in data[:end].decode("utf-8", "replace").split("\n"):
            if line.strip():
                out.append(line)
    return list(out), offsets


class _Printer:
    def __init__(self, json_out: bool) -> None:
        self.json_out = json_out
        self.bad = 0

    def __call__(self, line: str) -> None:
        try:
            row = json.loads(line)
            text = line if self.json_out else render_row(row)
        except (ValueError, KeyError, TypeError):
            self.bad += 1  # a torn or foreign line: skipped, counted
            return
        typer.echo(text)


def _follow(d: Path, printer: _Printer, poll_s: float, offsets: dict[Path, int]) -> None:
    """Print lines appended past ``offsets``, across day files, until SIGINT/SIGTERM."""
    partial: dict[Path, str] = {}
    while True:
        time.sleep(poll_s)
        for p in _files(d):
            size = p.stat().st_size
            at = offsets.get(p, 0)
            if size <= at:
                continue
            with p.open("rb") as fh:
                fh.seek(at)
                chunk = fh.read(size - at).decode("utf-8", "replace")
            offsets[p] = size
            text = partial.pop(p, "") + chunk
            *lines, rest = text.split("\n")
            if rest:
                partial[p] = rest  # a line still being written
            for line in lines:
                if line.strip():
                    printer(line)
        sys.stdout.flush()


def signals(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing rows as they are written.")]
    = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line, as stored.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=0, help="The latest N rows first (0: none).")] = 20,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Primary symbol (market.binance_symbol).")]
    = None,
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="--follow: seconds between checks.")] = 1.0,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """The minute signals feed: price, CVD, VWAP, funding per venue, basis, OI, liquidations, guards,
    regime; one row per closed minute."""
    from autotrader.config import storage_root
    from storage.signals_jsonl import signals_dir

    cfg = get_config(config, set_)
    root = storage_root(cfg)
    sym = (symbol or cfg.market.binance_symbol).upper()
    d = signals_dir(root, sym)
    files = _files(d)
    if not files and not follow:
        base = d.parent.parent
        others = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        hint = f" (stored symbols: {', '.join(others)}; use --symbol)" if others else ""
        fail(f"no minute signals stored yet in {d}{hint}; 'autotrader run' writes them (with storage)", 1)
    printer = _Printer(json_out)
    rows, offsets = _last_rows(files, limit)
    if rows and not json_out:
        typer.echo(HEADER)
    for line in rows:
        printer(line)
    if not follow:
        return
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        _follow(d, printer, poll, offsets)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
