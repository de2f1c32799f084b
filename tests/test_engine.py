"""Engine scenarios on the paper venue with a scripted market (event clock, no sleeping)."""

from __future__ import annotations

import msgspec
import pytest

from core.bus import Bus, Topics
from core.clock import EventClock
from core.engine_types import ENGINE_EVENTS, EngineConfig, EngineEvent
from core.guards import GUARDS, Depth, GuardReport
from core.intents import INTENTS, Intent
from core.lifecycle_state import Phase
from core.models import BookTop, Side, Trade
from core.venue import OrderType
from execution.engine import Engine, TradingState
from execution.paper import PaperVenue

T0 = 1_700_000_000_000


def report(ts: int, ok: bool = True) -> GuardReport:
    return GuardReport(
        ts=ts, spread_bps=1.0, depth_10bps=Depth(bid_usd=1e6, ask_usd=1e6), funding_apr=1.0, basis_bps=1.0,
        oi_notional=1e9, liq_events_5m=0, status="passing" if ok else "breach", warnings=[],
        blocks=[] if ok else ["liquidations 50 > 10"], ages_s={}, data_source="replay",
    )


class Harness:
    def __init__(self, **cfg: object) -> None:
        self.clock = EventClock(T0)
        self.bus = Bus()
        self.venue = PaperVenue(clock=self.clock, mark_from_mid=True)
        self.events: list[EngineEvent] = []
        self.published: list[EngineEvent] = []
        self.bus.on(ENGINE_EVENTS, self.published.append)
        base: dict[str, object] = {"retry_backoff_s": 0.0, "kill_backoff_s": 0.0, "call_timeout_s": 1.0}
        base.update(cfg)
        self.cfg = msgspec.convert(base, EngineConfig)

        async def no_sleep(_: float) -> None:
            return None

        self.engine = Engine(self.bus, self.venue, self.clock, self.cfg, self.events.append, sleep=no_sleep)
        self.seq = 0
        self.guards_ok = True

    def at(self, seconds: float) -> None:
        self.clock.advance(T0 + int(seconds * 1000))

    def book(self, bid: float, ask: float, qty: float = 100.0) -> None:
        self.seq += 1
        b = BookTop(venue="binance", symbol="SOLUSDT", timestamp=self.clock.now_ms(), update_id=self.seq,
                    bid_px=bid, bid_qty=qty, ask_px=ask, ask_qty=qty,
                    spread_bps=(ask - bid) / ((ask + bid) / 2) * 1e4, bid_usd=1e6, ask_usd=1e6)
        self.venue.on_book(b)
        self.bus.publish(Topics.BOOK, b)
        self.bus.publish(GUARDS, report(self.clock.now_ms(), self.guards_ok))

    def trade(self, px: float, qty: float, side: Side) -> None:
        now = self.clock.now_ms()
        self.venue.on_trade(Trade(venue="binance", symbol="SOLUSDT", ts=now, price=px, qty=qty, side=side))

    def intent(self, iid: str = "i1", side: str = "buy", size: float = 10.0) -> Intent:
        if side == "buy":
            it = Intent(id=iid, ts=self.clock.now_ms(), symbol="SOL-PERP", side="buy", price=100.0, size=size,
                        sl=99.0, tps=((101.0, 0.5), (102.0, 0.3), (103.0, 0.2)), leverage=3.0, reason="t",
                        atr=0.5)
        else:
            it = Intent(id=iid, ts=self.clock.now_ms(), symbol="SOL-PERP", side="sell", price=100.1,
                        size=size, sl=101.1, tps=((99.1, 0.5), (98.1, 0.3), (97.1, 0.2)), leverage=3.0,
                        reason="t", atr=0.5)
        self.bus.publish(INTENTS, it)
        return it

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    async def open_orders(self) -> list[tuple[str, OrderType, float, float | None]]:
        return [(o.request.client_tag, o.request.type, o.request.size,
                 o.request.trigger_price or o.request.price) for o in await self.venue.open_orders()]

    async def position(self) -> float:
        return (await self.venue.position("SOL-PERP")).size


