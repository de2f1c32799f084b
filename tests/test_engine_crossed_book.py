"""A market convert never trades into a crossed book: the engine on the paper venue (scripted market,
event clock), with the guard report either given or evaluated from the book by the guards."""

from __future__ import annotations

import pytest

from core.bus import Topics
from core.guard_config import GuardsConfig
from core.guard_monitor import GuardMonitor
from core.guards import evaluate
from core.intents import Intent
from core.market_state import MarketState
from core.models import BookTop
from core.preflight import PreflightContext, preflight
from tests.test_engine import T0, Harness
from tests.test_guards import book, feed


async def _unfilled_twice(h: Harness, last_bid: float, last_ask: float) -> None:
    """Two post-only attempts that do not fill; the second one ends at 22 s on the given book."""
    h.book(100.0, 100.1)
    h.intent()
    await h.engine.step()
    h.at(11)
    h.book(100.5, 100.6)  # drifted: replaced
    await h.engine.step()
    h.at(22)
    h.book(last_bid, last_ask)
    await h.engine.step()


@pytest.mark.parametrize(("bid", "ask"), [(100.7, 100.6), (100.6, 100.6)])
async def test_no_market_convert_into_a_crossed_or_locked_book_even_with_passing_guards(
        bid: float, ask: float) -> None:
    h = Harness(market_convert=True)  # the guard reports it publishes say "passing"
    await _unfilled_twice(h, bid, ask)
    assert "market_convert" not in h.kinds()
    blocks = [e for e in h.events if e.kind == "guard_block"]
    assert blocks and "book crossed" in str(blocks[-1].data["reason"])
    assert await h.position() == 0.0 and await h.open_orders() == []


async def test_the_same_market_converts_on_a_sane_book() -> None:
    h = Harness(market_convert=True)
    await _unfilled_twice(h, 100.6, 100.7)
    assert "market_convert" in h.kinds()


async def test_the_guards_report_on_a_crossed_book_stops_the_convert() -> None:
    """No hand-made report: the guard monitor evaluates the market state the engine trades on; the
    crossed top is a blocking "book crossed" at once, so the convert is refused."""
    h = Harness(market_convert=True)
    cfg = GuardsConfig(blocking=[])  # crossing blocks whatever the blocking list says
    monitor = GuardMonitor(h.bus, cfg, h.clock, "replay")
    feed(monitor.state, T0)  # funding, OI, basis, bars, liquidation feeds: a passing market
    h.engine.guard_now = monitor.check

    def top(bid: float, ask: float) -> None:  # the book through the bus, as the pipeline sends it
        h.seq += 1
        b = book(h.clock.now_ms(), bid=bid, ask=ask, uid=h.seq)
        h.venue.on_book(b)
        h.bus.publish(Topics.BOOK, b)

    def refresh_others() -> None:
        feed(monitor.state, h.clock.now_ms())
        top(*last)

    last = (100.0, 100.1)
    top(*last)
    assert monitor.check().status == "passing"
    h.intent()
    await h.engine.step()
    assert "order_submitted" in h.kinds()
    h.at(11)
    last = (100.5, 100.6)
    refresh_others()
    await h.engine.step()
    h.at(22)
    last = (100.7, 100.6)
    refresh_others()
    report = monitor.check()
    assert any(b.startswith("book crossed") for b in report.blocks)
    await h.engine.step()
    assert "market_convert" not in h.kinds()
    assert await h.position() == 0.0


def test_preflight_refuses_an_entry_on_a_crossed_book_report() -> None:
    ms = MarketState()
    feed(ms, T0)
    ms.on_book(BookTop("binance", "SOLUSDT", T0, 2, 100.05, 1.0, 100.0, 1.0, -5.0, 1e6, 1e6))
    report = evaluate(ms.snapshot(T0), ms.cfg, T0, "live")
    it = Intent(id="x", ts=T0, symbol="SOL-PERP", side="buy", price=100.0, size=1.0, sl=99.0,
                tps=((101.0, 1.0),), leverage=1.0, reason="t")
    why = preflight(it, PreflightContext(now_ms=T0, guard=report, equity_usd=1e4, day_pnl_pct=0.0),
                    Harness().cfg)
    assert any("book crossed: best bid 100.05 >= best ask 100" in w for w in why), why
