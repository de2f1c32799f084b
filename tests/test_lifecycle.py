"""The pure intent lifecycle: unit checks and hypothesis properties against a scripted venue that
accepts, fails, fills, cancels and rejects at random (errors, timeouts and post-only rejections are
all "the call failed" or "the venue cancelled it" from the lifecycle's point of view)."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine_types import (
    Accepted,
    Action,
    Cancel,
    CancelAndPlace,
    CancelFailed,
    EngineConfig,
    Filled,
    Flatten,
    Flattened,
    Halt,
    Input,
    Kill,
    Modified,
    Modify,
    ModifyFailed,
    OrderChanged,
    Place,
    PlaceFailed,
    Tick,
)
from core.guards import Depth, GuardReport
from core.intents import Intent
from core.lifecycle import IntentLifecycle
from core.lifecycle_state import Phase
from core.preflight import PreflightContext, preflight
from core.venue import Fill, Order, OrderRequest, OrderStatus

T0 = 1_700_000_000_000
CFG = EngineConfig(market_convert=True)


def report(ts: int, ok: bool = True) -> GuardReport:
    return GuardReport(
        ts=ts, spread_bps=1.0, depth_10bps=Depth(bid_usd=1e6, ask_usd=1e6), funding_apr=1.0, basis_bps=1.0,
        oi_notional=1e9, liq_events_5m=0, status="passing" if ok else "breach", warnings=[],
        blocks=[] if ok else ["x"], ages_s={}, data_source="replay",
    )


def intent(side: str = "buy") -> Intent:
    if side == "buy":
        return Intent(id="i", ts=T0, symbol="SOL-PERP", side="buy", price=100.0, size=10.0, sl=99.0,
                      tps=((101.0, 0.5), (102.0, 0.3), (103.0, 0.2)), leverage=3.0, reason="t")
    return Intent(id="i", ts=T0, symbol="SOL-PERP", side="sell", price=100.0, size=10.0, sl=101.0,
                  tps=((99.0, 0.5), (98.0, 0.3), (97.0, 0.2)), leverage=3.0, reason="t")


def ctx(ts: int = T0, ok: bool = True, pnl: float | None = 0.0) -> PreflightContext:
    return PreflightContext(now_ms=ts, guard=report(ts, ok), equity_usd=10_000.0, day_pnl_pct=pnl)


def test_preflight_reasons() -> None:
    assert preflight(intent(), ctx(), CFG) == []
    assert any("guards block" in r for r in preflight(intent(), ctx(ok=False), CFG))
    assert any("daily stop" in r for r in preflight(intent(), ctx(pnl=-3.5), CFG))
    assert any("day PnL unknown" in r for r in preflight(intent(), ctx(pnl=None), CFG))
    stale = PreflightContext(now_ms=T0 + 6000, guard=report(T0), equity_usd=1e4, day_pnl_pct=0.0)
    assert any("old" in r for r in preflight(intent(), stale, CFG))
    lev = msgspec.structs.replace(intent(), leverage=9.0)
    assert any("leverage" in r for r in preflight(lev, ctx(), CFG))
    wrong = msgspec.structs.replace(intent(), sl=100.5)
    assert any("wrong side" in r for r in preflight(wrong, ctx(), CFG))
    fee_cfg = EngineConfig(priority_fee_cap=1000.0)
    hot = PreflightContext(now_ms=T0, guard=report(T0), equity_usd=1e4, day_pnl_pct=0.0, priority_fee=5000.0)
    assert any("priority fee" in r for r in preflight(intent(), hot, fee_cfg))


def test_entry_fill_places_stop_first() -> None:
    lc = IntentLifecycle(intent(), CFG)
    s = lc.start(ctx())
    assert [type(a) for a in s.actions] == [Place]
    req = s.actions[0].req  # type: ignore[union-attr]
    order = Order(order_id="1", request=req, status=OrderStatus.OPEN)
    s = lc.on(Accepted(ts=T0, tag=req.client_tag, order=order))
    fill = Fill(order_id="1", client_tag=req.client_tag, market="SOL-PERP", side="buy", price=100.0,
                size=10.0, fee=0.0, maker=True, ts=T0 + 1)
    s = lc.on(Filled(fill=fill))
    assert isinstance(s.actions[0], Place) and s.actions[0].req.client_tag == "i:sl1"
    assert s.actions[0].req.reduce_only and s.actions[0].req.trigger_price == 99.0


# --------------------------------------------------------------------------- scripted venue


@dataclass
class SimOrder:
    oid: str
    req: OrderRequest
    status: OrderStatus = OrderStatus.OPEN
    filled: float = 0.0

    def order(self) -> Order:
        return Order(order_id=self.oid, request=self.req, status=self.status, filled=self.filled)


@dataclass
class Sim:
    draw: st.DrawFn
    lc: IntentLifecycle
    ts: int = T0
    orders: dict[str, SimOrder] = field(default_factory=dict)
    pos: float = 0.0
    n: int = 0
    killed: bool = False
    placed_after_kill: int = 0
    flatten_asked: bool = False
    live_stops: list[float] = field(default_factory=list)
    crossed: bool = False  # the last tick's book is crossed or locked
    entered_while_crossed: int = 0

    def live(self) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.status == OrderStatus.OPEN]

    def respond(self, a: Action) -> list[Input]:
        d = self.draw
        if isinstance(a, Place):
            if self.killed:
                self.placed_after_kill += 1
            if self.crossed and not a.req.reduce_only:  # an entry, a replace or a market convert
                self.entered_while_crossed += 1
            if d(st.integers(0, 9)) < 2:  # error / timeout / post-only reject
                return [PlaceFailed(ts=self.ts, tag=a.req.client_tag, reason="injected")]
            self.n += 1
            o = SimOrder(str(self.n), a.req)
            self.orders[o.oid] = o
            return [Accepted(ts=self.ts, tag=a.req.client_tag, order=o.order())]
        if isinstance(a, Cancel):
            o = self.orders[a.order_id]
            if o.status != OrderStatus.OPEN:
                return [CancelFailed(ts=self.ts, tag=a.tag_, reason="order_not_open")]
            if d(st.integers(0, 9)) < 2:
                return [CancelFailed(ts=self.ts, tag=a.tag_, reason="injected")]
            o.status = OrderStatus.CANCELLED
            return [OrderChanged(ts=self.ts, order=o.order(), reason="cancelled")]
        if isinstance(a, Modify):
            o = self.orders[a.order_id]
            if o.status != OrderStatus.OPEN or d(st.integers(0, 9)) < 2:
                return [ModifyFailed(ts=self.ts, tag=a.tag_, reason="injected")]
            o.req = msgspec.structs.replace(
                o.req, size=a.size if a.size is not None else o.req.size,
                trigger_price=a.trigger_price if a.trigger_price is not None else o.req.trigger_price)
            return [Modified(ts=self.ts, tag=a.tag_, order=o.order())]
        if isinstance(a, Flatten):
            self.flatten_asked = True
            for o in self.live():
                o.status = OrderStatus.CANCELLED
            self.pos = 0.0
            return [Flattened(ts=self.ts, ok=True)]
        if isinstance(a, Halt):
            self.killed = True
            return []
        assert not isinstance(a, CancelAndPlace)
        return []

    def feed(self, inp: Input) -> None:
        todo = [self.lc.on(inp)]
        while todo:
            s = todo.pop(0)
            for a in s.actions:
                todo.extend(self.lc.on(i) for i in self.respond(a))
        self.check()

    def market_event(self) -> None:
        d = self.draw
        live = self.live()
        kind = d(st.sampled_from(["tick", "tick", "fill", "fill", "venue_cancel", "kill"]))
        self.ts += d(st.integers(0, 20_000))
        if kind == "fill" and live:
            o = d(st.sampled_from(live))
            rem = o.req.size - o.filled
            q = rem if d(st.booleans()) else rem * d(st.sampled_from([0.25, 0.5]))
            if o.req.reduce_only:
                q = min(q, abs(self.pos))
            if q <= 1e-9:
                return
            o.filled += q
            sign = 1 if o.req.side == "buy" else -1
            self.pos += sign * q
            if o.req.size - o.filled <= 1e-9:
                o.status = OrderStatus.FILLED
            px = o.req.price or o.req.trigger_price or 100.0
            self.feed(Filled(fill=Fill(order_id=o.oid, client_tag=o.req.client_tag, market="SOL-PERP",
                                       side=o.req.side, price=px, size=q, fee=0.01, maker=True, ts=self.ts)))
            self.feed(OrderChanged(ts=self.ts, order=o.order(), reason="fill"))
        elif kind == "venue_cancel" and live:
            o = d(st.sampled_from(live))
            o.status = d(st.sampled_from([OrderStatus.CANCELLED, OrderStatus.REJECTED]))
            self.feed(OrderChanged(ts=self.ts, order=o.order(), reason="venue"))
        elif kind == "kill" and d(st.integers(0, 5)) == 0:
            self.killed = True
            self.feed(Kill(ts=self.ts, reason="test"))
            for o in self.live():  # the kill switch cancels everything on the venue
                o.status = OrderStatus.CANCELLED
        else:
            mid = d(st.floats(98.0, 104.0))
            ok = d(st.integers(0, 9)) > 0
            spread = d(st.sampled_from([0.1, 0.1, 0.1, 0.1, 0.0, -0.05]))  # sometimes locked or crossed
            self.crossed = spread <= 0
            self.feed(Tick(ts=self.ts, bid=mid, ask=mid + spread, guard=report(self.ts, ok),
                           atr=d(st.floats(0.05, 2.0)), new_bar=d(st.booleans())))

    def check(self) -> None:
        lc = self.lc
        entries = lc.slots_of("entry")
        assert len(entries) <= CFG.max_attempts
        assert len(lc.slots_of("convert")) <= 1
        if lc.position > 1e-9 and lc.phase in (Phase.ENTRY, Phase.OPEN):
            assert lc.sl_slot is not None, "a position without a stop"
        if self.killed:
            assert self.placed_after_kill == 0
        assert self.entered_while_crossed == 0, "entered (or converted) into a crossed book"
        stops = [o.req.trigger_price for o in self.live() if o.req.client_tag.startswith("i:sl")]
        for sp in stops:
            assert sp is not None
            if self.live_stops:
                prev = self.live_stops[-1]
                assert (sp >= prev - 1e-9) if lc.long else (sp <= prev + 1e-9), "stop loosened"
            self.live_stops.append(sp)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(["buy", "sell"]))
def test_lifecycle_properties_under_faults(data: st.DataObject, side: str) -> None:
    lc = IntentLifecycle(intent(side), CFG)
    sim = Sim(draw=data.draw, lc=lc)
    sim.feed(Tick(ts=T0, bid=100.0, ask=100.1, guard=report(T0)))
    s = lc.start(ctx())
    todo = [s]
    while todo:
        for a in todo.pop(0).actions:
            todo.extend(lc.on(i) for i in sim.respond(a))
    sim.check()
    stop_prices = [lc.stop_price]
    for _ in range(data.draw(st.integers(5, 60))):
        sim.market_event()
        stop_prices.append(lc.stop_price)
        if lc.terminal:
            break
    ordered = sorted(stop_prices) if lc.long else sorted(stop_prices, reverse=True)
    assert stop_prices == ordered, "the stop only tightens"
    if sim.killed:
        assert lc.phase in (Phase.KILLED, Phase.DONE)
        assert not any(o.status == OrderStatus.OPEN for o in sim.orders.values()) or not lc.open_orders()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(99.5, 110.0), st.floats(0.01, 3.0)), min_size=1, max_size=30))
def test_trail_never_loosens(path: list[tuple[float, float]]) -> None:
    lc = IntentLifecycle(intent(), CFG)
    lc.phase = Phase.OPEN
    lc.be_moved = True
    lc.stop_price = 100.05
    prev = lc.stop_price
    for i, (px, atr) in enumerate(path):
        lc.on(Tick(ts=T0 + i * 300_000, bid=px, ask=px + 0.1, guard=report(T0 + i * 300_000), atr=atr,
                   new_bar=True))
        assert lc.stop_price >= prev
        assert lc.stop_price < px or lc.stop_price == prev
        prev = lc.stop_price


def test_deterministic() -> None:
    def run() -> list[str]:
        lc = IntentLifecycle(intent(), CFG)
        out = [a.__class__.__name__ for a in lc.start(ctx()).actions]
        t = T0 + 11_000
        out += [e.kind for e in lc.on(Tick(ts=t, bid=100.5, ask=100.6, guard=report(t))).events]
        return out

    assert run() == run()
