"""Which Binance hot path runs: the compiled one (``_fast.pyx``, built at install time) or the
pure-Python one (msgspec codec + :class:`core.book.OrderBook`). Both give the same events, bit for
bit (``tests/test_fast_path.py`` runs both over the shared recordings and the demo session).

``AUTOTRADER_PURE_PYTHON=1`` forces the pure-Python path (tests, comparisons); a missing or
unloadable extension falls back to it silently (``autotrader --version`` says which one runs).
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("AUTOTRADER_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from feeds.binance import _fast
    except ImportError:
        return None
    return _fast


compiled: ModuleType | None = _load()
"""The compiled module, or ``None`` when the pure-Python path runs."""


def hot_path() -> str:
    return "compiled" if compiled is not None else "pure-python"