async def filled_long(h: Harness) -> None:
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    h.at(1)
    h.trade(99.9, 50, Side.SELL)  # prints through the bid: the resting buy fills
    await h.engine.step()


async def test_fill_places_stop_first_then_tp_ladder() -> None:
    h = Harness()
    await filled_long(h)
    assert await h.position() == pytest.approx(10.0)
    oo = await h.open_orders()
    assert oo[0] == ("i1:sl1", OrderType.TRIGGER_MARKET, 10.0, 99.0)
    assert [(t, s, p) for t, _, s, p in oo[1:]] == [
        ("i1:tp1", pytest.approx(5.0), 101.0), ("i1:tp2", pytest.approx(3.0), 102.0),
        ("i1:tp3", pytest.approx(2.0), 103.0)]
    k = h.kinds()
    assert k.index("sl_placed") < k.index("tp_placed")
    assert k[:2] == ["intent_accepted", "order_submitted"]
    assert h.published == h.events  # logged (on_event) and broadcast


async def test_partial_fill_protects_filled_part_then_rest() -> None:
    h = Harness()
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    h.trade(99.9, 4, Side.SELL)
    await h.engine.step()
    assert "order_partially_filled" in h.kinds()
    oo = await h.open_orders()
    assert ("i1:sl1", OrderType.TRIGGER_MARKET, 4.0, 99.0) in oo
    assert not [o for o in oo if o[0].startswith("i1:tp")]  # TPs wait for the entry to complete
    h.trade(99.9, 6, Side.SELL)
    await h.engine.step()
    oo = await h.open_orders()
    assert ("i1:sl1", OrderType.TRIGGER_MARKET, 10.0, 99.0) in oo
    assert len([o for o in oo if o[0].startswith("i1:tp")]) == 3


async def test_unfilled_drift_replace_then_fill() -> None:
    h = Harness()
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    h.at(11)
    h.book(100.5, 100.6)  # drifted 50 bps > 5
    await h.engine.step()
    assert "order_replaced" in h.kinds()
    oo = await h.open_orders()
    assert [(t, p) for t, _, _, p in oo] == [("i1:e2", 100.5)]
    h.trade(100.4, 20, Side.SELL)
    await h.engine.step()
    assert await h.position() == pytest.approx(10.0)
    assert h.engine.lifecycles["i1"].phase == Phase.OPEN


async def test_unfilled_twice_gives_up() -> None:
    h = Harness()
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    h.at(11)
    h.book(100.5, 100.6)
    await h.engine.step()
    h.at(22)
    h.book(101.0, 101.1)
    await h.engine.step()
    assert h.engine.lifecycles["i1"].attempts == 2
    assert "entry_abandoned" in h.kinds() and "market_convert" not in h.kinds()
    assert await h.open_orders() == []
    assert h.engine.lifecycles["i1"].phase == Phase.DONE


async def test_unfilled_twice_converts_when_enabled_and_guards_pass() -> None:
    h = Harness(market_convert=True)
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    h.at(11)
    h.book(100.5, 100.6)
    await h.engine.step()
    h.at(22)
    h.book(100.6, 100.7)
    await h.engine.step()
    assert "market_convert" in h.kinds()
    assert await h.position() == pytest.approx(10.0)
    assert (await h.open_orders())[0][:2] == ("i1:sl1", OrderType.TRIGGER_MARKET)


async def test_guard_breach_between_attempts_no_convert() -> None:
    h = Harness(market_convert=True)
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    h.at(11)
    h.book(100.5, 100.6)
    await h.engine.step()
    h.guards_ok = False
    h.at(22)
    h.book(101.0, 101.1)
    await h.engine.step()
    assert "market_convert" not in h.kinds()
    assert "guard_block" in h.kinds()
    assert await h.position() == 0.0
    assert await h.open_orders() == []


