"""``autotrader config show [--json]``: the effective configuration, each value with its source
(``default``, ``file``, ``env NAME``, ``--set``), secrets masked (:mod:`core.secrets`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from autotrader.cli_common import ConfigOpt, SetOpt, config_with_sources

config_app = typer.Typer(help="The configuration: what is in effect and where each value comes from.",
                         no_args_is_help=True)


def flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Leaf values by dotted key (sections and tables walked into; lists are leaves)."""
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            out += flatten(value, dotted)
        else:
            out.append((dotted, value))
    return out


def _toml(value: Any) -> str:
    import orjson

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{}"
    return orjson.dumps(value).decode()


@config_app.command("show")
def show(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object instead of text.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Print the effective configuration with each value's source; secrets are masked."""
    import msgspec
    import orjson

    from core.secrets import redact_value

    cfg, layers = config_with_sources(config, set_)
    rows = [(key, redact_value(key, value), layers.source(key))
            for key, value in flatten(msgspec.to_builtins(cfg))]
    file = str(layers.file) if layers.file is not None else None
    if json_out:
        typer.echo(orjson.dumps({"config_file": file, "settings": [
            {"key": k, "value": v, "source": s} for k, v, s in rows]}).decode())
        return
    typer.echo(f"# config file: {file or 'none (defaults, environment and --set only)'}")
    width = min(64, max(len(k) + len(_toml(v)) for k, v, _ in rows) + 3)
    for key, value, source in rows:
        line = f"{key} = {_toml(value)}"
        typer.echo(f"{line:<{width}}# {source}")
