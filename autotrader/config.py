"""Configuration: defaults < TOML file < ``AUTOTRADER__SECTION__KEY`` env vars < CLI overrides.

The whole tree is validated at start by converting it into typed msgspec Structs; an error names
the offending key by its dotted path and says what form was expected. Every float must be finite
(``inf``/``nan`` are TOML floats, so they would otherwise pass ``> 0`` checks or any plain float).
Env and ``--set`` values are parsed by the key's declared type: a string key takes the text as it
is (quote it to keep quotes or spaces: ``--set keys.delegate_name='"007"'``), other keys read it as
a TOML literal (numbers, booleans, arrays, inline tables).
"""

from __future__ import annotations

import functools
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
    bad_number_key,
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


def _toml_literal(raw: str) -> Any:
    """``raw`` read as a TOML literal when it is one (numbers, booleans, arrays), else the text."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


@functools.cache
def _config_type() -> Any:
    import msgspec.inspect as mi

    return mi.type_info(Config)  # ~10 ms: once per process


def _declared_type(dotted: str) -> Any:
    """The msgspec.inspect type of a dotted config key, or None when the key is unknown."""
    import msgspec.inspect as mi

    t: Any = _config_type()
    for part in (p for p in dotted.split(".") if p):
        while isinstance(t, mi.Metadata):
            t = t.type
        if isinstance(t, mi.StructType):
            field = next((f for f in t.fields if f.name == part), None)
            if field is None:
                return None
            t = field.type
        elif isinstance(t, mi.DictType):
            t = t.value_type
        else:
            return None
    while isinstance(t, mi.Metadata):
        t = t.type
    return t


def _is_text(t: Any) -> bool:
    import msgspec.inspect as mi

    if isinstance(t, mi.StrType):
        return True
    if isinstance(t, mi.LiteralType):
        return all(isinstance(v, str) for v in t.values)
    if isinstance(t, mi.UnionType):
        return any(_is_text(x) for x in t.types)
    return False


def parse_value(dotted: str, raw: str) -> Any:
    """An env or ``--set`` value by the key's declared type: text for a string key (a quoted value
    is read as a TOML string, so quotes keep spaces or quote characters), otherwise a TOML literal.
    An all-digit value of a string key stays a string."""
    text = raw.strip()
    if _is_text(_declared_type(dotted)):
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            value = _toml_literal(text)
            return value if isinstance(value, str) else text
        return text
    return _toml_literal(text)


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
        _set_path(tree, dotted, parse_value(dotted, raw), f"environment variable {name}")
    return tree


def env_sources(environ: Mapping[str, str]) -> dict[str, str]:
    """dotted key -> the environment variable that sets it."""
    return {".".join(p.lower() for p in name[len(ENV_PREFIX) :].split("__")): name
            for name in environ if name.startswith(ENV_PREFIX)}


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
    bad = bad_number_key(dict(tree))
    if bad is not None:
        raise ConfigError(bad, _bad_number(_lookup(tree, bad)))
    try:
        cfg = msgspec.convert(tree, Config, strict=False)
    except msgspec.ValidationError as exc:
        m = _AT_RE.match(str(exc))
        msg, path = (m.group("msg"), m.group("path") or "") if m else (str(exc), "")
        unknown = re.match(r"Object contains unknown field `([^`]+)`", msg)
        if unknown:
            key = ".".join(p for p in (_path_from_msgspec(path), unknown.group(1)) if p)
            raise ConfigError(key, "unknown key") from None
        key = _path_from_msgspec(path)
        # cross-field checks (__post_init__) say "<field>: why" and point at the section
        field = re.match(r"^([a-z_][a-z0-9_.]*): (.*)$", msg, re.S)
        if field:
            key = ".".join(p for p in (key, field.group(1)) if p)
            msg = field.group(2)
        if key.startswith("guards.blocking[") and msg.startswith("Invalid enum value"):
            msg = f"unknown guard name {msg.split(' ', 3)[-1]}; known: {', '.join(GUARD_NAMES)}"
        raise ConfigError(key, msg) from None
    bad = bad_number_key(cfg)  # a value msgspec converted (e.g. the text "inf")
    if bad is not None:
        raise ConfigError(bad, _bad_number(_lookup(cfg, bad)))
    return cfg


def _bad_number(value: Any) -> str:
    if isinstance(value, float):
        return f"must be a finite number, got {value}"
    return f"out of range: {value} (beyond ±2^53)"


def _lookup(tree: Any, dotted: str) -> Any:
    node: Any = msgspec.to_builtins(tree)
    for part in re.findall(r"[^.\[\]]+", dotted):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _read_file(path: Path | None) -> tuple[dict[str, Any], Path | None]:
    """The TOML tree of the config file (``None``: the default location, if there is a file)."""
    file = path if path is not None else default_config_path()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path is not None:
            raise ConfigError("", f"{file}: no such config file") from None
        return {}, None
    except UnicodeDecodeError:
        raise ConfigError("", f"{file}: not a text file (UTF-8 TOML expected)") from None
    except OSError as exc:
        raise ConfigError("", f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text), file
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{file}: invalid TOML: {exc}") from None


class Layers:
    """Where each value comes from: the file, the environment, then the command line (``--set``
    and a command's own defaults), each a tree of overrides."""

    def __init__(self, path: Path | None, environ: Mapping[str, str] | None,
                 overrides: Mapping[str, Any] | None) -> None:
        env = os.environ if environ is None else environ
        self.file_tree, self.file = _read_file(path)
        self.env_tree = env_overrides(env)
        self.env_names = env_sources(env)
        self.set_tree: dict[str, Any] = {}
        for dotted, value in (overrides or {}).items():
            nested: dict[str, Any] = {}
            _set_path(nested, dotted, value, "command line")
            self.set_tree = _merge(self.set_tree, nested)

    def merged(self) -> dict[str, Any]:
        return _merge(_merge(self.file_tree, self.env_tree), self.set_tree)

    def source(self, dotted: str) -> str:
        """``--set``, ``env NAME``, ``file`` or ``default`` for a leaf key of the effective config."""
        for label, tree in (("--set", self.set_tree), ("env", self.env_tree), ("file", self.file_tree)):
            if _sets(tree, dotted):
                if label == "env":
                    name = next((n for k, n in self.env_names.items()
                                 if dotted == k or dotted.startswith(k + ".")), "")
                    return f"env {name}".strip()
                return label
        return "default"


def _sets(tree: Mapping[str, Any], dotted: str) -> bool:
    """Does ``tree`` set ``dotted`` (itself or a section above it)?"""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load and validate. ``path=None`` reads the default location if it exists."""
    return validate(Layers(path, environ, overrides).merged())


def load_config_with_sources(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Config, Layers]:
    layers = Layers(path, environ, overrides)
    return validate(layers.merged()), layers


def parse_set_option(item: str) -> tuple[str, Any]:
    """``--set market.binance_symbol=BTCUSDT`` → (key, value), the value parsed by the key's
    declared type (:func:`parse_value`)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(item, "expected KEY=VALUE, e.g. market.binance_symbol=SOLUSDT")
    return key.strip(), parse_value(key.strip(), raw)


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
