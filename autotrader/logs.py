"""Structured logging: one JSON object per line on stderr."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson


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
        return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


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
