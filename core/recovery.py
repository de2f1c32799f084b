"""Rebuild an intent's lifecycle after a restart, from the journal and what the venue reports (pure).

Inputs: the journaled intent, every order the journal holds for it (terminal ones included), the
venue's open orders and its fills. Each journaled order becomes a slot again: fills by client tag
give its filled size, cost and fees; an order the venue still shows is live (with the venue's
current request: a stop moved before the crash keeps its new trigger), anything else is done.

Then, deliberately conservative:

* a resting entry is cancelled (it was priced on a market that is gone; the intent is never
  re-submitted) — any part of it that filled stays protected;
* a position the lifecycle holds gets a stop at once if none is live (never naked), resized to the
  position if needed; the TP ladder is placed if it never was;
* the journaled protection plan (:meth:`core.lifecycle_base.LifecycleBase.protection`, written before
  each protective step) is completed: its stop price when tighter than the live stop (a trail or a
  breakeven move the crash interrupted), its TP ladder's missing take-profits (one whose place
  never reached the venue is placed again under a new client tag);
* once any take-profit filled, the stop is at least at breakeven + fees (derived from the fills:
  a crash between the TP1 fill and the move, before even the plan was written, loses nothing);
* the trailing reference restarts from the touch (it can only tighten from there).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from core.engine_types import EngineConfig, Step
from core.intents import Intent
from core.lifecycle import IntentLifecycle
from core.lifecycle_state import Role, Slot
from core.reconcile import JournaledOrder
from core.venue import Fill, Order, OrderRequest

ROLES: dict[str, Role] = {"entry": "entry", "convert": "convert", "sl": "sl", "tp": "tp", "flat": "flat"}
_INDEX = re.compile(r"^[a-z]+(\d+)")  # e1, sl2, tp3, tp3-r1 (a take-profit placed again): the index


class RecoveryError(ValueError):
    """The journal holds something this code cannot turn back into a lifecycle."""


def intent_from_payload(payload: dict[str, object]) -> Intent:
    try:
        return msgspec.convert(payload, Intent)
    except msgspec.ValidationError as e:
        raise RecoveryError(f"journaled intent cannot be read back: {e}") from None


def _index(tag: str) -> int:
    m = _INDEX.search(tag.rsplit(":", 1)[-1])
    return int(m.group(1)) if m else 0


def _retry_failed_tps(lc: IntentLifecycle) -> None:
    """A take-profit of the planned ladder that never reached the venue (journaled ``submitting``, a
    crash before the venue had it: reconciled as ``failed``) is placed again, under a new client tag
    (a tag is never sent twice)."""
    if lc.ladder is None:
        return
    out = []
    for tag, px, size in lc.ladder:
        s = lc.slots.get(tag)
        if s is not None and not s.active and s.filled <= lc.eps and s.status == "failed":
            base, k = tag.split("-r", 1)[0], 1
            while f"{base}-r{k}" in lc.slots:
                k += 1
            tag = f"{base}-r{k}"
        out.append((tag, px, size))
    lc.ladder = out


def _request(j: JournaledOrder, live: Order | None) -> OrderRequest:
    if live is not None:
        return live.request
    try:
        return msgspec.convert(j.request, OrderRequest)
    except (msgspec.ValidationError, ValueError) as e:
        raise RecoveryError(f"journaled order {j.client_tag} cannot be read back: {e}") from None


def recover_lifecycle(
    intent: Intent,
    cfg: EngineConfig,
    orders: list[JournaledOrder],
    open_orders: list[Order],
    fills: list[Fill],
    now_ms: int,
    plan: dict[str, Any] | None = None,
) -> tuple[IntentLifecycle, Step]:
    """The lifecycle of ``intent`` as it stands on the venue (and as its journaled protection plan
    says it must be), and the step that makes it so."""
    lc = IntentLifecycle(intent, cfg)
    live = {o.request.client_tag: o for o in open_orders if lc.owns(o.request.client_tag)}
    by_tag: dict[str, list[Fill]] = {}
    for f in fills:
        if lc.owns(f.client_tag):
            by_tag.setdefault(f.client_tag, []).append(f)
    for j in sorted(orders, key=lambda o: o.created_ms):
        role = ROLES.get(j.role)
        if role is None:
            raise RecoveryError(f"journaled order {j.client_tag} has unknown role {j.role!r}")
        v = live.get(j.client_tag)
        s = Slot(tag=j.client_tag, role=role, req=_request(j, v), ts=j.created_ms, index=_index(j.client_tag))
        for f in by_tag.get(j.client_tag, ()):
            s.fill_qty += f.size
            s.fill_cost += f.size * f.price
            s.fees += f.fee
        if v is not None:
            s.state, s.order_id, s.status = "live", v.order_id, str(v.status)
            s.filled_upd, s.avg_upd = v.filled, v.avg_price
        else:
            s.state, s.order_id = "done", j.order_id
            s.status = "filled" if s.fill_qty >= s.req.size - lc.eps else j.state
        lc.slots[s.tag] = s
    entries = lc.slots_of("entry", "convert")
    lc.attempts = len(lc.slots_of("entry"))
    lc.converted = any(s.role == "convert" for s in entries)
    lc.first_entry_ts = min((s.ts for s in entries), default=now_ms)
    sl = lc.sl_slot
    stops = lc.slots_of("sl")
    if sl is not None and sl.req.trigger_price:
        lc.stop_price = sl.req.trigger_price
    elif stops and stops[-1].req.trigger_price:
        lc.stop_price = stops[-1].req.trigger_price
    if plan:
        lc.restore_protection(plan)
        _retry_failed_tps(lc)
    lc._ts = max(lc._ts, now_ms)
    if lc.position > lc.eps and any(s.filled > lc.eps for s in lc.slots_of("tp")):
        lc.be_moved = True  # TP1 filled: breakeven is due whether or not the crash let it happen
        lc._move_stop(lc._breakeven(), "sl_moved", reason="breakeven after TP1 (completed on restart)",
                      avg_entry=lc.avg_entry)
    return lc, lc.resume(now_ms)


def position_mismatch(lifecycles: list[IntentLifecycle], venue_size: float, eps: float = 1e-9) -> str:
    """Why the venue position differs from what the recovered lifecycles hold ('' when it does not)."""
    held = sum((lc.position if lc.long else -lc.position) for lc in lifecycles if not lc.terminal)
    if abs(held - venue_size) <= eps * max(1.0, abs(venue_size)):
        return ""
    return f"the venue position is {venue_size:g} but the journal and fills account for {held:g}"
