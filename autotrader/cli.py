"""The ``autotrader`` command line (typer). See the command-line contract in ARCHITECTURE.md."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from autotrader import package_version
from autotrader.activity_cmd import activity_app
from autotrader.cli_common import ConfigOpt, SetOpt, fail, get_config
from autotrader.config_cmd import config_app
from autotrader.drift_cmd import delegate_app, keys_app, venue_app
from autotrader.engine_cmds import register as register_engine_commands
from autotrader.exit_codes import QuietPipeGroup
from autotrader.liqmap_cmd import liqmap
from autotrader.manual_cmd import drift_order
from autotrader.signals_cmd import signals

if TYPE_CHECKING:
    from core.config_schema import Config

app = typer.Typer(
    name="autotrader",
    help="Terminal trading for SOL perpetuals: market data, guards, paper/Drift execution.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=QuietPipeGroup,  # a closed stdout ends any command quietly (autotrader.exit_codes)
)

def _version(value: bool) -> None:
    if value:
        typer.echo(f"autotrader {package_version()}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """autotrader."""


class EmitKind(StrEnum):
    bars = "bars"
    book = "book"
    trades = "trades"
    liquidations = "liquidations"
    funding = "funding"
    guards = "guards"
    intents = "intents"


@app.command()
def replay(
    path: Annotated[
        Path, typer.Argument(help="Recording: own .jsonl[.zst|.gz], cryptofeed .jsonl.zst, hftbacktest .gz")
    ],
    emit: Annotated[EmitKind, typer.Option("--emit", help="What to print, one JSON object per line.")],
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Primary Binance symbol (default: first one in the file).")
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar on stderr (default: if a tty)."),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Replay a recording through the live codecs and print what they produce."""
    from autotrader.replay_cmd import run_replay

    cfg = get_config(config, set_)
    show = sys.stderr.isatty() if progress is None else progress
    code = run_replay(cfg, path, emit.value, symbol=symbol, progress=show)
    raise typer.Exit(code)


