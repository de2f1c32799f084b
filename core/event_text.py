"""One human-readable line per engine event (activity log ``message``, UI toasts, logs). Pure."""

from __future__ import annotations

from typing import Any

from core.engine_types import EngineEvent


def _n(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def describe(ev: EngineEvent) -> str:
    d = ev.data
    k = ev.kind
    g = d.get
    if k == "intent_accepted":
        return f"intent {g('side')} {_n(g('size'))} @ {_n(g('price'))}, stop {_n(g('sl'))} ({g('source')})"
    if k == "intent_rejected":
        return "intent rejected: " + "; ".join(str(r) for r in g("reasons", []))
    if k == "intent_done":
        return f"intent done: {g('outcome')}" + (f" ({g('reason')})" if g("reason") else "")
    if k == "order_submitted":
        px = f" @ {_n(g('price'))}" if g("price") is not None else ""
        att = f" (attempt {g('attempt')})" if g("attempt") else ""
        return f"{g('role')} order {g('order_id')} {_n(g('size'))}{px}{att}"
    if k in ("order_filled", "order_partially_filled"):
        word = "filled" if k == "order_filled" else "partially filled"
        size = f" {_n(g('filled'))}" if g("filled") is not None else ""
        px = f" @ {_n(g('avg_price'))}" if g("avg_price") else ""
        return f"{g('role', '')} order {word}{size}{px}".strip()
    if k == "order_cancelled":
        why = f": {g('reason')}" if g("reason") else ""
        return f"{g('role', '')} order {g('order_id', '')} cancelled{why}"
    if k == "order_rejected":
        return f"{g('role', '')} order rejected: {g('reason', '')}"
    if k == "order_replaced":
        return f"entry re-placed {_n(g('old_price'))} -> {_n(g('new_price'))} (attempt {g('attempt')})"
    if k == "sl_placed":
        return f"stop placed at {_n(g('trigger'))} for {_n(g('size'))}"
    if k == "tp_placed":
        return f"TP{g('index')} placed at {_n(g('price'))} for {_n(g('size'))}"
    if k in ("sl_moved", "trail_moved"):
        what = "stop moved" if k == "sl_moved" else "trail"
        return f"{what} {_n(g('old'))} -> {_n(g('new'))}" + (f" ({g('reason')})" if g("reason") else "")
    if k == "tp_hit":
        return f"TP{g('index')} hit at {_n(g('price'))} for {_n(g('size'))}"
    if k == "sl_hit":
        return f"stop hit at {_n(g('trigger'))} for {_n(g('size'))}"
    if k == "guard_block":
        return f"guard block ({g('stage')}): {g('reason')}"
    if k == "kill_switch":
        stage = g("stage")
        if stage == "engaged":
            return f"KILL SWITCH: {g('reason')}"
        head = "kill again (trading was already halted)" if g("already") else "kill switch"
        kept = g("kept") or []
        return f"{head} {stage}: {g('cancelled', 0)} cancelled" + (
            f", position {_n(g('position'))}" if g("position") else "") + (
            f", stop kept ({', '.join(str(x) for x in kept)})" if kept else "") + (
            ", position WITHOUT a stop" if g("unprotected") else "")
    if k == "order_unknown":
        sigs = ", ".join(str(x) for x in g("signatures") or []) or "-"
        return (f"{g('role', '')} order {g('order_id')} UNKNOWN (signature {sigs}): no new risk until the "
                "chain says whether it landed").strip()
    if k == "order_resolved":
        return f"order {g('order_id')} resolved: {g('status')}" + (f" ({g('reason')})" if g("reason") else "")
    if k == "delegation":
        return f"delegation {g('stage')}: {g('reason', '')}"
    if k == "automation":
        word = "automation on" if g("on") else "automation off"
        return word + (f": {g('reason')}" if g("reason") else "")
    if k == "trading_state":
        return f"trading {g('from')} -> {g('to')}" + (f": {g('reason')}" if g("reason") else "")
    if k == "venue_status":
        return f"venue {g('state')}" + (f": {g('reason')}" if g("reason") else "")
    if k == "error":
        return f"error ({g('stage', '')}): {g('reason', '')}"
    if k == "entry_abandoned":
        return f"entry abandoned after {g('attempts')} attempt(s): {g('why')}"
    if k == "market_convert":
        return f"market convert for {_n(g('size'))}"
    if k == "flatten":
        return f"flatten {_n(g('position'))}: {g('reason')}"
    if k == "signal_vetoed":
        return f"{'long' if g('side') == 'buy' else 'short'} setup vetoed: " + "; ".join(
            veto_text(v) for v in g("vetoes", []) if isinstance(v, dict))
    if k == "reconcile":
        return "reconciled with the venue: " + ", ".join(f"{key} {_n(v)}" for key, v in d.items())
    return k + (": " + ", ".join(f"{key}={_n(v)}" for key, v in d.items()) if d else "")


def veto_text(v: dict[str, Any]) -> str:
    """One veto of a ``signal_vetoed`` event: the guard check's own words (value, threshold and
    unit: ``funding APR 412 % > 300 %``), else the guard with its value and threshold."""
    if v.get("reason"):
        return str(v["reason"])
    value, threshold = v.get("value"), v.get("threshold")
    if isinstance(value, int | float) and isinstance(threshold, int | float):
        return f"{v.get('guard')} {_n(value)} (limit {_n(threshold)})"
    return str(v.get("guard") or "?")
