"""The latest liq map on ``onchain:drift:liq_map`` feeds the liq_gap guard of the GuardMonitor."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotrader.config import load_config
from core.bus import Bus
from core.clock import EventClock
from core.guard_monitor import GuardMonitor
from core.guards import GuardReport
from core.liqmap import LIQ_MAP, LiqCluster, LiqMap
from feeds.pipeline import MarketPipeline, drive
from feeds.replay import open_recording


def _map(ts: int, prices: list[float]) -> LiqMap:
    cs = [LiqCluster(price_lo=p - 0.01, price_hi=p + 0.01, notional_usd=1e6, accounts=3) for p in prices]
    return LiqMap(updated_at=ts, slot=1, market_index=0, oracle_price=prices[0] if prices else 1.0,
                  bucket_bps=25.0, scanned=10, entries=[], clusters=cs)


def _liq_gap(r: GuardReport) -> tuple[str, float | None]:
    (c,) = [c for c in r.checks if c.name == "liq_gap"]
    return c.level, c.value


def test_liq_gap_uses_the_latest_fresh_map(btc_file: Path) -> None:
    cfg = load_config(None, environ={}, overrides={"guards.atr_period": 2, "guards.atr_bar_minutes": 1})
    bus, clock = Bus(), EventClock()
    pipeline = MarketPipeline(bus, binance_symbol=None, bybit_symbol=cfg.market.bybit_symbol,
                              okx_usdc_inst=cfg.market.okx_usdc_inst, clock=clock)
    monitor = GuardMonitor(bus, cfg.guards, clock, "replay", liq_map_max_age_ms=600_000)
    for frame in open_recording(btc_file).frames():
        drive(pipeline, (frame,))
    now = clock.now_ms()
    assert _liq_gap(monitor.check())[0] == "skipped"  # no map yet
    mid, atr = monitor.state.snapshot(now).mid, monitor.state.atr_5m
    assert mid is not None and atr is not None and atr > 0
    bus.publish(LIQ_MAP, _map(now, [mid + 0.1 * atr]))  # a cluster right at the price
    level, gap = _liq_gap(monitor.latest)  # type: ignore[arg-type]
    assert level == "warning" and gap is not None and abs(gap - 0.1 * atr) < 1e-6
    bus.publish(LIQ_MAP, _map(now, [mid + 100 * atr, mid - 50 * atr]))  # far away: passing
    level, gap = _liq_gap(monitor.check())
    assert level == "passing" and gap == pytest.approx(50 * atr)
    bus.publish(LIQ_MAP, _map(now - 600_001, [mid]))  # too old: not used
    assert _liq_gap(monitor.check())[0] == "skipped"