@app.command()
def run(
    no_ui: Annotated[
        bool, typer.Option("--no-ui", help="Headless: no terminal UI, structured logs.")
    ] = False,
    replay_path: Annotated[
        Path | None,
        typer.Option("--replay", help="Drive the runtime from a recording instead of live feeds."),
    ] = None,
    speed: Annotated[
        str, typer.Option("--speed", help="Replay pace: a multiple of real time, or 'max'.")
    ] = "1",
    store: Annotated[
        bool | None,
        typer.Option("--store/--no-store", help="Write Parquet storage (default: on live, off on replay)."),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Start the runtime (live market data by default; --replay PATH to drive it from a recording)."""
    from autotrader.config import control_socket_path, state_db_path, storage_root
    from autotrader.runtime import parse_speed, run_runtime

    cfg = get_config(config, set_, _session(replay_path, set_) if replay_path is not None else None)
    try:
        pace = parse_speed(speed)
    except ValueError as exc:
        fail(str(exc))
    if replay_path is not None:  # a recording never drives a live venue
        cfg = _paper_only(cfg, "a replay")
    keep = (replay_path is None) if store is None else store
    state = state_db_path(cfg, "live" if replay_path is None else "replay")
    root = storage_root(cfg) if keep else None
    _check_paths(cfg, state, root, live=replay_path is None)
    if not no_ui:
        from autotrader.ui_main import run_with_ui

        raise typer.Exit(run_with_ui(cfg, replay_path, pace, root, state, control_socket_path(cfg)))
    raise typer.Exit(run_runtime(cfg, replay_path, pace, root, state_db=state,
                                 control_path=control_socket_path(cfg)))


@app.command()
def ui(
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for an instance to start instead of exiting with 1.")
    ] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Attach the terminal UI to the running instance (its control socket); quitting detaches and
    never stops trading."""
    from autotrader.attach_main import run_attached
    from autotrader.config import control_socket_path

    cfg = get_config(config, set_)
    raise typer.Exit(run_attached(cfg, control_socket_path(cfg), wait=wait))


@app.command()
def guards(
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds to wait for every input to be fresh.", min=1, max=3600),
    ] = 75.0,
    live: Annotated[
        bool, typer.Option("--live", help="Connect to the feeds now even when an instance is running.")
    ] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """The guard report of the running instance; without one (or with --live), one-shot from the
    live feeds (inputs that stay missing are named)."""
    import asyncio

    import orjson

    from autotrader.config import control_socket_path
    from autotrader.control import ControlError, request_sync
    from autotrader.guards_cmd import guards_exit_code, render_json_text

    cfg = get_config(config, set_)
    d: dict[str, Any] | None = None
    if not live:
        try:
            d = request_sync(control_socket_path(cfg), "guards", {"detailed": True}, timeout=3.0)
        except ControlError:
            d = None
    if d is None:
        from autotrader.guards_cmd import one_shot_report
        from autotrader.logs import setup_logging
        from core.guards import to_json

        setup_logging("WARNING")
        d = to_json(asyncio.run(one_shot_report(cfg, timeout)), detailed=True)
    if json_out:
        d.pop("checks", None)
        typer.echo(orjson.dumps(d).decode())
    else:
        typer.echo(render_json_text(d))
    raise typer.Exit(guards_exit_code(d))


@app.command()
def demo(
    no_ui: Annotated[
        bool, typer.Option("--no-ui", help="Headless: structured logs instead of the UI.")
    ] = False,
    speed: Annotated[str, typer.Option("--speed", help="Pace: a multiple of real time, or 'max'.")] = "1",
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=2**32 - 1, help="Seed of the synthetic session (0..2^32-1).")
    ] = 7,
    fast_forward: Annotated[
        bool, typer.Option("--fast-forward/--no-fast-forward",
                           help="Replay the warm-up as fast as possible, then at --speed.")
    ] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run on the bundled synthetic demo session (generated once, deterministically; no network)."""
    import math

    import platformdirs

    from autotrader.config import control_socket_path, state_db_path
    from autotrader.runtime import parse_speed, run_runtime
    from autotrader.session import recording_header
    from feeds.demo import ensure_demo
    from feeds.demo.script import chapters as demo_chapters
    from feeds.demo.script import fast_forward_until, script_text

    try:
        pace = parse_speed(speed)
    except ValueError as exc:
        fail(str(exc))
    cache = Path(platformdirs.user_cache_dir("autotrader")) / "demo"
    try:
        path = ensure_demo(cache, seed=seed)
    except OSError as exc:
        fail(f"{cache}: cannot write the demo session: {exc.strerror or exc}", 1)
    typer.echo(f"synthetic demo session: {path}", err=True)
    # the session's own settings (ATR over 3 bars: 45 minutes of data), as backtest and run --replay
    # apply them on the same file (feeds/demo/script.py)
    cfg = _paper_only(get_config(config, set_, _session(path, set_, quiet=True)), "the demo")
    header = recording_header(path)
    fast = fast_forward and not math.isinf(pace)
    script = script_text(header, pace, fast_forward_until(header) if fast else None)
    state = state_db_path(cfg, "demo")
    _check_paths(cfg, state, None, live=False)
    fresh = not cfg.storage.state_db  # every demo starts with a fresh paper account (once it holds the lock)
    if not no_ui:
        from autotrader.ui_main import run_with_ui
        from feeds.demo import LABEL

        chapters = [(c.start_ms, c.line()) for c in demo_chapters(header)]
        raise typer.Exit(run_with_ui(cfg, path, pace, None, state, control_socket_path(cfg), label=LABEL,
                                     fresh=fresh, fast_forward=fast, chapters=chapters))
    typer.echo(script, err=True)
    code = run_runtime(cfg, path, pace, None, state_db=state, control_path=control_socket_path(cfg),
                       fresh=fresh, fast_forward=fast)
    raise typer.Exit(code)


def _session(path: Path, sets: list[str] | None, quiet: bool = False) -> dict[str, Any]:
    """The settings the recording's session declares (autotrader/session.py), said in one line
    (the demo's script says them itself)."""
    from autotrader.session import session_defaults

    overrides, note = session_defaults(path, sets)
    if note and not quiet:
        typer.echo(f"autotrader: {note}", err=True)
    return overrides


def _check_paths(cfg: Config, state: Path, root: Path | None, *, live: bool) -> None:
    """Every path the runtime writes, before it starts: a one-line error naming the key (exit 2)."""
    from autotrader.config import ConfigError, control_socket_path
    from autotrader.paths import check_run_paths

    try:
        check_run_paths(cfg, state, root, control_socket_path(cfg), live=live)
    except ConfigError as exc:
        fail(str(exc))


def _paper_only(cfg: Any, what: str) -> Any:
    """Synthetic or recorded data: the paper venue, said in one line when the config chose another."""
    from autotrader.paper_stack import paper_only

    cfg, note = paper_only(cfg, what)
    if note:
        typer.echo(f"autotrader: {note}", err=True)
    return cfg


def parse_duration(text: str) -> float:
    """'90' or '90s', '10m', '2h', '1d' -> seconds (> 0)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    t = text.strip().lower()
    mult = units.get(t[-1:])
    num = t[:-1] if mult is not None else t
    try:
        value = float(num) * (mult or 1.0)
    except ValueError:
        raise ValueError(f"--duration must look like 90, 90s, 10m, 2h or 1d, got {text!r}") from None
    if not 0 < value <= 366 * 86400.0:  # NaN and inf fail this too
        raise ValueError(f"--duration must be positive and at most 366d, got {text!r}")
    return value


@app.command()
def record(
    out: Annotated[Path, typer.Option("--out", help="Directory for the hourly recording files.")],
    duration: Annotated[
        str | None,
        typer.Option("--duration", help="Stop after this long (90s, 10m, 2h); default: until SIGINT."),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Record every raw frame and REST body of the live feeds (zstd JSON lines, rotated hourly)."""
    import asyncio
    import signal

    from autotrader.logs import setup_logging
    from feeds.record import run_record

    cfg = get_config(config, set_)
    setup_logging(cfg.logging.level)
    try:
        seconds = parse_duration(duration) if duration is not None else None
    except ValueError as exc:
        fail(str(exc))
    from autotrader.config import ConfigError
    from autotrader.paths import check_dir

    try:
        check_dir(out, "--out")
    except ConfigError as exc:
        fail(str(exc))

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        result = await run_record(cfg, out, seconds, stop)
        typer.echo(
            f"recorded {result.records:,} frames into {len(result.files)} file(s) in {out}"
            + (f"; {result.errors} write errors" if result.errors else ""),
            err=True,
        )
        if not result.records:
            typer.echo("autotrader: nothing was recorded (no feed answered: check the network and "
                       "the venues.* endpoints)", err=True)
        return 1 if result.errors or not result.records else 0

    raise typer.Exit(asyncio.run(main()))


@app.command()
def backtest(
    paths: Annotated[list[Path], typer.Argument(
        help="Recordings (files, or directories of them) replayed in order as one stream.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    start: Annotated[str | None, typer.Option(
        "--from", help="Only frames received from this UTC time (2024-08-08T23:55, or epoch ms).")] = None,
    end: Annotated[str | None, typer.Option(
        "--to", help="Only frames received before this UTC time.")] = None,
    sweep: Annotated[list[str] | None, typer.Option(
        "--sweep", help="key=v1,v2,...: a backtest per combination, on all cores, as a table (repeatable).")
    ] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", help="Sweep processes (default: every core).")] = None,
    progress: Annotated[bool | None, typer.Option(
        "--progress/--no-progress", help="Progress bar on stderr (default: if a tty; never with --json).")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Backtest on event time: trades, PnL, fees, max drawdown, guard blocks and kills."""
    from autotrader.backtest_cmd import run_backtest

    raise typer.Exit(run_backtest(config, set_, paths, json_out, progress=progress, start=start, end=end,
                                  sweeps=sweep, jobs=jobs))


register_engine_commands(app)
app.add_typer(activity_app, name="activity")

app.command(name="liqmap")(liqmap)
app.command(name="signals")(signals)

app.add_typer(venue_app, name="venue")
app.add_typer(delegate_app, name="delegate")
app.add_typer(keys_app, name="keys")
app.command(name="drift-order", hidden=True)(drift_order)


app.add_typer(config_app, name="config")


def main() -> None:
    """The console entry point: the exit-code contract of autotrader.exit_codes (README table)."""
    from autotrader.exit_codes import run_app

    sys.exit(run_app(app))
