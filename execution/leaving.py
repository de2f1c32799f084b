"""Leaving (quit, SIGTERM, SIGHUP, a dropped SSH session): the venue is left the way
``engine.on_exit`` says (:mod:`core.exit_policy`), after the engine loop stopped.

``keep_protection``: no order that adds risk is placed any more (the engine refuses it); each
lifecycle still entering gives up (its resting entry is cancelled, never re-placed); any other
order that is not reduce-only is cancelled; the reduce-only stop and take-profits stay and the
lifecycles keep them as they are (a restart adopts them). ``cancel_all`` / ``flatten``: every order
is cancelled (and the position closed at market) without the lifecycles reacting (a cancelled
stop must not turn into the kill switch); their intents stay open in the journal so a restart
protects whatever is still held. Each cancel is journaled through the order gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from core.engine_types import Flatten
from core.exit_policy import stays_on_exit
from core.venue import Order, OrderUpdate, VenueError

if TYPE_CHECKING:
    from execution.engine import Engine


class LeaveReport(msgspec.Struct, kw_only=True):
    mode: str
    cancelled: list[dict[str, Any]]
    kept: list[dict[str, Any]]
    position: float | None
    confirmed: bool  # the venue shows no order that should have gone
    flattened: bool = False
    errors: list[str] = msgspec.field(default_factory=list)


def order_dict(o: Order) -> dict[str, Any]:
    r = o.request
    return {"order_id": o.order_id, "tag": r.client_tag, "side": r.side, "type": str(r.type), "size": r.size,
            "price": r.price, "trigger_price": r.trigger_price, "reduce_only": r.reduce_only}


async def leave(engine: Engine, mode: str, tries: int = 5) -> LeaveReport:
    m = engine.cfg.market
    engine.leaving = mode
    errors: list[str] = []
    try:
        before = {o.order_id: o for o in await engine.venue.open_orders(m)}
    except VenueError as e:
        before = {}
        errors.append(f"open_orders: {e}")
    if mode == "keep_protection":
        now = engine.clock.now_ms()
        for lc in engine.active():
            await engine._drive(lc, lc.abandon_entry(now, "leaving: nobody would watch a resting entry"))
        await engine._pump_venue()
    cancelled: dict[str, dict[str, Any]] = {}
    confirmed = False
    for _ in range(max(1, tries)):
        try:
            open_ = await engine.gateway.call(lambda: engine.venue.open_orders(m))
        except VenueError as e:
            errors.append(f"open_orders: {e}")
            continue
        doomed = [o for o in open_ if not stays_on_exit(mode, o.request.reduce_only)]
        if not doomed:
            confirmed = True
            break
        for o in doomed:
            try:
                await engine.gateway.cancel(o.order_id)
                cancelled[o.order_id] = order_dict(o)
            except Exception as e:
                if await engine.gateway.gone(o.order_id):
                    cancelled[o.order_id] = order_dict(o)
                else:
                    errors.append(f"cancel {o.request.client_tag or o.order_id}: {e}")
        await _settle(engine, mode)
    flattened = False
    if mode == "flatten" and confirmed:
        flattened, why = await engine._flatten(Flatten(intent_id=f"exit-{engine.clock.now_ms()}",
                                                       reason="flatten on exit"))
        if not flattened:
            errors.append(why)
        await _settle(engine, mode)
    kept: list[dict[str, Any]] = []
    position: float | None = None
    try:
        final = await engine.venue.open_orders(m)
        kept = [order_dict(o) for o in final]
        position = (await engine.venue.position(m)).size
        left = {o.order_id for o in final}
        for oid, o in before.items():  # the lifecycles' own cancels (entries given up) count too
            if oid not in left and not stays_on_exit(mode, o.request.reduce_only):
                cancelled.setdefault(oid, order_dict(o))
    except VenueError as e:
        errors.append(f"final check: {e}")
    return LeaveReport(mode=mode, cancelled=list(cancelled.values()), kept=kept, position=position,
                       confirmed=confirmed, flattened=flattened, errors=errors[-10:])


async def _settle(engine: Engine, mode: str) -> None:
    """Take the venue's events: the lifecycles follow them while protection is kept; otherwise only
    the journal does (a cancelled stop must not become a flatten + kill)."""
    if mode == "keep_protection":
        await engine._pump_venue()
        return
    for ev in engine.venue.events():
        if isinstance(ev, OrderUpdate):
            engine.gateway.track(ev.order)
