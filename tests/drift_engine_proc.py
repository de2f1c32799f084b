"""The engine on Drift in a process of its own, for the crash tests (not a test module):
``python -m tests.drift_engine_proc CONFIG.json STATE.sqlite3`` builds the app's TradingStack on
that config and state database, publishes a manual intent (buy 2 @ 150, stop 145, TP 155) with a
fresh book and guard report, and steps the engine until the entry is on chain. With
``AUTOTRADER_KILLPOINT`` set, the process SIGKILLs itself mid-send (execution/solana_send/crash.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from autotrader.config import validate
from autotrader.trading import TradingStack
from core.bus import Bus, Topics
from core.clock import WallClock
from core.guards import GUARDS
from core.intents import INTENTS, Intent
from core.models import BookTop
from tests.test_engine import report


def publish_market(bus: Bus, now: int) -> None:
    bus.publish(
        Topics.BOOK,
        BookTop(
            venue="binance",
            symbol="SOLUSDT",
            timestamp=now,
            update_id=1,
            bid_px=149.9,
            bid_qty=100,
            ask_px=150.1,
            ask_qty=100,
            spread_bps=13.3,
            bid_usd=1e6,
            ask_usd=1e6,
        ),
    )
    bus.publish(GUARDS, report(now))


async def main(config: Path, state: Path) -> int:
    cfg = validate(json.loads(config.read_text()))
    clock = WallClock()
    bus = Bus()
    stack = TradingStack(cfg, bus, clock, state_db=state)
    await stack.start()
    try:
        publish_market(bus, clock.now_ms())
        bus.publish(
            INTENTS,
            Intent(
                id="c1",
                ts=clock.now_ms(),
                symbol="SOL-PERP",
                side="buy",
                price=150.0,
                size=2.0,
                sl=145.0,
                tps=((155.0, 1.0),),
                leverage=1.0,
                reason="crash test",
                atr=0.5,
                source="manual",
            ),
        )
        for _ in range(500):
            publish_market(bus, clock.now_ms())
            await stack.engine.step()
            v = stack.async_venue
            assert v is not None
            if "c1:e1" in v._by_tag and not v.sender.pending():
                print(json.dumps({"done": True}))
                return 0
            await asyncio.sleep(0.02)
        return 1
    finally:
        await stack.aclose()
        stack.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]))))
