"""``autotrader activity``: the activity log (newest first) and its export.

Which database: ``--db PATH``; else the running instance's (asked over the control socket, so a
demo or replay daemon's log is found); else the live one from the config (``storage.state_db``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import orjson
import typer

from autotrader.cli_common import ConfigOpt, JsonOpt, SetOpt, fail, get_config

if TYPE_CHECKING:
    from storage.activity_log import ActivityLog

activity_app = typer.Typer(help="The activity log: list (newest first) or export.", no_args_is_help=False)

DbOpt = Annotated[Path | None, typer.Option("--db", help="State database (default: the running instance's).")]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only rows since: 24h, 7d, an ISO date/time or epoch ms.")
]
KindOpt = Annotated[list[str] | None, typer.Option("--kind", help="Only this kind (repeatable).")]


def _same_file(out: Path, db: Path) -> bool:
    """``out`` is the database or one of its WAL/shared-memory files (writing there destroys it)."""
    try:
        target = out.resolve()
        base = db.resolve()
    except (OSError, RuntimeError):
        return False
    return target in (base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm"))


def _db(config: Path | None, sets: list[str] | None, db: Path | None) -> Path:
    if db is not None:
        return db
    from autotrader.config import control_socket_path, state_db_path
    from autotrader.control import ControlError, request_sync

    cfg = get_config(config, sets)
    try:
        running = request_sync(control_socket_path(cfg), "status", {}, timeout=2.0)
        path = (running.get("engine") or {}).get("state_db")
        if path:
            return Path(path)
    except ControlError:
        pass
    return state_db_path(cfg, "live")


def _open(path: Path) -> ActivityLog:
    import sqlite3

    from storage.activity_log import ActivityLog, ActivityLogError

    try:
        log = ActivityLog(path, readonly=True)
    except ActivityLogError as exc:
        fail(str(exc), 1)
    except (sqlite3.Error, OSError) as exc:
        fail(f"{path}: not a readable activity database ({exc})", 1)
    try:
        log.count()  # a file that is not an activity database says so here
    except (sqlite3.Error, ActivityLogError) as exc:
        log.close()
        fail(f"{path}: not a readable activity database ({exc})", 1)
    return log


def _since(text: str | None) -> int | None:
    from storage.activity_log import ActivityLogError, parse_since

    if text is None:
        return None
    try:
        return parse_since(text)
    except ActivityLogError as exc:
        fail(str(exc))


@activity_app.callback(invoke_without_command=True)
def activity(
    ctx: typer.Context,
    json_out: JsonOpt = False,
    kind: KindOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10**9, help="At most this many rows.")] = 50,
    since: SinceOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """List the activity log, newest first (``activity export`` writes it all)."""
    if ctx.invoked_subcommand is not None:
        return
    from storage.activity_log import ActivityLogError

    log = _open(_db(config, set_, db))
    try:
        rows = log.query(set(kind) if kind else None, _since(since), limit)
    except ActivityLogError as exc:
        fail(str(exc))
    finally:
        log.close()
    if json_out:
        typer.echo(orjson.dumps([r.to_dict() for r in rows]).decode())
        return
    from datetime import UTC, datetime

    for r in rows:
        when = datetime.fromtimestamp(r.ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{r.id:>6}  {when}  {r.kind:<22} {r.intent_id[:28]:<28} {r.message}")


@activity_app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    since: SinceOpt = None,
    kind: KindOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file (default: stdout).")] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Export the activity log oldest first as JSON lines or CSV."""
    from storage.activity_log import ActivityLogError
    from storage.private_files import open_private

    if fmt not in ("jsonl", "csv"):
        fail(f"--format must be jsonl or csv, got {fmt!r}")
    kind_fmt: Literal["jsonl", "csv"] = "csv" if fmt == "csv" else "jsonl"
    path = _db(config, set_, db)
    if out is not None and _same_file(out, path):
        fail(f"--out {out}: that is the activity database itself; choose another file")
    log = _open(path)
    try:
        if out is None:
            n = log.export(kind_fmt, sys.stdout, _since(since), set(kind) if kind else None)
        else:
            with open_private(out, "w", encoding="utf-8", newline="") as fh:  # 0600: it holds the orders
                n = log.export(kind_fmt, fh, _since(since), set(kind) if kind else None)
    except BrokenPipeError:
        raise  # the reader (| head) had enough: ends quietly (autotrader.exit_codes)
    except ActivityLogError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{out or 'stdout'}: {exc.strerror or exc}", 1)
    finally:
        log.close()
    typer.echo(f"exported {n} row(s)", err=True)
