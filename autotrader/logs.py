"""Structured logging: one JSON object per line on stderr (or a private file for the UI).

Every line goes through :func:`redact`: the secrets of the loaded config (auth headers, API keys
inside URLs, passphrases; :mod:`core.secrets`) are masked wherever they appear, in a message, an
exception text or a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import orjson

from core.secrets import Redactor, tree_secrets

if TYPE_CHECKING:
    from core.config_schema import Config

_REDACTOR = Redactor()


def register_secrets(cfg: Config) -> None:
    """Remember the secrets of ``cfg`` so :func:`redact` masks them (called on every config load)."""
    from core.config_schema import to_dict

    secrets = tree_secrets(to_dict(cfg))
    passphrase = os.environ.get("AUTOTRADER_PASSPHRASE")  # execution.signers.keystore.PASSPHRASE_ENV
    if passphrase:
        secrets.append(passphrase)
    _REDACTOR.add(secrets + [orjson.dumps(s).decode()[1:-1] for s in secrets])  # as JSON escapes them


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    return _REDACTOR(text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "data", None)
        if isinstance(extra, dict):
            payload.update(extra)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS, default=str).decode())


def setup_logging(level: str = "INFO") -> logging.Logger:
    """JSON lines on stderr for every logger (ours and the feeds'); returns the app logger."""
    root = logging.getLogger()
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.Formatter.converter = time.gmtime
    return logging.getLogger("autotrader")


def log_event(logger: logging.Logger, msg: str, level: int = logging.INFO, **data: Any) -> None:
    logger.log(level, msg, extra={"data": data})
