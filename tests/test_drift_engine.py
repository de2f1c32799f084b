"""The engine's intent lifecycle against DriftVenue + the local RPC, fills simulated by rewriting
the User account (tests/drift_sim.py)."""

from __future__ import annotations

import msgspec
import pytest

from core.bus import Bus, Topics
from core.clock import EventClock
from core.engine_types import EngineConfig, EngineEvent
from core.guards import GUARDS
from core.intents import INTENTS, Intent
from core.lifecycle_state import Phase
from core.models import BookTop
from core.venue import OrderType
from execution.engine import Engine
from tests.drift_harness import T0, drift_env
from tests.test_engine import report


async def _engine_env():  # type: ignore[no-untyped-def]
    env = await drift_env()
    clock = env.venue.clock
    assert isinstance(clock, EventClock)
    bus = Bus()
    events: list[EngineEvent] = []
    cfg = msgspec.convert(
        {"retry_backoff_s": 0.0, "kill_backoff_s": 0.0, "call_timeout_s": 2.0}, EngineConfig
    )

    async def no_sleep(_: float) -> None:
        return None

    engine = Engine(bus, env.venue, clock, cfg, events.append, sleep=no_sleep)

    def book(bid: float, ask: float) -> None:
        b = BookTop(
            venue="binance",
            symbol="SOLUSDT",
            timestamp=clock.now_ms(),
            update_id=1,
            bid_px=bid,
            bid_qty=100,
            ask_px=ask,
            ask_qty=100,
            spread_bps=(ask - bid) / ((ask + bid) / 2) * 1e4,
            bid_usd=1e6,
            ask_usd=1e6,
        )
        bus.publish(Topics.BOOK, b)
        bus.publish(GUARDS, report(clock.now_ms()))

    async def settle() -> None:
        await env.venue.wait_idle()
        await env.venue.refresh()
        await engine.step()
        await env.venue.wait_idle()
        await env.venue.refresh()
        await engine.step()

    return env, engine, bus, events, book, settle


async def test_entry_fill_places_stop_first_then_tps_then_stop_hit_cancels_tps() -> None:
    env, engine, bus, events, book, settle = await _engine_env()
    try:
        book(100.0, 100.1)
        bus.publish(
            INTENTS,
            Intent(
                id="i1",
                ts=T0,
                symbol="SOL-PERP",
                side="buy",
                price=100.0,
                size=10.0,
                sl=99.0,
                tps=((101.0, 0.5), (102.0, 0.3), (103.0, 0.2)),
                leverage=3.0,
                reason="t",
                atr=0.5,
            ),
        )
        await settle()
        kinds = [e.kind for e in events]
        assert kinds[:2] == ["intent_accepted", "order_submitted"]
        [entry] = env.sim.open_orders()
        assert entry.price == 100_000_000 and entry.base_asset_amount == 10_000_000_000 and entry.post_only

        env.sim.fill(entry.user_order_id)  # the resting buy fills on chain
        await settle()
        await settle()
        kinds = [e.kind for e in events]
        assert kinds.index("sl_placed") < kinds.index("tp_placed")
        oo = await env.venue.open_orders()
        sl = next(o for o in oo if o.request.client_tag == "i1:sl1")
        assert sl.request.type == OrderType.TRIGGER_MARKET and sl.request.reduce_only
        assert sl.request.trigger_price == pytest.approx(99.0) and sl.request.size == pytest.approx(10.0)
        assert sorted(o.request.client_tag for o in oo if o.request.client_tag.startswith("i1:tp")) == [
            "i1:tp1",
            "i1:tp2",
            "i1:tp3",
        ]
        chain_sl = next(o for o in env.sim.open_orders() if type(o.order_type).__name__ == "TriggerMarket")
        assert type(chain_sl.trigger_condition).__name__ == "Below" and chain_sl.reduce_only

        env.sim.trigger(chain_sl.user_order_id)
        env.sim.fill(chain_sl.user_order_id, price=98_950_000)
        await settle()
        await settle()
        kinds = [e.kind for e in events]
        assert "sl_hit" in kinds
        assert env.sim.open_orders() == []  # the TPs were cancelled on chain
        assert engine.lifecycles["i1"].phase == Phase.DONE and engine.lifecycles["i1"].outcome == "stopped"
        assert (await env.venue.position("SOL-PERP")).size == pytest.approx(0.0)
    finally:
        await env.close()


async def test_kill_switch_cancels_everything_on_chain() -> None:
    env, engine, bus, events, book, settle = await _engine_env()
    try:
        book(100.0, 100.1)
        bus.publish(
            INTENTS,
            Intent(
                id="i1",
                ts=T0,
                symbol="SOL-PERP",
                side="buy",
                price=100.0,
                size=10.0,
                sl=99.0,
                tps=((101.0, 1.0),),
                leverage=3.0,
                reason="t",
                atr=0.5,
            ),
        )
        await settle()
        assert len(env.sim.open_orders()) == 1
        await engine.kill("test")
        await settle()
        assert env.sim.open_orders() == []
        assert "kill_switch" in [e.kind for e in events]
    finally:
        await env.close()
