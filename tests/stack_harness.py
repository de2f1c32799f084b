"""A :class:`autotrader.trading.TradingStack` on a real state database with a scripted market (event
clock, no sleeping): the engine, the paper venue and the durable stores exactly as the runtime wires
them. Used by the storage-fault tests and the kill-point harness."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from autotrader.config import validate
from autotrader.trading import TradingStack
from core.bus import Bus, Topics
from core.clock import EventClock
from core.engine_types import EngineEvent
from core.guards import GuardReport
from core.intents import INTENTS, Intent
from core.models import BookTop, Side, Trade
from core.venue import Order
from execution.paper import PaperVenue
from storage import faults
from tests.test_engine import T0, report

MARKET = "SOL-PERP"
FAST = {"engine.retry_backoff_s": 0.0, "engine.kill_backoff_s": 0.0, "engine.call_timeout_s": 1.0}


def stack_config(**sets: Any) -> Any:
    tree: dict[str, Any] = {}
    for dotted, value in {**FAST, **sets}.items():
        node = tree
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return validate(tree)


class StackHarness:
    def __init__(self, state_db: Path | None, *, t0: int = T0, runtime_dir: Path | None = None,
                 **sets: Any) -> None:
        self.clock = EventClock(t0)
        self.bus = Bus()
        self.events: list[EngineEvent] = []
        self.guards_ok = True
        self.cfg = stack_config(**sets)
        self.stack = TradingStack(self.cfg, self.bus, self.clock, state_db=state_db, guard_now=self._guard,
                                  on_event=self.events.append, runtime_dir=runtime_dir)
        self.engine = self.stack.engine
        venue = self.stack.venue
        assert isinstance(venue, PaperVenue)
        self.venue = venue
        self.seq = 0

    def _guard(self) -> GuardReport:
        return report(self.clock.now_ms(), self.guards_ok)

    def at_ms(self, ts: int) -> None:
        self.clock.advance(ts)

    def book(self, bid: float, ask: float, qty: float = 100.0) -> None:
        self.seq += 1
        self.bus.publish(Topics.BOOK, BookTop(
            venue="binance", symbol="SOLUSDT", timestamp=self.clock.now_ms(), update_id=self.seq, bid_px=bid,
            bid_qty=qty, ask_px=ask, ask_qty=qty, spread_bps=(ask - bid) / ((ask + bid) / 2) * 1e4,
            bid_usd=1e6, ask_usd=1e6))

    def trade(self, px: float, qty: float, side: Side) -> None:
        self.bus.publish(Topics.TRADES, Trade(venue="binance", symbol="SOLUSDT", ts=self.clock.now_ms(),
                                              price=px, qty=qty, side=side))

    def intent(self, iid: str = "i1", price: float = 100.0, size: float = 10.0, sl: float = 99.0,
               tps: tuple[tuple[float, float], ...] = ((101.0, 0.5), (102.0, 0.3), (103.0, 0.2))) -> Intent:
        it = Intent(id=iid, ts=self.clock.now_ms(), symbol=MARKET, side="buy", price=price, size=size, sl=sl,
                    tps=tps, leverage=1.0, reason="test", source="manual")
        self.bus.publish(INTENTS, it)
        return it

    async def filled_long(self) -> None:
        """A long of 10 at 100 with its stop (99) and three TPs (101/102/103) live."""
        self.book(100.0, 100.1)
        self.intent()
        await self.engine.step()
        self.at_ms(self.clock.now_ms() + 1000)
        self.trade(99.9, 50, Side.SELL)  # prints through the bid: the resting buy fills
        await self.engine.step()

    async def orders(self) -> dict[str, Order]:
        return {o.request.client_tag: o for o in await self.venue.open_orders(MARKET)}

    async def position(self) -> float:
        return (await self.venue.position(MARKET)).size

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def close(self) -> None:
        self.stack.close()


class FailingDisk:
    """The storage layer's writes fail on demand, as a full disk makes them fail."""

    def __init__(self, stores: tuple[str, ...] = ("journal", "activity", "state"),
                 error: str = "database or disk is full") -> None:
        self.stores = stores
        self.error = error
        self.failing = False
        self.refused: list[tuple[str, str]] = []

    def __call__(self, store: str, op: str) -> None:
        if self.failing and store in self.stores:
            self.refused.append((store, op))
            raise sqlite3.OperationalError(self.error)


@contextmanager
def write_hook(hook: Callable[[str, str], None]) -> Iterator[None]:
    prev = faults.set_write_hook(hook)
    try:
        yield
    finally:
        faults.set_write_hook(prev)
