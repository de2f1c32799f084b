"""Configuration: defaults < TOML file < ``AUTOTRADER__SECTION__KEY`` env vars < CLI overrides.

The whole tree is validated at start by converting it into typed msgspec Structs; an error names
the offending key by its dotted path and says what form was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import platformdirs

from core.config_schema import (  # noqa: F401  (re-exported for callers)
    BinanceConfig,
    BybitConfig,
    Config,
    DriftConfig,
    FeedsConfig,
    HeliusConfig,
    LoggingConfig,
    MarketConfig,
    OkxConfig,
    StorageConfig,
    VenuesConfig,
    to_dict,
)
from core.engine_types import OWNED_ELSEWHERE
from core.guard_config import GUARD_NAMES

APP_NAME = "autotrader"
ENV_PREFIX = "AUTOTRADER__"


class ConfigError(ValueError):
    """A configuration problem, naming the key (dotted path) and the expected form."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"config error at '{key}': {message}" if key else f"config error: {message}")


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


_AT_RE = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def _path_from_msgspec(path: str) -> str:
    # msgspec paths look like ".venues.binance" or ".guards.blocking[1]".
    return path.lstrip(".")


def _parse_env_value(raw: str) -> Any:
    """Interpret an env value as a TOML literal when it is one (numbers, booleans, arrays)."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _set_path(tree: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise ConfigError(dotted, f"empty key in {source}")
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(".".join(parts[: i + 1]), f"is a value, not a section ({source})")
        node = child
    node[parts[-1]] = value


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        dotted = ".".join(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))
        _set_path(tree, dotted, _parse_env_value(raw), f"environment variable {name}")
    return tree


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def validate(tree: Mapping[str, Any]) -> Config:
    engine = tree.get("engine")
    if isinstance(engine, Mapping):
        for key in engine:
            if key in OWNED_ELSEWHERE:
                raise ConfigError(f"engine.{key}", f"set {OWNED_ELSEWHERE[key]} instead")
    try:
        return msgspec.convert(tree, Config, strict=False)
    except msgspec.ValidationError as exc:
        m = _AT_RE.match(str(exc))
        msg, path = (m.group("msg"), m.group("path") or "") if m else (str(exc), "")
        unknown = re.match(r"Object contains unknown field `([^`]+)`", msg)
        if unknown:
            key = ".".join(p for p in (_path_from_msgspec(path), unknown.group(1)) if p)
            raise ConfigError(key, "unknown key") from None
        key = _path_from_msgspec(path)
        # cross-field checks (__post_init__) say "<field>: why" and point at the section
        field = re.match(r"^([a-z_][a-z0-9_]*): (.*)$", msg, re.S)
        if field:
            key = ".".join(p for p in (key, field.group(1)) if p)
            msg = field.group(2)
        if key.startswith("guards.blocking[") and msg.startswith("Invalid enum value"):
            msg = f"unknown guard name {msg.split(' ', 3)[-1]}; known: {', '.join(GUARD_NAMES)}"
        raise ConfigError(key, msg) from None


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load and validate. ``path=None`` reads the default location if it exists."""
    tree: dict[str, Any] = {}
    explicit = path is not None
    file = path if path is not None else default_config_path()
    if file.exists():
        try:
            tree = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("", f"{file}: invalid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError("", f"{file}: cannot read: {exc.strerror}") from None
    elif explicit:
        raise ConfigError("", f"{file}: no such config file")
    tree = _merge(tree, env_overrides(os.environ if environ is None else environ))
    for dotted, value in (overrides or {}).items():
        nested: dict[str, Any] = {}
        _set_path(nested, dotted, value, "command line")
        tree = _merge(tree, nested)
    return validate(tree)


def parse_set_option(item: str) -> tuple[str, Any]:
    """``--set market.binance_symbol=BTCUSDT`` → (key, value), the value read as a TOML literal."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(item, "expected KEY=VALUE, e.g. market.binance_symbol=SOLUSDT")
    return key.strip(), _parse_env_value(raw.strip())


def storage_root(cfg: Config) -> Path:
    return Path(cfg.storage.root) if cfg.storage.root else default_data_dir() / "parquet"


def state_db_path(cfg: Config, mode: str = "live") -> Path:
    """The state database (activity log, order journal, paper account, engine control state).

    ``storage.state_db`` when set; else in the data dir, one per kind of run so a replay or the demo
    never touches the live paper account: ``state.sqlite3`` (live), ``replay-state.sqlite3``,
    ``demo-state.sqlite3``."""
    if cfg.storage.state_db:
        return Path(cfg.storage.state_db).expanduser()
    name = {"live": "state.sqlite3", "replay": "replay-state.sqlite3", "demo": "demo-state.sqlite3"}[mode]
    return default_data_dir() / name


def control_socket_path(cfg: Config) -> Path:
    from autotrader.control import default_socket_path

    return Path(cfg.control.socket_path).expanduser() if cfg.control.socket_path else default_socket_path()
