"""The ``autotrader`` command line (typer). See the command-line contract in ARCHITECTURE.md."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from autotrader import __version__
from autotrader.config import ConfigError, load_config, parse_set_option
from core.config_schema import Config

app = typer.Typer(
    name="autotrader",
    help="Terminal trading for SOL perpetuals: market data, guards, paper/Drift execution.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file (default: platformdirs location).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a config key, e.g. --set market.binance_symbol=SOLUSDT (repeatable)."
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"autotrader: {message}", err=True)
    raise typer.Exit(code)


def get_config(config: Path | None, sets: list[str] | None, extra: dict[str, Any] | None = None) -> Config:
    try:
        overrides = dict(parse_set_option(s) for s in (sets or []))
        overrides.update(extra or {})
        return load_config(config, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"autotrader {__version__}")
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
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Start the runtime (live by default; --replay PATH to drive it from a recording)."""
    from autotrader.runtime import parse_speed, run_runtime

    cfg = get_config(config, set_)
    if not no_ui:
        fail("the terminal UI is not built yet (issue 6); use --no-ui", 3)
    if replay_path is None:
        fail("live feeds are not built yet (issue 3); use --replay PATH", 3)
    try:
        pace = parse_speed(speed)
    except ValueError as exc:
        fail(str(exc))
    raise typer.Exit(run_runtime(cfg, replay_path, pace))


def _not_built(name: str, issue: str) -> None:
    def command() -> None:
        fail(f"'{name}' is not built yet ({issue})", 3)

    command.__doc__ = f"Not built yet ({issue})."
    app.command(name=name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
        command
    )


for _name, _issue in [
    ("record", "issue 3"),
    ("guards", "issue 4"),
    ("status", "issue 5"),
    ("kill", "issue 5"),
    ("intent", "issue 5"),
    ("activity", "issue 5"),
    ("backtest", "issue 5"),
    ("demo", "issue 6"),
    ("liqmap", "issue 7"),
    ("venue", "issue 8"),
    ("delegate", "issue 8"),
    ("keys", "issue 8"),
]:
    _not_built(_name, _issue)


def main() -> None:
    app()
