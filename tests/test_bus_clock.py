from __future__ import annotations

import asyncio

import pytest

from core.bus import Bus, Topic, Topics
from core.clock import EventClock, WallClock
from core.feed_health import feed_state
from core.models import Basis


def _basis(i: int) -> Basis:
    return Basis(ts=i, usdt_px=100.0, usdc_px=100.0 + i, basis_bps=float(i))


def test_topic_names_match_architecture() -> None:
    assert Topics.TRADES.name == "market:solusdt:trades"
    assert Topics.BOOK.name == "market:solusdt:book"
    assert Topics.LIQUIDATIONS.name == "market:solusdt:liquidations"
    assert Topics.FUNDING.name == "market:solusdt:funding"
    assert Topics.USDC_TRADES.name == "market:solusdc:trades"


def test_sync_handlers_called_in_order_and_unsubscribe() -> None:
    bus = Bus()
    seen: list[int] = []
    off = bus.on(Topics.BASIS, lambda b: seen.append(b.ts))
    bus.on(Topics.BASIS, lambda b: seen.append(-b.ts))
    bus.publish(Topics.BASIS, _basis(1))
    off()
    bus.publish(Topics.BASIS, _basis(2))
    assert seen == [1, -1, -2]
    assert bus.published[Topics.BASIS.name] == 2


async def test_coalescing_subscription_keeps_latest() -> None:
    bus = Bus()
    sub = bus.subscribe(Topics.BASIS, maxsize=2, coalesce=True)
    for i in range(5):
        bus.publish(Topics.BASIS, _basis(i))
    assert [b.ts for b in sub.drain()] == [3, 4]
    assert sub.dropped == 3


async def test_non_coalescing_subscription_never_drops() -> None:
    bus = Bus()
    topic: Topic[Basis] = Topic("engine:events", Basis)
    sub = bus.subscribe(topic, maxsize=2)
    for i in range(5):
        bus.publish(topic, _basis(i))
    got = [(await sub.get()).ts for _ in range(5)]
    assert got == [0, 1, 2, 3, 4]
    assert sub.overflowed == 3  # visible, but nothing lost


async def test_async_consumer_wakes_and_close_ends_iteration() -> None:
    bus = Bus()
    sub = bus.subscribe(Topics.BASIS)
    got: list[int] = []

    async def consume() -> None:
        async for b in sub:
            got.append(b.ts)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    bus.publish(Topics.BASIS, _basis(7))
    await asyncio.sleep(0)
    bus.unsubscribe(sub)
    await asyncio.wait_for(task, 1)
    assert got == [7]
    with pytest.raises(ValueError):
        bus.subscribe(Topics.BASIS, maxsize=0)


def test_event_clock_never_goes_back() -> None:
    c = EventClock()
    c.advance(1000)
    c.advance(500)
    assert c.now_ms() == 1000 and c.now_s() == 1.0
    assert abs(WallClock().now_s() * 1000 - WallClock().now_ms()) < 1000


def test_feed_state_fails_closed() -> None:
    assert feed_state(False, 1000, 1500, 5) == ("down", 0.5)
    assert feed_state(True, None, 1500, 5) == ("connecting", None)
    assert feed_state(True, 1000, 5999, 5) == ("live", 4.999)
    assert feed_state(True, 1000, 6001, 5)[0] == "stale"
