"""The engine on DriftVenue against the misbehaving local RPC, and the invariant every fault test
checks: one intended order, at most one landed, the app's state equals the chain's, nothing left
unknown once the faults stopped. Not a test module."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

import msgspec

from core.bus import Bus, Topics
from core.engine_types import EngineConfig, EngineEvent
from core.guards import GUARDS
from core.intents import INTENTS, Intent
from core.models import BookTop
from core.venue import OrderStatus
from execution.engine import Engine
from execution.solana_send.sender import SendConfig
from tests.drift_harness import FAST, T0, DriftEnv, drift_env
from tests.test_engine import report

ENTRY = "i1:e1"


@dataclass
class EngineEnv:
    env: DriftEnv
    engine: Engine
    bus: Bus
    events: list[EngineEvent]

    def book(self, bid: float = 149.9, ask: float = 150.1) -> None:
        clock = self.env.venue.clock
        self.bus.publish(
            Topics.BOOK,
            BookTop(
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
            ),
        )
        self.bus.publish(GUARDS, report(clock.now_ms()))

    def intent(self, iid: str = "i1", price: float = 150.0, size: float = 2.0) -> None:
        self.book()
        self.bus.publish(
            INTENTS,
            Intent(
                id=iid,
                ts=T0,
                symbol="SOL-PERP",
                side="buy",
                price=price,
                size=size,
                sl=145.0,
                tps=((155.0, 1.0),),
                leverage=1.0,
                reason="t",
                atr=0.5,
                source="manual",
            ),
        )

    async def step(self) -> None:
        self.book()
        await self.engine.step()

    async def until(self, what: str, cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        """Engine steps until ``cond()`` holds (waits for a condition, never a fixed sleep as proof)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not cond():
            if loop.time() > end:
                raise AssertionError(
                    f"timed out waiting for {what}; events: "
                    f"{[(e.kind, e.data.get('reason')) for e in self.events[-12:]]}"
                )
            await self.step()
            await asyncio.sleep(0.01)
        await self.step()  # the engine takes in what the venue reported meanwhile

    def settled(self) -> bool:
        v = self.env.venue
        return not v.sender.pending() and not self.engine.unknown and not v.unknown_orders()

    async def close(self) -> None:
        self.engine.close()
        await self.env.close()


async def engine_env(cfg: SendConfig = FAST, **engine: object) -> EngineEnv:
    env = await drift_env(cfg)
    bus = Bus()
    events: list[EngineEvent] = []
    ecfg = msgspec.convert(
        {"retry_backoff_s": 0.0, "kill_backoff_s": 0.0, "call_timeout_s": 2.0, **engine}, EngineConfig
    )
    eng = Engine(
        bus, env.venue, env.venue.clock, ecfg, events.append, equity=env.venue.equity, equity_from_venue=True
    )
    return EngineEnv(env, eng, bus, events)


def landed_places(env: DriftEnv) -> Counter[int]:
    """How many landed (successful) transactions placed an order with each user order id."""
    raw = {t.signature: t.raw for t in env.rpc.sent}
    out: Counter[int] = Counter()
    for sig, lt in env.rpc.landed.items():
        if lt.err is not None:
            continue
        for name, data, _ in env.sim.parse(raw[sig])[1]:
            if name == "place_perp_order":
                out[data.params.user_order_id] += 1
            elif name == "place_orders":
                for p in data.params:
                    out[p.user_order_id] += 1
    return out


def check_invariant(ee: EngineEnv, tags: tuple[str, ...] = (ENTRY,)) -> None:
    """At most one landing per intended order; the venue, the engine and the chain agree."""
    env, engine = ee.env, ee.engine
    landed = landed_places(env)
    assert all(n <= 1 for n in landed.values()), f"an order landed twice: {landed}"
    assert ee.settled(), "nothing is left unknown once the faults stopped"
    for tag in tags:
        t = env.venue._by_tag.get(tag)
        assert t is not None, tag
        on_chain = landed[t.uid] == 1
        assert (t.status == OrderStatus.REJECTED) == (not on_chain), (tag, t.status, landed)
        lc = engine.lifecycles[tag.split(":")[0]]
        slot = lc.slots[tag]
        if not on_chain:
            assert slot.state == "done" and slot.filled == 0
    pos = env.sim.user.perp_positions
    chain = sum(p.base_asset_amount for p in pos if p.market_index == 0) / 1e9
    held = sum((lc.position if lc.long else -lc.position) for lc in engine.lifecycles.values())
    assert abs(chain - held) < 1e-9, f"chain position {chain} but the engine holds {held}"
    stops = [o for o in env.sim.open_orders() if type(o.order_type).__name__ == "TriggerMarket"]
    if abs(chain) > 1e-9:
        assert sum(o.base_asset_amount for o in stops) / 1e9 == abs(chain), "the stop covers the position"
