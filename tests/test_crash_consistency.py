"""Crash consistency of the protective orders (issue 15, scope 4): every step that changes them is
journaled as a plan before it is acted on, and the restart completes it."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from core.engine_types import EngineConfig, Modify, Place
from core.intents import Intent
from core.journal_port import MemoryJournal
from core.recovery import recover_lifecycle
from core.venue import Fill, Order, OrderRequest, OrderStatus, OrderType, TriggerCondition
from tests.test_engine import T0

CFG = EngineConfig(retry_backoff_s=0.0, taker_fee_bps=3.5, breakeven_buffer_bps=1.0)
IT = Intent(id="i1", ts=T0, symbol="SOL-PERP", side="buy", price=100.0, size=10.0, sl=99.0,
            tps=((101.0, 0.5), (102.0, 0.3), (103.0, 0.2)), leverage=1.0, reason="t", source="manual")


def _req(role: str, **kw: Any) -> OrderRequest:
    base: dict[str, Any] = {"market": "SOL-PERP", "client_tag": f"i1:{role}"}
    base.update(kw)
    return OrderRequest(**base)


ENTRY = _req("e1", side="buy", type=OrderType.LIMIT, size=10, price=100.0)
STOP = _req("sl1", side="sell", type=OrderType.TRIGGER_MARKET, size=10, trigger_price=99.0,
            trigger_condition=TriggerCondition.BELOW, reduce_only=True)
TPS = [_req(f"tp{i + 1}", side="sell", type=OrderType.LIMIT, size=s, price=p, reduce_only=True)
       for i, (p, s) in enumerate([(101.0, 5.0), (102.0, 3.0), (103.0, 2.0)])]


def _fill(req: OrderRequest, oid: str, size: float, price: float, fee: float = 0.0) -> Fill:
    return Fill(order_id=oid, client_tag=req.client_tag, market="SOL-PERP", side=req.side, price=price,
                size=size, fee=fee, maker=True, ts=T0 + 1)


def _journal(*orders: tuple[OrderRequest, str, str]) -> MemoryJournal:
    j = MemoryJournal()
    j.begin_intent(IT.id, msgspec.to_builtins(IT), state="active")
    for req, oid, state in orders:
        role = {"e": "entry", "sl": "sl", "tp": "tp"}[req.client_tag.rsplit(":", 1)[1].rstrip("0123456789")]
        j.record_order(IT.id, role, req.client_tag, oid, state, request=msgspec.to_builtins(req))
    return j


def test_breakeven_is_completed_after_a_crash_between_tp1_and_the_move() -> None:
    """The reported failure: TP1 filled, the process died before the stop moved: the move was lost."""
    j = _journal((ENTRY, "p1", "filled"), (STOP, "p2", "open"), (TPS[0], "p3", "open"),
                 (TPS[1], "p4", "open"), (TPS[2], "p5", "open"))
    j.set_protection(IT.id, {"stop": 99.0, "be": False,
                             "ladder": [[t.client_tag, t.price, t.size] for t in TPS]})
    live = [Order(order_id="p2", request=STOP, status=OrderStatus.OPEN),
            Order(order_id="p4", request=TPS[1], status=OrderStatus.OPEN),
            Order(order_id="p5", request=TPS[2], status=OrderStatus.OPEN)]
    fills = [_fill(ENTRY, "p1", 10, 100.0, fee=-0.025), _fill(TPS[0], "p3", 5, 101.0)]
    lc, step = recover_lifecycle(IT, CFG, j.orders_for(IT.id), live, fills, T0 + 5000,
                                 plan=j.protection(IT.id))
    be = 100.0 * (1 + (3.5 + 1.0) / 1e4)  # entry fees are a rebate here: ignored
    mods = [a for a in step.actions if isinstance(a, Modify)]
    assert mods and mods[0].order_id == "p2" and mods[0].trigger_price == pytest.approx(be)
    assert mods[0].size == pytest.approx(5.0), "resized to what is held after TP1"
    assert lc.be_moved and lc.stop_price == pytest.approx(be)
    assert "sl_moved" in [e.kind for e in step.events]
    assert not [a for a in step.actions if isinstance(a, Place)], "nothing is placed twice"


def test_a_journaled_trail_is_completed_and_never_loosened() -> None:
    j = _journal((ENTRY, "p1", "filled"), (STOP, "p2", "open"), (TPS[0], "p3", "filled"),
                 (TPS[1], "p4", "open"), (TPS[2], "p5", "open"))
    moved = msgspec.structs.replace(STOP, trigger_price=100.05, size=5)  # at breakeven on the venue
    j.set_protection(IT.id, {"stop": 100.6, "be": True,  # the trail asked for 100.6, then the crash
                             "ladder": [[t.client_tag, t.price, t.size] for t in TPS]})
    live = [Order(order_id="p2", request=moved, status=OrderStatus.OPEN),
            Order(order_id="p4", request=TPS[1], status=OrderStatus.OPEN),
            Order(order_id="p5", request=TPS[2], status=OrderStatus.OPEN)]
    fills = [_fill(ENTRY, "p1", 10, 100.0), _fill(TPS[0], "p3", 5, 101.0)]
    lc, step = recover_lifecycle(IT, CFG, j.orders_for(IT.id), live, fills, T0 + 5000,
                                 plan=j.protection(IT.id))
    mods = [a for a in step.actions if isinstance(a, Modify)]
    assert mods and mods[0].trigger_price == pytest.approx(100.6)
    # a journaled stop looser than the live one never loosens it
    j.set_protection(IT.id, {"stop": 99.5, "be": True, "ladder": None})
    tight = msgspec.structs.replace(STOP, trigger_price=100.8, size=5)
    live[0] = Order(order_id="p2", request=tight, status=OrderStatus.OPEN)
    lc, step = recover_lifecycle(IT, CFG, j.orders_for(IT.id), live, fills, T0 + 5000,
                                 plan=j.protection(IT.id))
    assert lc.stop_price == pytest.approx(100.8)
    assert not [a for a in step.actions if isinstance(a, Modify) and a.trigger_price is not None]


def test_a_ladder_interrupted_between_two_take_profits_is_completed() -> None:
    j = _journal((ENTRY, "p1", "filled"), (STOP, "p2", "open"), (TPS[0], "p3", "open"))
    j.set_protection(IT.id, {"stop": 99.0, "be": False,
                             "ladder": [[t.client_tag, t.price, t.size] for t in TPS]})
    live = [Order(order_id="p2", request=STOP, status=OrderStatus.OPEN),
            Order(order_id="p3", request=TPS[0], status=OrderStatus.OPEN)]
    fills = [_fill(ENTRY, "p1", 10, 100.0)]
    _, step = recover_lifecycle(IT, CFG, j.orders_for(IT.id), live, fills, T0 + 5000,
                                plan=j.protection(IT.id))
    placed = [(a.req.client_tag, a.req.price, a.req.size) for a in step.actions if isinstance(a, Place)]
    assert placed == [("i1:tp2", 102.0, 3.0), ("i1:tp3", 103.0, 2.0)]


def test_without_a_plan_a_tp_fill_still_gets_its_breakeven() -> None:
    """A journal written before plans existed: breakeven is derived from the fills."""
    j = _journal((ENTRY, "p1", "filled"), (STOP, "p2", "open"), (TPS[0], "p3", "filled"))
    live = [Order(order_id="p2", request=STOP, status=OrderStatus.OPEN)]
    fills = [_fill(ENTRY, "p1", 10, 100.0), _fill(TPS[0], "p3", 5, 101.0)]
    lc, step = recover_lifecycle(IT, CFG, j.orders_for(IT.id), live, fills, T0 + 5000, plan=None)
    assert lc.stop_price == pytest.approx(100.0 * (1 + 4.5 / 1e4))
    assert [a for a in step.actions if isinstance(a, Modify)]


def test_a_take_profit_that_never_reached_the_venue_is_placed_again_under_a_new_tag() -> None:
    """Killed after TP1 was journaled ``submitting`` and before the venue had it: the restart's
    reconciliation calls it failed; the ladder still wants it: it is placed again, never reusing a tag."""
    j = _journal((ENTRY, "p1", "filled"), (STOP, "p2", "open"), (TPS[0], "", "failed"))
    j.set_protection(IT.id, {"stop": 99.0, "be": False,
                             "ladder": [[t.client_tag, t.price, t.size] for t in TPS]})
    live = [Order(order_id="p2", request=STOP, status=OrderStatus.OPEN)]
    lc, step = recover_lifecycle(IT, CFG, j.orders_for(IT.id), live, [_fill(ENTRY, "p1", 10, 100.0)],
                                 T0 + 5000, plan=j.protection(IT.id))
    placed = [(a.req.client_tag, a.req.price, a.req.size) for a in step.actions if isinstance(a, Place)]
    assert placed == [("i1:tp1-r1", 101.0, 5.0), ("i1:tp2", 102.0, 3.0), ("i1:tp3", 103.0, 2.0)]
    assert lc.slots["i1:tp1-r1"].index == 1
