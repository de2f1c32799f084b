"""The paper venue on scripted markets: fills, queue, post-only modes, triggers, reduce-only,
order-id limits, modify, atomic cancel-and-place, venue states, faults, funding, and a property
test over random market/order sequences."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.clock import EventClock
from core.models import BookTop, Funding, Side, Trade
from core.venue import (
    Fill,
    FillEvent,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PostOnly,
    TriggerCondition,
    Venue,
    VenueError,
    VenueState,
    VenueStatus,
)
from execution.paper import PaperVenue, PaperVenueError

MKT = "SOL-PERP"


def book(bid: float, bq: float, ask: float, aq: float, ts: int = 0) -> BookTop:
    mid = (bid + ask) / 2
    return BookTop("binance", "SOLUSDT", ts, 0, bid, bq, ask, aq, (ask - bid) / mid * 1e4, 0.0, 0.0)


def trade(px: float, qty: float, side: Side, ts: int = 0) -> Trade:
    return Trade("binance", "SOLUSDT", ts, px, qty, side)


def lim(side: Any, size: float, price: float, **kw: Any) -> OrderRequest:
    return OrderRequest(market=MKT, side=side, type=OrderType.LIMIT, size=size, price=price, **kw)


def mkt(side: Any, size: float, **kw: Any) -> OrderRequest:
    return OrderRequest(market=MKT, side=side, type=OrderType.MARKET, size=size, **kw)


def trig(
    side: Any,
    size: float,
    trigger: float,
    cond: TriggerCondition,
    price: float | None = None,
    reduce_only: bool = True,
) -> OrderRequest:
    typ = OrderType.TRIGGER_LIMIT if price is not None else OrderType.TRIGGER_MARKET
    return OrderRequest(
        market=MKT,
        side=side,
        type=typ,
        size=size,
        price=price,
        trigger_price=trigger,
        trigger_condition=cond,
        reduce_only=reduce_only,
    )


def make(**kw: Any) -> PaperVenue:
    return PaperVenue(clock=EventClock(0), **kw)


def fills_of(events: list[Any]) -> list[Fill]:
    return [e.fill for e in events if isinstance(e, FillEvent)]


def reasons(events: list[Any]) -> list[str]:
    return [e.reason for e in events if isinstance(e, OrderUpdate)]


async def go_long(v: PaperVenue, size: float = 1.0) -> None:
    await v.place(mkt("buy", size))
    v.events()


def test_is_a_venue() -> None:
    v: Venue = make()
    assert v.name == "paper"


# ------------------------------------------------------------------ resting limits and queue


async def test_join_touch_fills_only_after_queue_ahead_traded() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    o = await v.place(lim("buy", 2.0, 100.0, client_tag="e1"))
    assert o.status == OrderStatus.OPEN and o.order_id == "paper-1"
    assert reasons(v.events()) == ["accepted"]
    v.on_trade(trade(100.0, 4.0, Side.SELL, ts=1))  # 4 of the 5 ahead
    assert fills_of(v.events()) == []
    v.on_trade(trade(100.0, 3.0, Side.SELL, ts=2))  # 1 more ahead, 2 beyond → fills 2
    ev = v.events()
    [f] = fills_of(ev)
    assert (f.price, f.size, f.maker, f.client_tag, f.ts) == (100.0, 2.0, True, "e1", 2)
    assert f.fee == pytest.approx(100.0 * 2.0 * -0.25 / 1e4)
    assert reasons(ev) == ["filled"]
    assert (await v.position(MKT)).size == 2.0
    assert await v.open_orders() == []


async def test_trade_through_partially_fills_up_to_trade_qty() -> None:
    v = make()
    v.on_book(book(100.0, 50.0, 100.05, 5.0))
    o = await v.place(lim("buy", 3.0, 100.0))
    v.events()
    v.on_trade(trade(99.99, 1.0, Side.SELL))
    ev = v.events()
    assert [f.size for f in fills_of(ev)] == [1.0] and fills_of(ev)[0].price == 100.0
    [open_o] = await v.open_orders()
    assert open_o.order_id == o.order_id and open_o.filled == 1.0 and open_o.remaining == 2.0
    assert reasons(ev) == ["partial_fill"]
    v.on_trade(trade(99.98, 5.0, Side.SELL))
    assert sum(f.size for f in fills_of(v.events())) == 2.0
    assert (await v.position(MKT)).size == 3.0


async def test_buy_aggressor_at_our_bid_does_not_fill() -> None:
    v = make()
    v.on_book(book(100.0, 0.0, 100.05, 5.0))
    await v.place(lim("buy", 1.0, 100.0))
    v.on_trade(trade(100.0, 10.0, Side.BUY))
    assert fills_of(v.events()) == []


async def test_queue_capped_by_book_and_cleared_when_level_gone() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    await v.place(lim("buy", 2.0, 100.0))
    v.on_book(book(100.0, 1.0, 100.05, 5.0, ts=1))  # 4 cancelled ahead of us
    v.on_trade(trade(100.0, 2.0, Side.SELL, ts=2))
    assert [f.size for f in fills_of(v.events())] == [1.0]
    v.on_book(book(99.99, 7.0, 100.05, 5.0, ts=3))  # our level vanished from the book
    v.on_trade(trade(100.0, 0.5, Side.SELL, ts=4))
    assert [f.size for f in fills_of(v.events())] == [0.5]


async def test_behind_touch_uses_conservative_queue_and_inside_spread_has_none() -> None:
    v = make(queue_behind_factor=2.0)
    v.on_book(book(100.0, 3.0, 100.05, 5.0))
    behind = await v.place(lim("buy", 1.0, 99.9))
    inside = await v.place(lim("buy", 1.0, 100.02))
    v.on_trade(trade(100.02, 0.4, Side.SELL))
    assert [(f.order_id, f.size) for f in fills_of(v.events())] == [(inside.order_id, 0.4)]
    v.on_trade(trade(99.9, 6.0, Side.SELL))  # 2 × 3 ahead: nothing yet
    assert [f.order_id for f in fills_of(v.events())] == [inside.order_id]  # through 100.02
    v.on_trade(trade(99.9, 0.5, Side.SELL))
    assert [(f.order_id, f.size) for f in fills_of(v.events())] == [(behind.order_id, 0.5)]


async def test_book_crossing_resting_order_fills_at_its_price() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    await v.place(lim("buy", 1.0, 100.0))
    v.on_book(book(99.4, 1.0, 99.5, 0.6, ts=5))
    [f] = fills_of(v.events())
    assert (f.price, f.size, f.maker) == (100.0, 0.6, True)


async def test_one_trade_is_shared_by_paper_orders_in_price_time_priority() -> None:
    v = make()
    v.on_book(book(100.0, 0.0, 100.05, 5.0))
    a = await v.place(lim("buy", 1.0, 100.0))
    b = await v.place(lim("buy", 1.0, 100.01))
    v.on_trade(trade(99.99, 1.5, Side.SELL))
    assert [(f.order_id, f.size) for f in fills_of(v.events())] == [(b.order_id, 1.0), (a.order_id, 0.5)]


# ------------------------------------------------------------------ post-only and takers


async def test_post_only_must_rejects_when_crossing() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    with pytest.raises(PaperVenueError) as ei:
        await v.place(lim("buy", 1.0, 100.05, post_only=PostOnly.MUST))
    assert ei.value.reason == "post_only_would_cross" and not ei.value.retryable
    assert await v.open_orders() == [] and v.events() == []
    ok = await v.place(lim("buy", 1.0, 100.04, post_only=PostOnly.MUST))
    assert ok.status == OrderStatus.OPEN


async def test_post_only_try_skips_when_crossing() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    o = await v.place(lim("sell", 1.0, 99.0, post_only=PostOnly.TRY))
    assert o.status == OrderStatus.CANCELLED and o.filled == 0.0
    assert reasons(v.events()) == ["post_only_would_cross"]
    assert await v.open_orders() == [] and await v.fills() == []


async def test_post_only_slide_reprices_one_tick_behind_the_touch() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    b = await v.place(lim("buy", 1.0, 100.2, post_only=PostOnly.SLIDE))
    s = await v.place(lim("sell", 1.0, 99.0, post_only=PostOnly.SLIDE))
    assert b.request.price == pytest.approx(100.04) and b.status == OrderStatus.OPEN
    assert s.request.price == pytest.approx(100.01)
    not_crossing = await v.place(lim("buy", 1.0, 99.5, post_only=PostOnly.SLIDE))
    assert not_crossing.request.price == 99.5
    assert await v.fills() == []


async def test_market_order_walks_the_book() -> None:
    v = make()
    v.on_book(book(99.99, 4.0, 100.0, 1.0))
    o = await v.place(mkt("buy", 2.5))
    assert o.status == OrderStatus.FILLED and o.filled == 2.5
    fs = fills_of(v.events())
    assert [(f.price, f.size) for f in fs] == [(100.0, 1.0), (100.01, 1.0), (100.02, 0.5)]
    assert all(not f.maker for f in fs)
    assert sum(f.fee for f in fs) == pytest.approx(sum(f.price * f.size for f in fs) * 3.5e-4)
    assert o.avg_price == pytest.approx((100.0 + 100.01 + 0.5 * 100.02) / 2.5)


async def test_market_price_cap_cancels_the_rest_and_needs_market_data() -> None:
    v = make(slippage_ticks=2.0)
    with pytest.raises(PaperVenueError, match="no_market_data"):
        await v.place(mkt("sell", 1.0))
    v.on_book(book(100.0, 1.0, 100.05, 1.0))
    o = await v.place(mkt("sell", 3.0, price=99.98))
    assert o.status == OrderStatus.CANCELLED and o.filled == 2.0
    assert reasons(v.events())[-1] == "price_limit"


async def test_walk_stops_at_the_end_of_the_modelled_book() -> None:
    v = make(max_walk_levels=3)
    v.on_book(book(99.99, 1.0, 100.0, 1e-300))  # a dust touch must not walk forever
    o = await v.place(mkt("buy", 1.0))
    assert o.status == OrderStatus.CANCELLED and o.filled < 1e-9
    assert reasons(v.events())[-1] == "no_liquidity"
    v.on_book(book(99.99, 1.0, 100.0, 1.0))
    o = await v.place(mkt("buy", 5.0))
    assert o.filled == 3.0 and [f.price for f in await v.fills()] == [100.0, 100.01, 100.02]


async def test_crossing_limit_takes_then_rests() -> None:
    v = make()
    v.on_book(book(99.99, 1.0, 100.0, 1.0))
    o = await v.place(lim("buy", 3.0, 100.0))
    assert o.filled == 1.0 and o.status == OrderStatus.OPEN
    fs = await v.fills()
    assert len(fs) == 1 and not fs[0].maker
    v.on_trade(trade(100.0, 0.5, Side.SELL))  # rests as the new best bid: nobody ahead
    assert [f.size for f in fills_of(v.events())][-1] == 0.5


# ------------------------------------------------------------------ triggers and reduce-only


async def test_stop_fires_on_mark_crossing_below() -> None:
    v = make()
    v.on_book(book(99.99, 5.0, 100.0, 5.0))
    await go_long(v, 1.0)
    stop = await v.place(trig("sell", 1.0, 95.0, TriggerCondition.BELOW))
    assert stop.status == OrderStatus.OPEN
    assert reasons(v.events()) == ["accepted"]
    v.on_mark(96.0, 1)
    v.on_mark(95.0, 2)  # at the trigger: not through it
    assert v.events() == []
    v.on_book(book(94.9, 5.0, 94.95, 5.0, ts=3))
    v.on_mark(94.92, 3)
    ev = v.events()
    assert reasons(ev) == ["triggered", "filled"]
    [f] = fills_of(ev)
    assert (f.price, f.size, f.maker) == (94.9, 1.0, False)
    assert (await v.position(MKT)).size == 0.0


async def test_trigger_market_above_and_immediate_when_already_through() -> None:
    v = make()
    v.on_book(book(99.99, 5.0, 100.0, 5.0))
    await v.place(mkt("sell", 2.0))
    v.on_mark(100.0, 1)
    await v.place(trig("buy", 2.0, 101.0, TriggerCondition.ABOVE))
    v.on_mark(101.5, 2)
    assert (await v.position(MKT)).size == 0.0
    await v.place(mkt("sell", 1.0))
    o = await v.place(trig("buy", 1.0, 100.5, TriggerCondition.ABOVE))  # mark 101.5 already above
    assert o.status == OrderStatus.FILLED


async def test_trigger_limit_becomes_a_working_limit() -> None:
    v = make()
    v.on_book(book(99.99, 5.0, 100.0, 5.0))
    await go_long(v, 2.0)
    tp = await v.place(trig("sell", 2.0, 105.0, TriggerCondition.ABOVE, price=105.0))
    v.events()
    v.on_mark(105.01, 1)
    [working] = await v.open_orders()
    assert working.order_id == tp.order_id and working.status == OrderStatus.TRIGGERED
    assert reasons(v.events()) == ["triggered"]
    v.on_trade(trade(105.02, 1.5, Side.BUY, ts=2))
    assert [(f.price, f.size, f.maker) for f in fills_of(v.events())] == [(105.0, 1.5, True)]
    # a trigger limit fired through the book takes
    v2 = make()
    v2.on_book(book(99.99, 5.0, 100.0, 5.0))
    await go_long(v2, 1.0)
    await v2.place(trig("sell", 1.0, 99.0, TriggerCondition.BELOW, price=98.0))
    v2.on_mark(98.5, 1)
    assert [(f.price, f.maker) for f in fills_of(v2.events())] == [(99.99, False)]


async def test_reduce_only_rejects_when_flat_or_increasing_and_clips() -> None:
    v = make()
    v.on_book(book(99.99, 5.0, 100.0, 5.0))
    with pytest.raises(PaperVenueError, match="reduce_only"):
        await v.place(lim("sell", 1.0, 101.0, reduce_only=True))
    await go_long(v, 1.0)
    with pytest.raises(PaperVenueError, match="reduce_only"):
        await v.place(lim("buy", 1.0, 99.0, reduce_only=True))
    o = await v.place(lim("sell", 5.0, 101.0, reduce_only=True))
    assert o.request.size == 1.0


async def test_reduce_only_clipped_at_fill_time_never_flips() -> None:
    v = make()
    v.on_book(book(99.99, 5.0, 100.0, 5.0))
    await go_long(v, 1.0)
    a = await v.place(lim("sell", 1.0, 101.0, reduce_only=True))
    b = await v.place(lim("sell", 1.0, 101.0, reduce_only=True))
    v.events()
    v.on_trade(trade(101.5, 10.0, Side.BUY, ts=1))  # fills a; b then finds nothing to reduce
    ev = v.events()
    assert [f.order_id for f in fills_of(ev)] == [a.order_id]
    assert [(e.order.order_id, e.reason) for e in ev if isinstance(e, OrderUpdate)] == [
        (a.order_id, "filled"),
        (b.order_id, "reduce_only"),
    ]
    assert (await v.position(MKT)).size == 0.0
    assert await v.open_orders() == []
    # a stop whose position went away is cancelled when it fires
    await go_long(v, 1.0)
    await v.place(trig("sell", 1.0, 90.0, TriggerCondition.BELOW))
    await v.place(mkt("sell", 1.0))
    v.events()
    v.on_mark(89.0, 3)
    assert reasons(v.events()) == ["triggered", "reduce_only"]
    assert (await v.position(MKT)).size == 0.0


# ------------------------------------------------------------------ order ids, modify, cancel


async def test_at_most_255_live_orders_and_unique_user_ids() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    ids = [(await v.place(lim("buy", 1.0, 90.0, user_order_id=i))).order_id for i in range(1, 256)]
    assert len(await v.open_orders()) == 255
    with pytest.raises(PaperVenueError, match="too_many_orders"):
        await v.place(lim("buy", 1.0, 90.0))
    await v.cancel(ids[0])
    with pytest.raises(PaperVenueError, match="duplicate_user_order_id"):
        await v.place(lim("buy", 1.0, 90.0, user_order_id=2))
    o = await v.place(lim("buy", 1.0, 90.0, user_order_id=1))
    assert o.order_id == "paper-256"
    with pytest.raises(ValueError):
        lim("buy", 1.0, 90.0, user_order_id=256)


async def test_modify_price_size_and_trigger() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    o = await v.place(lim("buy", 2.0, 99.0, post_only=PostOnly.MUST))
    v.events()
    m = await v.modify(o.order_id, price=100.0)  # joins the touch: 5 ahead
    assert m.order_id == o.order_id and m.request.price == 100.0 and reasons(v.events()) == ["modified"]
    with pytest.raises(PaperVenueError, match="post_only_would_cross"):
        await v.modify(o.order_id, price=100.05)
    [still] = await v.open_orders()
    assert still.request.price == 100.0
    v.on_trade(trade(100.0, 5.5, Side.SELL))
    assert [f.size for f in fills_of(v.events())] == [0.5]
    await v.modify(o.order_id, size=1.0)  # smaller: keeps its place
    v.on_trade(trade(100.0, 0.5, Side.SELL))
    assert (await v.open_orders()) == [] and (await v.position(MKT)).size == 1.0
    with pytest.raises(PaperVenueError, match="order_not_open"):
        await v.modify(o.order_id, size=3.0)
    p = await v.place(lim("buy", 2.0, 99.0))
    v.on_trade(trade(98.0, 1.0, Side.SELL))
    with pytest.raises(PaperVenueError, match="invalid"):
        await v.modify(p.order_id, size=1.0)  # not above filled
    stop = await v.place(trig("sell", 1.0, 90.0, TriggerCondition.BELOW))
    v.on_mark(95.0, 1)
    v.events()
    await v.modify(stop.order_id, trigger_price=96.0)  # now through: fires
    assert reasons(v.events()) == ["modified", "triggered", "filled"]


async def test_modify_try_post_only_crossing_cancels() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    o = await v.place(lim("sell", 1.0, 101.0, post_only=PostOnly.TRY))
    m = await v.modify(o.order_id, price=100.0)
    assert m.status == OrderStatus.CANCELLED and await v.open_orders() == []


async def test_cancel_and_place_is_all_or_nothing() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    a = await v.place(lim("buy", 1.0, 99.0, user_order_id=7))
    v.events()
    bad = [lim("buy", 1.0, 99.5, user_order_id=7), lim("sell", 1.0, 101.0, reduce_only=True)]
    with pytest.raises(VenueError):
        await v.cancel_and_place([a.order_id], bad)
    assert [o.order_id for o in await v.open_orders()] == [a.order_id]
    assert v.events() == []
    with pytest.raises(PaperVenueError, match="unknown_order"):
        await v.cancel_and_place([a.order_id, "paper-99"], [lim("buy", 1.0, 99.5)])
    assert [o.order_id for o in await v.open_orders()] == [a.order_id]
    out = await v.cancel_and_place([a.order_id], [lim("buy", 1.0, 99.5, user_order_id=7), mkt("buy", 1.0)])
    assert out[0].order_id == "paper-2" and out[0].status == OrderStatus.OPEN  # ids not consumed by failures
    assert out[1].status == OrderStatus.FILLED
    assert [o.order_id for o in await v.open_orders()] == ["paper-2"]
    assert reasons(v.events())[0] == "cancel_and_place"


async def test_cancel_and_cancel_all() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    a = await v.place(lim("buy", 1.0, 99.0))
    await v.place(lim("sell", 1.0, 101.0))
    await v.place(OrderRequest(market="BTC-PERP", side="buy", type=OrderType.LIMIT, size=1, price=1.0))
    await v.cancel(a.order_id)
    with pytest.raises(PaperVenueError, match="order_not_open"):
        await v.cancel(a.order_id)
    assert await v.cancel_all(MKT) == 1
    assert await v.cancel_all() == 1
    assert await v.open_orders() == []


# ------------------------------------------------------------------ venue state and faults


async def test_venue_states() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    a = await v.place(lim("buy", 1.0, 99.0))
    v.set_status(VenueState.PAUSED, "exchange paused")
    assert isinstance(v.events()[-1], VenueStatus)
    assert (await v.status()).state == VenueState.PAUSED
    with pytest.raises(PaperVenueError, match="venue_paused"):
        await v.place(lim("buy", 1.0, 99.0))
    with pytest.raises(PaperVenueError, match="venue_paused"):
        await v.modify(a.order_id, price=98.0)
    await v.cancel(a.order_id)  # cancels allowed while paused
    v.set_status(VenueState.REDUCE_ONLY)
    with pytest.raises(PaperVenueError, match="venue_reduce_only"):
        await v.place(mkt("buy", 1.0))
    v.set_status(VenueState.ACTIVE)
    await go_long(v)
    v.set_status(VenueState.REDUCE_ONLY)
    assert (await v.place(mkt("sell", 1.0, reduce_only=True))).status == OrderStatus.FILLED
    v.set_status(VenueState.DOWN, "unreachable")
    with pytest.raises(PaperVenueError) as ei:
        await v.cancel_all()
    assert ei.value.retryable
    with pytest.raises(VenueError):
        await v.open_orders()
    assert (await v.status()).reason == "unreachable"


async def test_fault_injection() -> None:
    v = make()
    v.on_book(book(100.0, 5.0, 100.05, 5.0))
    v.inject_fault("error", n=2)
    for _ in range(2):
        with pytest.raises(VenueError) as ei:
            await v.cancel_all()
        assert not ei.value.retryable
    assert await v.cancel_all() == 0
    v.inject_fault("timeout")
    with pytest.raises(VenueError) as ei:
        await v.place(lim("buy", 1.0, 99.0))
    assert ei.value.retryable and await v.open_orders() == []
    v.inject_fault("timeout_applied")
    with pytest.raises(VenueError):
        await v.place(lim("buy", 1.0, 99.0))
    assert len(await v.open_orders()) == 1  # took effect despite the error
    v.inject_fault("post_only_reject")
    await v.place(lim("buy", 1.0, 98.0))  # not post-only: unaffected
    with pytest.raises(PaperVenueError, match="post_only_would_cross"):
        await v.place(lim("buy", 1.0, 98.0, post_only=PostOnly.MUST))
    assert (await v.place(lim("buy", 1.0, 98.0, post_only=PostOnly.MUST))).status == OrderStatus.OPEN
    with pytest.raises(ValueError):
        v.inject_fault("nope")  # type: ignore[arg-type]


# ------------------------------------------------------------------ PnL, funding, latency


async def test_pnl_fees_and_equity() -> None:
    v = make(start_equity=1000.0)
    v.on_book(book(99.99, 10.0, 100.0, 10.0))
    await v.place(mkt("buy", 2.0))
    v.on_mark(101.0, 1)
    assert v.unrealized_pnl() == pytest.approx(2.0)
    fee = 200.0 * 3.5e-4
    assert v.equity() == pytest.approx(1000.0 + 2.0 - fee)
    v.on_book(book(101.0, 10.0, 101.01, 10.0, ts=2))
    await v.place(mkt("sell", 3.0))  # flips to short 1 @ 101
    pos = await v.position(MKT)
    assert pos.size == pytest.approx(-1.0) and pos.avg_price == 101.0
    assert v.realized_pnl() == pytest.approx(2.0)
    assert pos.fees == pytest.approx(fee + 303.0 * 3.5e-4)


async def test_funding_accrues_at_funding_times_only_when_enabled() -> None:
    for enabled in (True, False):
        v = make(funding=enabled)
        v.on_book(book(99.99, 10.0, 100.0, 10.0))
        await go_long(v, 2.0)
        v.on_mark(100.0, 0)
        f = Funding("binance", "SOLUSDT", 0, 0.0001, 8.0, 10.95, next_funding_ts=1000)
        v.on_funding(f)
        v.on_funding(Funding("binance", "SOLUSDT", 500, 0.0002, 8.0, 21.9, next_funding_ts=1000))
        assert v.total_funding() == 0.0
        v.on_funding(
            Funding("binance", "SOLUSDT", 1000, 0.0003, 8.0, 0.0, next_funding_ts=2000, mark_px=101.0)
        )
        expected = -0.0002 * 2.0 * 101.0 if enabled else 0.0
        assert v.total_funding() == pytest.approx(expected)
        assert (await v.position(MKT)).funding == pytest.approx(expected)
        equity = 10_000 + v.realized_pnl() + v.unrealized_pnl() - v.total_fees() + v.total_funding()
        assert v.equity() == pytest.approx(equity)


async def test_latency_hides_market_data_stamped_before_the_order_is_live() -> None:
    clock = EventClock(1000)
    v = PaperVenue(clock=clock, latency_ms=50)
    v.on_book(book(100.0, 0.0, 100.05, 5.0, ts=1000))
    await v.place(lim("buy", 1.0, 100.0))
    v.on_trade(trade(99.0, 1.0, Side.SELL, ts=1020))
    assert fills_of(v.events()) == []
    v.on_trade(trade(99.0, 1.0, Side.SELL, ts=1050))
    assert len(fills_of(v.events())) == 1
    assert [f.ts for f in await v.fills(since_ts=1050)] == [1050]


async def test_mark_from_mid() -> None:
    v = make(mark_from_mid=True)
    v.on_book(book(99.0, 1.0, 101.0, 1.0))
    assert v.mark_price() == 100.0


# ------------------------------------------------------------------ property test

_op = st.one_of(
    st.tuples(st.just("book"), st.integers(-20, 20), st.integers(1, 4), st.floats(0, 5), st.floats(0, 5)),
    st.tuples(
        st.just("trade"), st.integers(-25, 25), st.floats(0.01, 5), st.sampled_from([Side.BUY, Side.SELL])
    ),
    st.tuples(st.just("mark"), st.integers(-25, 25)),
    st.tuples(
        st.just("place"),
        st.sampled_from(["buy", "sell"]),
        st.sampled_from(list(OrderType)),
        st.integers(-20, 20),
        st.floats(0.01, 4),
        st.sampled_from(list(PostOnly)),
        st.booleans(),
        st.sampled_from(list(TriggerCondition)),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("modify"), st.integers(0, 30), st.integers(-20, 20), st.floats(0.01, 4)),
    st.tuples(st.just("funding"), st.floats(-0.001, 0.001)),
)


def _check(v: PaperVenue, orders: dict[str, Order], fills: list[Fill]) -> None:
    pos = v.get_position(MKT)
    signed = sum(f.size if f.side == "buy" else -f.size for f in fills)
    assert pos.size == pytest.approx(signed, abs=1e-6)
    per_order: dict[str, float] = {}
    for f in fills:
        per_order[f.order_id] = per_order.get(f.order_id, 0.0) + f.size
    for oid in orders:
        cur = v.get_order(oid)
        assert cur is not None
        assert cur.filled <= cur.request.size + 1e-9
        assert cur.filled + cur.remaining == pytest.approx(cur.request.size)
        assert per_order.get(oid, 0.0) == pytest.approx(cur.filled, abs=1e-6)
    mark = v.mark_price()
    unreal = pos.size * (mark - pos.avg_price) if mark is not None else 0.0
    eq = v.start_equity + pos.realized_pnl + unreal - pos.fees + pos.funding
    assert v.equity() == pytest.approx(eq, abs=1e-6)
    # independent cash accounting: cash flows of the fills + the position at the mark
    cash = -sum((f.size if f.side == "buy" else -f.size) * f.price for f in fills) - sum(f.fee for f in fills)
    mtm = pos.size * mark if mark is not None else 0.0
    if mark is not None or abs(pos.size) < 1e-9:
        assert v.equity() == pytest.approx(v.start_equity + cash + pos.funding + mtm, abs=1e-6)
    # reduce-only fills never increase |position| nor flip it
    running = 0.0
    for f in fills:
        o = orders[f.order_id]
        after = running + (f.size if f.side == "buy" else -f.size)
        if o.request.reduce_only:
            assert abs(after) <= abs(running) + 1e-9 and running * after >= -1e-12
        running = after


async def _scenario(ops: list[tuple[Any, ...]]) -> None:
    v = make(funding=True)
    orders: dict[str, Order] = {}
    base = 100.0
    for op in ops:
        kind = op[0]
        try:
            if kind == "book":
                _, off, spread, bq, aq = op
                bid = round(base + off * 0.01, 2)
                v.on_book(book(bid, bq, round(bid + spread * 0.01, 2), aq))
            elif kind == "trade":
                v.on_trade(trade(round(base + op[1] * 0.01, 2), op[2], op[3]))
            elif kind == "mark":
                v.on_mark(round(base + op[1] * 0.01, 2), 0)
            elif kind == "funding":
                v.on_funding(Funding("binance", "SOLUSDT", 0, op[1], 8.0, 0.0))
            elif kind == "place":
                _, side, typ, off, size, po, ro, cond = op
                px = round(base + off * 0.01, 2)
                req = OrderRequest(
                    market=MKT,
                    side=side,
                    type=typ,
                    size=size,
                    price=px if typ in (OrderType.LIMIT, OrderType.TRIGGER_LIMIT) else None,
                    trigger_price=px if typ in (OrderType.TRIGGER_MARKET, OrderType.TRIGGER_LIMIT) else None,
                    trigger_condition=cond
                    if typ in (OrderType.TRIGGER_MARKET, OrderType.TRIGGER_LIMIT)
                    else None,
                    post_only=po if typ == OrderType.LIMIT else PostOnly.NONE,
                    reduce_only=ro,
                )
                o = await v.place(req)
                orders[o.order_id] = o
            elif kind == "cancel":
                await v.cancel(f"paper-{op[1]}")
            elif kind == "modify":
                await v.modify(f"paper-{op[1]}", price=round(base + op[2] * 0.01, 2), size=op[3])
        except VenueError:
            pass
        for e in v.events():
            if isinstance(e, OrderUpdate):
                orders.setdefault(e.order.order_id, e.order)
        _check(v, orders, await v.fills())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, min_size=1, max_size=60))
def test_property_random_markets(ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(_scenario(ops))
