"""Only live market data drives a live venue (safety principle 8), by construction.

A run whose market data is not live — ``demo``, ``replay``, ``run --replay``, ``backtest``,
``intent --replay`` — builds :class:`PaperTradingStack`, whose only venue is the paper venue: it
has no code path to Drift (or any venue added later), whatever ``engine.venue`` says. The command
says so in one line when the config selects another venue (:func:`paper_only`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from autotrader.trading import TradingStack
from core.clock import Clock
from core.config_schema import Config
from core.venue import Venue


def paper_only(cfg: Config, what: str) -> tuple[Config, str]:
    """``cfg`` with ``engine.venue = "paper"``, and the one-line note to print when it said
    otherwise ('' when it already was paper)."""
    if cfg.engine.venue == "paper":
        return cfg, ""
    note = (f"{what} runs on the paper venue: engine.venue = {cfg.engine.venue!r} is ignored "
            f"(only live market data may drive a live venue)")
    return msgspec.structs.replace(cfg, engine=msgspec.structs.replace(cfg.engine, venue="paper")), note


class PaperTradingStack(TradingStack):
    """:class:`TradingStack` for market data that is not live: the paper venue, always."""

    def __init__(self, cfg: Config, *args: Any, **kw: Any) -> None:
        super().__init__(paper_only(cfg, "")[0], *args, **kw)

    def _build_venue(self, clock: Clock) -> Venue:
        return self._build_paper(clock)
