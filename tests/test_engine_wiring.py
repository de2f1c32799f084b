"""The pieces that wire the engine to the world: manual intents, the order gateway (u8 ids,
write-ahead journal), restart recovery, the paper account's persistence, metrics from events."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from autotrader.config import ConfigError, validate
from autotrader.metrics import Metrics
from core.bus import Bus
from core.clock import EventClock
from core.config_schema import engine_config
from core.engine_types import EngineConfig, EngineEvent
from core.intents import INTENTS
from core.journal_port import MemoryJournal
from core.manual import ManualIntentError, build_manual_intent, tp_ladder
from core.recovery import recover_lifecycle
from core.venue import MAX_USER_ORDER_ID, Fill, Order, OrderRequest, OrderStatus, OrderType, TriggerCondition
from execution.engine import Engine, TradingState
from execution.order_gateway import OrderGateway
from execution.paper import PaperVenue
from storage.journal import Journal
from storage.state_store import StateStore
from tests.test_engine import T0, Harness, filled_long

CFG = EngineConfig(retry_backoff_s=0.0)


# ------------------------------------------------------------------ config
def test_engine_settings_have_one_home() -> None:
    cfg = validate({"guards": {"max_leverage": 2.0}, "risk": {"risk_per_trade_pct": 1.0, "leverage": 2.0}})
    ec = engine_config(cfg)
    assert ec.max_leverage == 2.0 and ec.risk_per_trade_pct == 1.0 and ec.market == cfg.signal.market
    with pytest.raises(ConfigError, match=r"engine\.max_leverage.*guards\.max_leverage"):
        validate({"engine": {"max_leverage": 3}})
    with pytest.raises(ConfigError, match=r"engine\.orphans"):
        validate({"engine": {"orphans": "ignore"}})


# ------------------------------------------------------------------ manual intents
def test_manual_intent_defaults_and_errors() -> None:
    kw = dict(intent_id="m", ts=1, market="SOL-PERP", bid=100.0, ask=100.1, equity_usd=10_000.0)
    ladder = [(101, None), (102, None), (103, None)]
    it = build_manual_intent(side="buy", size=2, sl=99, price=None, tps=ladder, **kw)  # type: ignore[arg-type]
    assert it.price == 100.0 and it.source == "manual"
    assert [f for _, f in it.tps] == pytest.approx([0.5, 0.3, 0.2])
    sell = build_manual_intent(side="sell", size=1, sl=101, price=None, **kw)  # type: ignore[arg-type]
    assert sell.price == 100.1 and sell.tps == ()
    with pytest.raises(ManualIntentError, match="below the entry"):
        build_manual_intent(side="buy", size=1, sl=100.5, price=None, **kw)  # type: ignore[arg-type]
    with pytest.raises(ManualIntentError, match="take-profit 99"):
        build_manual_intent(side="buy", size=1, sl=98, price=None, tps=[(99, None)], **kw)  # type: ignore[arg-type]
    with pytest.raises(ManualIntentError, match="size"):
        build_manual_intent(side="buy", size=-1, sl=98, price=None, **kw)  # type: ignore[arg-type]
    assert tp_ladder([(1, 1), (2, 3)], ()) == ((1, 0.25), (2, 0.75))
    with pytest.raises(ManualIntentError, match="every take-profit"):
        tp_ladder([(1, 1), (2, None)], ())


# ------------------------------------------------------------------ gateway
async def test_user_order_ids_are_u8_unique_and_reused_after_close() -> None:
    clock = EventClock(T0)
    venue = PaperVenue(clock=clock)
    gw = OrderGateway(venue, CFG, MemoryJournal(), now_ms=clock.now_ms)
    venue.on_mark(100.0, T0)
    uids = []
    for i in range(MAX_USER_ORDER_ID):
        req = OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1, price=50.0,
                           client_tag=f"i:o{i}")
        uids.append((await gw.place(req, "i", "entry")).request.user_order_id)
    assert sorted(uids) == list(range(1, 256))
    with pytest.raises(Exception, match="no free user order id"):
        await gw.place(OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1, price=50.0,
                                    client_tag="i:extra"), "i", "entry")
    first = (await venue.open_orders())[0]
    await gw.cancel(first.order_id)
    for ev in venue.events():
        if hasattr(ev, "order"):
            gw.track(ev.order)  # type: ignore[union-attr]
    again_req = OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1, price=50.0,
                             client_tag="i:again")
    again = await gw.place(again_req, "i", "entry")
    assert again.request.user_order_id == first.request.user_order_id


async def test_a_journaled_client_tag_is_never_sent_twice() -> None:
    clock = EventClock(T0)
    venue = PaperVenue(clock=clock)
    venue.on_mark(100.0, T0)
    j = MemoryJournal()
    gw = OrderGateway(venue, CFG, j, now_ms=clock.now_ms)
    req = OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1, price=50.0,
                       client_tag="i:e1")
    o1 = await gw.place(req, "i", "entry")
    assert j.orders["i:e1"].state == "open" and j.orders["i:e1"].order_id == o1.order_id
    o2 = await gw.place(req, "i", "entry")  # a repeat (restart, bug): the venue's order, not a new one
    assert o2.order_id == o1.order_id and len(await venue.open_orders()) == 1


# ------------------------------------------------------------------ recovery
def _intent_payload() -> dict[str, object]:
    h = Harness()
    return msgspec.to_builtins(h.intent())


def test_recover_protects_a_position_whose_stop_is_gone() -> None:
    from core.intents import Intent

    it = msgspec.convert(_intent_payload(), Intent)
    j = MemoryJournal()
    j.begin_intent(it.id, msgspec.to_builtins(it), state="active")
    entry = OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=10, price=100.0,
                         client_tag=f"{it.id}:e1")
    j.record_order(it.id, "entry", entry.client_tag, "paper-1", "filled", request=msgspec.to_builtins(entry))
    fills = [Fill(order_id="paper-1", client_tag=entry.client_tag, market="SOL-PERP", side="buy", price=100.0,
                  size=10.0, fee=0.0, maker=True, ts=T0)]
    lc, step = recover_lifecycle(it, CFG, j.orders_for(it.id), [], fills, T0 + 1000)
    assert lc.position == pytest.approx(10.0)
    placed = [a for a in step.actions if type(a).__name__ == "Place"]
    assert placed and placed[0].req.type == OrderType.TRIGGER_MARKET
    assert placed[0].req.size == pytest.approx(10)
    assert placed[0].req.trigger_price == it.sl


def test_recover_cancels_a_resting_entry_and_keeps_a_live_stop() -> None:
    from core.intents import Intent

    it = msgspec.convert(_intent_payload(), Intent)
    j = MemoryJournal()
    j.begin_intent(it.id, msgspec.to_builtins(it), state="active")
    e = OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=10, price=100.0,
                     client_tag=f"{it.id}:e1")
    sl = OrderRequest(market="SOL-PERP", side="sell", type=OrderType.TRIGGER_MARKET, size=4,
                      trigger_price=99.5, trigger_condition=TriggerCondition.BELOW, reduce_only=True,
                      client_tag=f"{it.id}:sl1")
    j.record_order(it.id, "entry", e.client_tag, "p1", "partially_filled", request=msgspec.to_builtins(e))
    j.record_order(it.id, "sl", sl.client_tag, "p2", "open", request=msgspec.to_builtins(sl))
    live = [Order(order_id="p1", request=e, status=OrderStatus.OPEN, filled=4, avg_price=100.0),
            Order(order_id="p2", request=sl, status=OrderStatus.OPEN)]
    fills = [Fill(order_id="p1", client_tag=e.client_tag, market="SOL-PERP", side="buy", price=100.0,
                  size=4.0, fee=0.0, maker=True, ts=T0)]
    lc, step = recover_lifecycle(it, CFG, j.orders_for(it.id), live, fills, T0 + 1000)
    kinds = [type(a).__name__ for a in step.actions]
    assert "Cancel" in kinds and "Place" not in kinds  # the entry goes; the live stop is kept
    assert lc.stop_price == 99.5 and lc.attempts == 1


# ------------------------------------------------------------------ persistence
async def test_paper_account_and_control_state_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    store = StateStore(db)
    h = Harness()
    h.venue.persist = lambda b: store.put("paper", b)
    await filled_long(h)
    await h.engine.kill("persist test")
    store.put_json("control", h.engine.control_state())
    store.close()

    store2 = StateStore(db)
    v2 = PaperVenue(clock=h.clock)
    blob = store2.get("paper")
    assert blob is not None
    v2.load_state(blob)
    assert (await v2.position("SOL-PERP")).size == pytest.approx(10.0)
    e2 = Engine(Bus(), v2, h.clock, h.cfg)
    e2.restore_control(store2.get_json("control"))
    assert e2.trading_state == TradingState.HALTED and not e2.automation_on
    assert e2.killswitch.engaged and e2.killswitch.reason == "persist test"
    store2.close()


def test_journal_on_disk_matches_memory_rules(tmp_path: Path) -> None:
    for j in (MemoryJournal(), Journal(tmp_path / "j.sqlite3")):
        assert j.begin_intent("a", {"x": 1}) and not j.begin_intent("a", {})
        assert j.record_order("a", "entry", "a:e1", None) and not j.record_order("a", "entry", "a:e1", None)
        j.update_order("a:e1", order_id="p1", state="open")
        assert [o.client_tag for o in j.open_orders()] == ["a:e1"]
        assert j.find_order(order_id="p1") is not None


def test_metrics_follow_engine_events() -> None:
    m = Metrics()
    for kind, data in [("order_submitted", {"role": "entry"}), ("sl_placed", {}), ("tp_placed", {}),
                       ("order_filled", {"role": "entry"}), ("tp_hit", {}),
                       ("order_cancelled", {"role": "tp"}),
                       ("kill_switch", {"stage": "engaged"}), ("kill_switch", {"stage": "confirmed"})]:
        m.on_engine_event(EngineEvent(kind=kind, intent_id="i", ts=0, data=data))
    text = m.render().decode()
    assert 'orders_submitted_total{role="entry"} 1.0' in text
    assert 'orders_submitted_total{role="sl"} 1.0' in text
    assert 'orders_filled_total{role="tp"} 1.0' in text
    assert 'orders_cancelled_total{role="tp"} 1.0' in text
    assert "kill_switch_total 1.0" in text


async def test_an_intent_is_never_entered_twice_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    h = Harness()
    j1 = Journal(db)
    h.engine = Engine(h.bus, h.venue, h.clock, h.cfg, h.events.append, journal=j1)
    h.engine.recovered = True
    h.book(100.0, 100.1)
    it = h.intent("same-id")
    await h.engine.step()
    assert "intent_accepted" in h.kinds()
    h.engine.close()
    j1.close()

    j2 = Journal(db)
    events: list[EngineEvent] = []
    e2 = Engine(h.bus, h.venue, h.clock, h.cfg, events.append, journal=j2)
    await e2.step()  # reconciles first: the resting entry is cancelled, not re-sent
    h.bus.publish(INTENTS, it)  # the signal publishes the same bar's intent again
    await e2.step()
    rejected = [e for e in events if e.kind == "intent_rejected" and e.intent_id == "same-id"]
    assert rejected and "duplicate" in rejected[0].data["reasons"][0]
    assert not [e for e in events if e.kind == "order_submitted" and e.data.get("role") == "entry"]
    assert not await h.venue.open_orders()
    j2.close()


async def test_leaving_follows_engine_on_exit(tmp_path: Path, btc_file: Path) -> None:
    """SIGTERM/quit: entries are cancelled, reduce-only orders stay (default); or everything goes."""
    import asyncio

    from autotrader.logs import setup_logging
    from autotrader.runtime import Runtime

    for mode in ("keep_protection", "cancel_all"):
        cfg = validate({"engine": {"on_exit": mode}})
        rt = Runtime(cfg, btc_file, 1.0, setup_logging("ERROR"), state_db=tmp_path / f"s{mode}.sqlite3",
                     control_path=tmp_path / f"c{mode}.sock")
        task = asyncio.create_task(rt.run())
        await asyncio.wait_for(rt.first_frame.wait(), 20)
        while rt.engine.bid is None:
            await asyncio.sleep(0.05)
        entry = OrderRequest(market="SOL-PERP", side="buy", type=OrderType.MARKET, size=0.001,
                             client_tag="op:e0")
        await rt.engine.venue.place(entry)  # a position, so reduce-only orders can rest
        rest = OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=0.001,
                            price=rt.engine.bid - 500, client_tag="op:e1")
        stop = OrderRequest(market="SOL-PERP", side="sell", type=OrderType.TRIGGER_MARKET, size=0.001,
                            trigger_price=rt.engine.bid - 1000, trigger_condition=TriggerCondition.BELOW,
                            reduce_only=True, client_tag="op:sl1")
        await rt.engine.venue.place(rest)
        await rt.engine.venue.place(stop)
        rt.stop_event.set()
        assert await asyncio.wait_for(task, 30) == 0
        left = [o.request.client_tag for o in await rt.engine.venue.open_orders()]
        assert left == (["op:sl1"] if mode == "keep_protection" else [])
        from storage.activity_log import ActivityLog

        log = ActivityLog(tmp_path / f"s{mode}.sqlite3", readonly=True)
        row = log.query({"shutdown"})[0]
        log.close()
        assert row.data["mode"] == mode and [o["tag"] for o in row.data["kept"]] == left
        assert "cancelled" in row.message
        if mode == "keep_protection":
            assert "left on the venue: sl1 sell trigger_market" in row.message
        else:
            assert "WITHOUT a stop" in row.message
