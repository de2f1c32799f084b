"""Options and helpers shared by every command module of the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:  # the CLI imports only what a command needs (tests/test_cli_imports.py)
    from autotrader.config import Layers
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
    """One line on stderr (known secrets masked) and the exit code (autotrader.exit_codes: 2 usage
    or refused, 1 the command failed)."""
    from autotrader.logs import redact

    typer.echo(f"autotrader: {redact(message)}", err=True)
    raise typer.Exit(code)


def config_with_sources(config: Path | None, sets: list[str] | None,
                        defaults: dict[str, Any] | None = None) -> tuple[Config, Layers]:
    """Load the config; ``defaults`` are command-specific overrides that ``--set`` still beats. Its
    secrets are registered so no log line or error message prints them."""
    from autotrader.config import ConfigError, load_config_with_sources, parse_set_option
    from autotrader.logs import register_secrets

    try:
        overrides = dict(defaults or {})
        overrides.update(parse_set_option(s) for s in (sets or []))
        cfg, layers = load_config_with_sources(config, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc))
    register_secrets(cfg)
    return cfg, layers


def get_config(config: Path | None, sets: list[str] | None, defaults: dict[str, Any] | None = None) -> Config:
    """Load the config (see :func:`config_with_sources`)."""
    return config_with_sources(config, sets, defaults)[0]


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