async def test_preflight_rejects_stale_guards_and_duplicates() -> None:
    h = Harness()
    h.book(100.0, 100.1)
    h.at(6)  # the guard report is now 6 s old
    h.intent()
    await h.engine.step()
    assert h.events[-1].kind == "intent_rejected"
    assert "old" in h.events[-1].data["reasons"][0]
    h.book(100.0, 100.1)
    h.intent()  # same id: never submitted twice
    await h.engine.step()
    assert "duplicate" in h.events[-1].data["reasons"][0]
    assert await h.open_orders() == []


async def test_preflight_risk_and_leverage() -> None:
    h = Harness()
    h.book(100.0, 100.1)
    h.intent(size=200.0)  # risk 200 USD > 50 USD, notional 20k <= 50k
    await h.engine.step()
    reasons = h.events[-1].data["reasons"]
    assert any("risk" in r for r in reasons)


async def test_sl_hit_cancels_tps() -> None:
    h = Harness()
    await filled_long(h)
    h.at(2)
    h.book(98.8, 98.9)  # mark < 99: the stop fires
    await h.engine.step()
    assert "sl_hit" in h.kinds()
    assert await h.position() == pytest.approx(0.0)
    assert await h.open_orders() == []
    assert h.engine.lifecycles["i1"].outcome == "stopped"


async def test_tp1_moves_stop_to_breakeven_plus_fees_and_trail_only_tightens() -> None:
    h = Harness()
    await filled_long(h)
    h.at(2)
    h.book(101.0, 101.1)
    h.trade(101.1, 100, Side.BUY)  # through TP1
    await h.engine.step()
    assert "tp_hit" in h.kinds()
    lc = h.engine.lifecycles["i1"]
    be = 100.0 * (1 + (3.5 + 1.0) / 1e4)  # maker rebate ignored (never below zero)
    assert lc.stop_price == pytest.approx(be)
    oo = await h.open_orders()
    sl = next(o for o in oo if o[0] == "i1:sl1")
    assert sl[2] == pytest.approx(5.0) and sl[3] == pytest.approx(be)
    stops = [lc.stop_price]
    for px, atr in [(101.5, 0.2), (101.2, 0.1), (101.8, 0.5), (101.9, 0.05)]:
        h.at(h.clock.now_s() - T0 / 1000 + 300)
        h.book(px, px + 0.1)
        h.engine.on_atr(atr)
        await h.engine.step()
        stops.append(lc.stop_price)
        sl = next(o for o in await h.open_orders() if o[0] == "i1:sl1")
        assert sl[3] == pytest.approx(lc.stop_price)
    assert stops == sorted(stops)
    assert stops[1] == pytest.approx(101.5 - 1.5 * 0.2)
    assert "trail_moved" in h.kinds()


async def test_last_tp_cancels_stop() -> None:
    h = Harness()
    await filled_long(h)
    h.at(2)
    h.book(103.0, 103.1)
    h.trade(103.2, 100, Side.BUY)
    await h.engine.step()
    assert await h.position() == pytest.approx(0.0)
    assert await h.open_orders() == []
    assert h.engine.lifecycles["i1"].phase == Phase.DONE


async def test_kill_with_flatten_leaves_nothing_and_a_second_kill_says_what_it_did() -> None:
    h = Harness()
    await filled_long(h)
    r = await h.engine.kill("operator", flatten=True)
    assert r.confirmed and r.flattened and not r.already
    assert await h.open_orders() == [] and await h.position() == 0.0  # flat: the stop went too
    assert h.engine.trading_state == TradingState.HALTED and not h.engine.automation_on
    r2 = await h.engine.kill("again")
    assert r2.already and r2.reason == "operator" and r2.cancelled == 0 and r2.confirmed
    h.at(5)
    h.book(100.0, 100.1)
    h.intent("i2")
    await h.engine.step()
    assert h.events[-1].kind == "intent_rejected"
    assert await h.open_orders() == []
    kills = [e.data for e in h.events if e.kind == "kill_switch"]
    assert [k["stage"] for k in kills] == ["engaged", "confirmed", "confirmed"]
    assert kills[1]["already"] is False and kills[2]["already"] is True and kills[2]["cancelled"] == 0


