"""Restart reconciliation: before the engine trades, the journal is matched with the venue.

1. venue open orders, position and fills are read (retried; if the venue cannot be read the engine
   does not trade and tries again at the next step);
2. :func:`core.reconcile.reconcile` matches journaled live orders with venue orders: adopted ones get
   their venue id and state in the journal; journaled orders the venue no longer shows are closed in
   the journal as filled (fills say so), cancelled, or failed (never reached the venue); venue orders
   nobody journaled are orphans: cancelled or left alone (``engine.orphans``), and recorded;
3. every intent still open in the journal gets its lifecycle back (:func:`core.recovery.recover_lifecycle`)
   whose first step protects what is held and completes the journaled protection plan (a breakeven
   move, a trail, a TP ladder a crash interrupted); no intent is ever submitted again;
4. a position the recovered lifecycles do not account for puts the engine in ``reducing`` (no new
   entries) with an ``error`` event for the operator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.engine_types import EngineEvent, TradingState
from core.journal_port import JournalError
from core.reconcile import reconcile
from core.recovery import RecoveryError, intent_from_payload, position_mismatch, recover_lifecycle

if TYPE_CHECKING:
    from execution.engine import Engine

QTY_EPS = 1e-9


async def recover(engine: Engine) -> None:
    if engine.recovered:
        return

    gw, venue, m, j = engine.gateway, engine.venue, engine.cfg.market, engine.journal
    now = engine.clock.now_ms()

    def emit(kind: str, intent_id: str = "", **data: object) -> None:
        engine._emit(EngineEvent(kind=kind, intent_id=intent_id, ts=now, data=dict(data)))

    venue_open = await gw.call(lambda: venue.open_orders(m))
    pos = await gw.call(lambda: venue.position(m))
    fills = await gw.call(lambda: venue.fills(0))
    res = reconcile(j.open_orders(), venue_open)
    for a in res.adopted:
        gw.track(a.venue)
        engine.note_order(a.venue, "its transaction was unresolved at the restart")
    for miss in res.missing_on_venue:
        q = sum(f.size for f in fills if f.client_tag == miss.client_tag)
        size = float(str(miss.request.get("size", 0) or 0))
        if size and q >= size - QTY_EPS:
            state = "filled"
        elif miss.state == "submitting" and q <= QTY_EPS:
            state = "failed"
        else:
            state = "cancelled"
        j.update_order(miss.client_tag, state=state, ts_ms=now)
        emit("order_missing", miss.intent_id, client_tag=miss.client_tag, order_id=miss.order_id or "",
             was=miss.state, now=state, filled=q)
    kept = list(venue_open)
    for o in res.orphans_on_venue:
        if engine.cfg.orphans == "cancel":
            try:
                await gw.cancel(o.order_id)
                kept.remove(o)
                emit("orphan_cancelled", order_id=o.order_id, client_tag=o.request.client_tag)
            except Exception as e:
                emit("error", stage="orphan cancel", order_id=o.order_id, reason=str(e))
        else:
            gw.track(o)
            emit("orphan_adopted", order_id=o.order_id, client_tag=o.request.client_tag,
                 note="left on the venue; the kill switch still cancels it")
    intents = []
    for ji in j.open_intents():
        try:
            intent = intent_from_payload(ji.payload)
            plan = j.protection(ji.intent_id)
            lc, step = recover_lifecycle(intent, engine.cfg, j.orders_for(ji.intent_id), kept, fills, now,
                                         plan=plan)
            if plan is not None:
                engine._plans[intent.id] = plan
        except (RecoveryError, JournalError) as e:
            emit("error", ji.intent_id, stage="recover", reason=str(e))
            j.intent_state(ji.intent_id, "failed", ts_ms=now)
            continue
        engine.lifecycles[intent.id] = lc
        engine._pending.append((lc, step))
        intents.append(intent.id)
    engine.recovered = True
    emit("reconcile", adopted=len(res.adopted), missing=len(res.missing_on_venue),
         orphans=len(res.orphans_on_venue), intents=intents, position=pos.size,
         open_orders=len(venue_open))
    why = position_mismatch(engine.active(), pos.size)
    if why:
        emit("error", stage="reconcile", reason=why)
        engine.set_trading_state(TradingState.REDUCING, why)
