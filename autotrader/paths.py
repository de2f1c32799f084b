"""Paths the app writes, checked at start: a clear one-line error naming the config key instead of a
traceback later (directories are created 0700, :mod:`storage.private_files`)."""

from __future__ import annotations

import os
from pathlib import Path

from autotrader.config import ConfigError
from core.config_schema import Config
from storage.private_files import private_dir


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_dir(path: Path, key: str) -> Path:
    """``path`` exists (created 0700 if missing) and is a writable directory; ConfigError otherwise."""
    try:
        private_dir(path)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(key, f"{path}: exists and is not a directory") from None
    except OSError as exc:
        raise ConfigError(key, f"{path}: cannot create the directory: {_why(exc)}") from None
    if not path.is_dir():
        raise ConfigError(key, f"{path}: not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(key, f"{path}: directory is not writable")
    return path


def check_file(path: Path, key: str) -> Path:
    """``path`` can be written: its directory is writable and it is not a directory itself."""
    if path.is_dir():
        raise ConfigError(key, f"{path}: is a directory, expected a file path")
    check_dir(path.parent, key)
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(key, f"{path}: file is not writable")
    return path


def check_run_paths(cfg: Config, state_db: Path, store_root: Path | None, control_path: Path,
                    *, live: bool) -> None:
    """Everything ``run``/``demo`` will write, checked before anything starts (ConfigError)."""
    from autotrader.liqmap_cmd import helius_dir, liqmap_dir

    check_file(state_db, "storage.state_db")
    if store_root is not None:
        check_dir(store_root, "storage.root")
    check_dir(control_path.parent, "control.socket_path")
    if cfg.venues.helius.listen:
        check_dir(helius_dir(cfg), "venues.helius.output_dir")
    if cfg.liqmap.scan == "always" or (cfg.liqmap.scan == "live" and live):
        check_dir(liqmap_dir(cfg), "liqmap.output_dir")