async def test_kill_cancels_entries_and_tps_and_keeps_the_stop_on_the_position() -> None:
    h = Harness()
    await filled_long(h)
    r = await h.engine.kill("operator")
    assert r.confirmed and not r.flatten and r.cancelled == 3 and not r.unprotected
    assert await h.position() == pytest.approx(10.0)
    assert await h.open_orders() == [("i1:sl1", OrderType.TRIGGER_MARKET, 10.0, 99.0)]
    assert [o["tag"] for o in r.kept] == ["i1:sl1"]
    assert sorted(str(o["tag"]) for o in r.cancelled_orders) == ["i1:tp1", "i1:tp2", "i1:tp3"]
    assert h.engine.trading_state == TradingState.HALTED and not h.engine.automation_on
    r2 = await h.engine.kill("again", cancel_all=True)  # --cancel-all: the stop goes too
    assert r2.already and r2.cancelled == 1 and r2.unprotected and await h.open_orders() == []


async def test_kill_cancels_a_resting_entry() -> None:
    h = Harness()
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    assert [o[0] for o in await h.open_orders()] == ["i1:e1"]
    r = await h.engine.kill("operator")
    assert r.confirmed and r.cancelled == 1 and r.kept == () and await h.open_orders() == []


async def test_kill_retries_through_venue_errors() -> None:
    h = Harness()
    await filled_long(h)
    h.venue.inject_fault("error", 3)
    r = await h.engine.kill("operator")
    assert r.confirmed and r.attempts >= 2
    assert [o[0] for o in await h.open_orders()] == ["i1:sl1"]


async def test_stop_cannot_be_placed_flattens_and_halts() -> None:
    h = Harness(call_retries=2)
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    h.venue.inject_fault("error", 1)  # the stop placement fails (non-retryable)
    h.trade(99.9, 50, Side.SELL)
    await h.engine.step()
    assert "flatten" in h.kinds()
    assert await h.position() == pytest.approx(0.0)
    assert await h.open_orders() == []
    assert h.engine.trading_state == TradingState.HALTED


async def test_timeout_after_place_is_not_resubmitted() -> None:
    h = Harness()
    h.book(100.0, 100.1)
    h.venue.inject_fault("timeout_applied", 1)
    h.intent()
    await h.engine.step()
    oo = await h.open_orders()
    assert [o[0] for o in oo] == ["i1:e1"]


async def test_post_only_reject_counts_as_attempt() -> None:
    h = Harness()
    h.book(100.0, 100.1)
    h.venue.inject_fault("post_only_reject", 5)
    h.intent()
    await h.engine.step()
    lc = h.engine.lifecycles["i1"]
    assert lc.attempts == 2 and lc.phase == Phase.DONE
    assert await h.open_orders() == []


async def test_daily_stop_kills() -> None:
    h = Harness(daily_stop_pct=0.05, pnl_check_interval_s=0.0)
    await filled_long(h)  # 10 SOL long at 100; 0.05% of 10k = 5 USD
    h.at(3)
    h.book(99.4, 99.5)  # unrealized -5.5 USD
    await h.engine.step()
    ks = [e for e in h.events if e.kind == "kill_switch"]
    assert ks and "daily stop" in ks[0].data["reason"]
    assert [o[0] for o in await h.open_orders()] == ["i1:sl1"]  # TPs gone, the stop protects the position


async def test_reducing_rejects_intents_keeps_exits() -> None:
    h = Harness()
    await filled_long(h)
    h.engine.set_trading_state(TradingState.REDUCING, "operator")
    h.intent("i2")
    await h.engine.step()
    assert h.events[-1].kind == "intent_rejected"
    assert len(await h.open_orders()) == 4


async def test_no_convert_when_price_left_the_ladder() -> None:
    h = Harness(market_convert=True)
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    h.at(11)
    h.book(100.5, 100.6)
    await h.engine.step()
    h.at(22)
    h.book(101.2, 101.3)  # above TP1: entering now would take profit at once
    await h.engine.step()
    assert "market_convert" not in h.kinds()
    assert await h.position() == 0.0 and await h.open_orders() == []
