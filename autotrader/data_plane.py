"""The runtime's market data beyond the guards' inputs: the UI/status windows, the history a
restart starts from, and the answers built on them.

:meth:`DataPlane.load_history` runs once, before any live data is applied (live: at start;
replay: before the first frame, at that frame's time): stored bars, liquidations, OI and funding
go into the bar builder (the day's CVD/VWAP carry on), the guards' state (ATR lookback,
liquidation window), the signal's lookback, the windows here, and the UI (``HISTORY`` topic).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from autotrader.logs import log_event
from core.bus import Bus, Topics
from core.clock import Clock
from core.config_schema import Config
from core.guard_monitor import GuardMonitor, SignalRunner
from core.market_history import HISTORY, MarketHistory, MarketWindows
from core.minute_signals import MinuteSignals
from feeds.pipeline import MarketPipeline


class DataPlane:
    def __init__(self, cfg: Config, bus: Bus, pipeline: MarketPipeline, guards: GuardMonitor,
                 signal: SignalRunner, clock: Clock, logger: logging.Logger, store_root: Path | None) -> None:
        self.cfg, self.bus, self.pipeline, self.guards, self.signal = cfg, bus, pipeline, guards, signal
        self.clock, self.log, self.store_root = clock, logger, store_root
        self.windows = MarketWindows(oi_max_age_s=cfg.guards.max_age.oi_s)
        bus.on(Topics.BARS, self.windows.on_bar)
        bus.on(Topics.LIQUIDATIONS, self.windows.on_liquidation)
        bus.on(Topics.OPEN_INTEREST, self.windows.on_open_interest)
        bus.on(Topics.FUNDING, self.windows.on_funding)
        self.minute = MinuteSignals(bus, guards, signal)  # signals:minute, after guards and signal

    def instruments(self) -> list[tuple[str, str]]:
        """Every (venue, symbol) whose liquidations, OI and funding are kept."""
        m = self.cfg.market
        return [("binance", self.pipeline.primary or m.binance_symbol), ("bybit", m.bybit_symbol),
                ("okx", m.okx_usdt_inst), ("okx", m.okx_usdc_inst)]

    async def load_history(self, now_ms: int) -> MarketHistory | None:
        """Stored history up to ``now_ms`` into every window (see the module docstring); None
        without a store."""
        if self.store_root is None:
            return None
        from storage.market_history import load_history  # pyarrow: only when there is a store

        primary = ("binance", self.pipeline.primary or self.cfg.market.binance_symbol)
        try:
            h = await asyncio.to_thread(load_history, self.store_root, primary, self.instruments(), now_ms)
        except Exception as exc:  # history is a head start: unreadable history never stops a start
            log_event(self.log, "history not loaded", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
            return None
        self.pipeline.resume_bars(h.day_bars())
        self.guards.load_history(h)
        self.signal.signal.warm(h.bars)
        self.windows.load(h)
        self.bus.publish(HISTORY, h)
        counts = {"bars": len(h.bars), "liquidations": len(h.liquidations),
                  "open_interest": len(h.open_interest), "funding": len(h.funding)}
        log_event(self.log, "history loaded", now_ms=now_ms, **counts)
        return h

    def market_json(self) -> dict[str, Any]:
        """Open interest and funding over every venue for the status line (fresh values only)."""
        d, ma, now = self.guards.state.derivs, self.cfg.guards.max_age, self.clock.now_ms()
        return {"funding_apr": d.funding_aggregate(now, ma.funding_s, ma.oi_s),
                "funding_apr_by_venue": d.funding_by_venue(now, ma.funding_s, ma.oi_s),
                "oi_notional": d.oi_total(now, ma.oi_s), "oi_by_venue": d.oi_by_venue(now, ma.oi_s)}

    def windows_json(self) -> dict[str, Any]:
        """The market windows (UI and guards) as JSON: what a restart must give back."""
        st = self.guards.state
        now = self.clock.now_ms()
        _, n, notional = st.liq_window(now)
        return self.windows.to_json() | {"now_ms": now, "guards": {
            "atr_5m": st.atr_5m, "rsi": st.rsi, "obv": st.obv, "bars_seen": st.bars_seen,
            "liq_events_5m": n, "liq_notional_5m": notional}}
