"""Equity from the venue (issue 14, item 3): on Drift the engine sizes, caps leverage and runs the
daily stop on the account's total collateral, refreshed each step (an unreadable equity refuses
new intents); the start-of-day equity is persisted per UTC day and kept across a restart."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from autotrader.trading import DAY_KEY
from core.bus import Bus, Topics
from core.clock import EventClock
from core.engine_types import EngineConfig, EngineEvent
from core.guards import GUARDS
from core.intents import INTENTS, Intent
from core.models import BookTop
from execution.engine import Engine, TradingState
from tests.drift_harness import DriftEnv, drift_env
from tests.stack_harness import StackHarness
from tests.test_engine import T0, report

DAY_MS = 86_400_000


async def engine_on_drift(usdc: float) -> tuple[DriftEnv, Engine, Bus, list[EngineEvent]]:
    """The engine over the Drift venue, wired as :class:`autotrader.trading.TradingStack` wires it
    (``equity=venue.equity``, ``equity_from_venue=True``); the account holds ``usdc`` only."""
    env = await drift_env(start=False)
    env.sim.set_balance(0, usdc)
    await env.venue.start(poll=False)
    clock = env.venue.clock
    assert isinstance(clock, EventClock)
    bus = Bus()
    events: list[EngineEvent] = []
    cfg = msgspec.convert(
        {"retry_backoff_s": 0.0, "kill_backoff_s": 0.0, "call_timeout_s": 2.0, "pnl_check_interval_s": 0.0,
         "equity_usd": 123_456.0},  # the paper figure: never used on Drift
        EngineConfig,
    )

    async def no_sleep(_: float) -> None:
        return None

    engine = Engine(bus, env.venue, clock, cfg, events.append, sleep=no_sleep, equity=env.venue.equity,
                    equity_from_venue=True)
    b = BookTop(venue="binance", symbol="SOLUSDT", timestamp=clock.now_ms(), update_id=1, bid_px=100.0,
                bid_qty=100, ask_px=100.1, ask_qty=100, spread_bps=10.0, bid_usd=1e6, ask_usd=1e6)
    bus.publish(Topics.BOOK, b)
    bus.publish(GUARDS, report(clock.now_ms()))
    return env, engine, bus, events


def intent(iid: str, size: float, ts: int) -> Intent:
    return Intent(id=iid, ts=ts, symbol="SOL-PERP", side="buy", price=100.0, size=size, sl=99.0,
                  tps=((101.0, 1.0),), leverage=1.0, reason="t", atr=0.5, source="manual")


def verdict(events: list[EngineEvent], iid: str) -> EngineEvent:
    return next(e for e in events if e.intent_id == iid and e.kind in ("intent_accepted", "intent_rejected"))


async def test_the_leverage_cap_and_sizing_use_the_accounts_total_collateral() -> None:
    env, engine, bus, events = await engine_on_drift(usdc=150.0)
    try:
        await engine.step()
        assert engine.equity_now == pytest.approx(150.0)
        bus.publish(INTENTS, intent("i1", 10.0, engine.clock.now_ms()))  # 1 000 USD on 150: 6.7x
        await engine.step()
        ev = verdict(events, "i1")
        assert ev.kind == "intent_rejected"
        assert any("leverage 6.67x > cap 5x" in r for r in ev.data["reasons"]), ev.data
        assert any("of equity (0.75 USD)" in r for r in ev.data["reasons"]), "risk budget on 150 USD"
        # a deposit: the next step reads it, the same order now fits
        env.sim.set_balance(0, 10_000.0)
        await env.venue.refresh()
        await engine.step()
        assert engine.equity_now == pytest.approx(10_000.0)
        bus.publish(INTENTS, intent("i2", 10.0, engine.clock.now_ms()))
        await engine.step()
        assert verdict(events, "i2").kind == "intent_accepted"
    finally:
        await env.venue.wait_idle()
        await env.close()


async def test_an_unreadable_equity_refuses_new_intents() -> None:
    env, engine, bus, events = await engine_on_drift(usdc=10_000.0)
    try:
        del env.rpc.accounts[str(env.sim.perps[0].oracle)]  # an oracle the account needs is gone
        await env.venue.refresh()
        await engine.step()
        assert engine.equity_now is None
        bus.publish(INTENTS, intent("i1", 1.0, engine.clock.now_ms()))
        await engine.step()
        ev = verdict(events, "i1")
        assert ev.kind == "intent_rejected" and any("equity unknown" in r for r in ev.data["reasons"])
    finally:
        await env.close()


async def test_the_daily_stop_runs_on_the_venues_equity() -> None:
    env, engine, _bus, events = await engine_on_drift(usdc=10_000.0)
    try:
        await engine.step()  # the day's baseline: 10 000
        assert engine.start_equity == pytest.approx(10_000.0)
        env.sim.set_balance(0, 9_750.0)  # -2.5 %: above the 3 % stop
        await env.venue.refresh()
        await engine.step()
        assert engine.day_pnl == pytest.approx(-2.5) and engine.trading_state == TradingState.ACTIVE
        env.sim.set_balance(0, 9_650.0)  # -3.5 %
        await env.venue.refresh()
        await engine.step()
        kills = [e for e in events if e.kind == "kill_switch"]
        assert kills and "daily stop" in str(kills[0].data.get("reason"))
        assert engine.trading_state == TradingState.HALTED
    finally:
        await env.close()


async def test_the_start_of_day_equity_is_persisted_per_utc_day(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    day0 = T0 // DAY_MS
    h = StackHarness(state, **{"paper.equity_usd": 10_000.0})
    try:
        await h.filled_long()
        assert h.stack.store.get_json(DAY_KEY) == {"day": day0, "equity": pytest.approx(10_000.0)}
    finally:
        h.close()
    # a restart the same day (the paper account comes back with its position; the price moved):
    # the day's baseline is the recorded one, not the equity of the moment
    h = StackHarness(state, t0=T0 + 60_000, **{"paper.equity_usd": 8_000.0})
    try:
        h.book(100.5, 100.6)
        await h.engine.step()
        now_eq = h.stack.equity()
        assert now_eq > 10_001.0
        assert h.engine.start_equity == pytest.approx(10_000.0)
        # the next UTC day: the baseline is taken again and recorded
        h.at_ms((day0 + 1) * DAY_MS + 1_000)
        h.book(100.5, 100.6)
        await h.engine.step()
        assert h.engine.start_equity == pytest.approx(h.stack.equity()) and h.engine.start_equity > 10_001.0
        assert h.stack.store.get_json(DAY_KEY) == {"day": day0 + 1, "equity": pytest.approx(h.stack.equity())}
    finally:
        h.close()
