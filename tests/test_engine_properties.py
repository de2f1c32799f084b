"""Engine-level properties over random markets and injected venue faults (engine + paper venue).

The lifecycle alone is property-tested in test_lifecycle.py against a scripted venue; here the
real engine drives the real paper venue (retries, ambiguous timeouts, post-only rejections,
kill switch) and after every engine step:

* at most ``max_attempts`` entry orders per intent reach the venue (one market convert at most);
* a position is never left without a live stop for more than one engine step (unless the kill
  switch was engaged with a flatten in progress, or the engine is flattening);
* after a kill: no entry and no take-profit on the venue — only the reduce-only stop protecting an
  open position — and automation off;
* every order the venue knows is in the activity log (an event carrying its order id).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.bus import Bus, Topics
from core.clock import EventClock
from core.engine_types import EngineConfig, EngineEvent
from core.guards import GUARDS
from core.intents import INTENTS, Intent
from core.journal_port import MemoryJournal
from core.models import BookTop, Side, Trade
from core.venue import OrderType
from execution.engine import Engine, TradingState
from execution.killswitch import is_protective_stop
from execution.paper import PaperVenue
from tests.test_engine import report

T0 = 1_700_000_000_000
CFG = msgspec.convert(
    {"retry_backoff_s": 0.0, "kill_backoff_s": 0.0, "call_timeout_s": 1.0, "replace_timeout_s": 2.0,
     "entry_ttl_s": 8.0, "market_convert": True, "drift_tolerance_bps": 1.0, "pnl_check_interval_s": 0.0},
    EngineConfig,
)


async def _no_sleep(_: float) -> None:
    return None


class World:
    def __init__(self) -> None:
        self.clock = EventClock(T0)
        self.bus = Bus()
        self.venue = PaperVenue(clock=self.clock, mark_from_mid=True)
        self.events: list[EngineEvent] = []
        self.engine = Engine(self.bus, self.venue, self.clock, CFG, self.events.append, sleep=_no_sleep,
                             journal=MemoryJournal())
        self.engine.recovered = True  # nothing to reconcile: a fresh account
        self.mid = 100.0
        self.seq = 0
        self.guards_ok = True
        self.unprotected_steps = 0

    def book(self) -> None:
        self.seq += 1
        bid, ask = round(self.mid - 0.05, 2), round(self.mid + 0.05, 2)
        b = BookTop(venue="binance", symbol="SOLUSDT", timestamp=self.clock.now_ms(), update_id=self.seq,
                    bid_px=bid, bid_qty=20.0, ask_px=ask, ask_qty=20.0, spread_bps=10.0, bid_usd=1e6,
                    ask_usd=1e6)
        self.venue.on_book(b)
        self.bus.publish(Topics.BOOK, b)
        self.bus.publish(GUARDS, report(self.clock.now_ms(), self.guards_ok))

    def intent(self, iid: str, side: str) -> None:
        px = round(self.mid - 0.05, 2) if side == "buy" else round(self.mid + 0.05, 2)
        sgn = 1 if side == "buy" else -1
        it = Intent(id=iid, ts=self.clock.now_ms(), symbol="SOL-PERP",
                    side="buy" if side == "buy" else "sell", price=px, size=5.0, sl=round(px - sgn * 1.0, 2),
                    tps=((round(px + sgn * 1.0, 2), 0.5), (round(px + sgn * 2.0, 2), 0.3),
                         (round(px + sgn * 3.0, 2), 0.2)), leverage=1.0, reason="t", source="manual")
        self.bus.publish(INTENTS, it)

    async def check(self) -> None:
        e, v = self.engine, self.venue
        orders = await v.open_orders()
        pos = (await v.position("SOL-PERP")).size
        entries = Counter(o.request.client_tag.rsplit(":", 1)[0] for o in self._all_orders()
                          if o.request.client_tag.rsplit(":", 1)[-1].startswith("e"))
        assert all(n <= CFG.max_attempts for n in entries.values()), entries
        converts = Counter(o.request.client_tag.rsplit(":", 1)[0] for o in self._all_orders()
                           if o.request.client_tag.endswith(":mc"))
        assert all(n <= 1 for n in converts.values()), converts
        protected = any(o.request.type == OrderType.TRIGGER_MARKET and o.request.reduce_only for o in orders)
        if abs(pos) > 1e-9 and not protected and e.trading_state != TradingState.HALTED:
            self.unprotected_steps += 1
            trail = "\n".join(f"{ev.kind} {ev.intent_id} {ev.data}" for ev in self.events[-25:])
            assert self.unprotected_steps <= 1, f"position {pos} without a stop for 2 engine steps:\n{trail}"
        else:
            self.unprotected_steps = 0
        if e.killswitch.engaged and e.killswitch.result is not None and e.killswitch.result.confirmed:
            assert all(is_protective_stop(o, pos) for o in orders), orders
            assert not e.automation_on
        known = {str(ev.data.get("order_id")) for ev in self.events if ev.data.get("order_id")}
        for o in self._all_orders():
            assert o.order_id in known, f"venue order {o.order_id} ({o.request.client_tag}) not in the log"

    def _all_orders(self) -> list:  # type: ignore[type-arg]
        out = []
        for i in range(1, self.venue._next_id):
            o = self.venue.get_order(f"paper-{i}")
            if o is not None:
                out.append(o)
        return out


async def _run(data: st.DataObject) -> World:
    w = World()
    d = data.draw
    w.book()
    w.intent("i1", d(st.sampled_from(["buy", "sell"])))
    await w.engine.step()
    await w.check()
    for step in range(d(st.integers(10, 80))):
        w.clock.advance(w.clock.now_ms() + d(st.integers(100, 3000)))
        kinds = ["move", "move", "trade", "trade", "fault", "guards", "atr", "kill", "intent"]
        kind = d(st.sampled_from(kinds))
        if kind == "move":
            w.mid = round(w.mid + d(st.sampled_from([-0.3, -0.1, -0.05, 0.05, 0.1, 0.3])), 2)
        elif kind == "trade":
            side = d(st.sampled_from([Side.BUY, Side.SELL]))
            off = (0.05 if side == Side.BUY else -0.05) + d(st.sampled_from([0.0, 0.0, 0.1, -0.1]))
            px = round(w.mid + off, 2)
            w.venue.on_trade(Trade(venue="binance", symbol="SOLUSDT", ts=w.clock.now_ms(), price=px,
                                   qty=d(st.sampled_from([1.0, 5.0, 30.0])), side=side))
        elif kind == "fault":
            fault = d(st.sampled_from(["error", "timeout", "timeout_applied", "post_only_reject"]))
            w.venue.inject_fault(fault, d(st.integers(1, 3)))
        elif kind == "guards":
            w.guards_ok = d(st.booleans())
        elif kind == "atr":
            w.engine.on_atr(d(st.sampled_from([0.1, 0.3, 0.8])))
        elif kind == "kill" and d(st.integers(0, 4)) == 0:
            await w.engine.kill("property test", flatten=d(st.booleans()))
        elif kind == "intent" and d(st.integers(0, 3)) == 0:
            w.intent(f"i{step + 2}", d(st.sampled_from(["buy", "sell"])))
        w.book()
        await w.engine.step()
        await w.check()
    return w


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_engine_invariants_over_random_markets_and_faults(data: st.DataObject) -> None:
    w = asyncio.run(_run(data))
    if w.engine.killswitch.engaged:
        assert w.engine.trading_state == TradingState.HALTED


async def test_kill_after_random_run_leaves_nothing_open() -> None:
    w = World()
    w.book()
    w.intent("i1", "buy")
    await w.engine.step()
    w.venue.on_trade(Trade(venue="binance", symbol="SOLUSDT", ts=w.clock.now_ms(), price=99.9, qty=50.0,
                           side=Side.SELL))
    await w.engine.step()
    assert await w.venue.open_orders(), "stop and TPs after the fill"
    w.venue.inject_fault("error", 2)  # the kill retries through venue errors
    r = await w.engine.kill("test")
    pos = (await w.venue.position("SOL-PERP")).size
    left = await w.venue.open_orders()
    assert r.confirmed and pos > 0 and [o.request.client_tag for o in left] == ["i1:sl1"]
    assert all(is_protective_stop(o, pos) for o in left)
    assert not w.engine.automation_on
    await w.check()
