"""Options and helpers shared by every command module of the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:  # the CLI imports only what a command needs (tests/test_cli_imports.py)
    from core.config_schema import Config

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


def get_config(config: Path | None, sets: list[str] | None, defaults: dict[str, Any] | None = None) -> Config:
    """Load the config; ``defaults`` are command-specific overrides that ``--set`` still beats."""
    from autotrader.config import ConfigError, load_config, parse_set_option

    try:
        overrides = dict(defaults or {})
        overrides.update(parse_set_option(s) for s in (sets or []))
        return load_config(config, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc))


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
