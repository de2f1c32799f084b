"""``autotrader kill``: the kill switch from the command line, with or without a running instance.

With an instance (its control socket answers), the instance does it. Without one, this process
does it on the venue of the config, as the instance would (:class:`autotrader.trading.TradingStack`
on the live state database: the journal's unresolved transactions are followed first, the kill is
recorded in the activity log and the HALTED state persisted, so the next start stays halted):
Drift — the app's key (delegate or owner) cancels on chain the app's market's entries and
take-profits, keeps the stop on an open position (``--cancel-all``: the stop too; ``--flatten``:
also a reduce-only market close). Exit 0 only once the venue (the chain) confirms; 1 otherwise.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config_schema import Config

OFFLINE_TIMEOUT_S = 180.0


def result_json(r: Any, trading_state: str, elapsed_ms: float, where: str) -> dict[str, Any]:
    return {
        "trading_state": trading_state,
        "reason": r.reason,
        "confirmed": r.confirmed,
        "already": r.already,
        "cancelled": r.cancelled,
        "open_orders": r.open_orders,
        "position": r.position,
        "flattened": r.flattened,
        "cancel_all": r.cancel_all,
        "cancelled_orders": list(r.cancelled_orders),
        "kept": list(r.kept),
        "unknown_orders": r.unknown_orders,
        "unprotected": r.unprotected,
        "errors": list(r.errors),
        "elapsed_ms": round(elapsed_ms, 1),
        "by": where,
    }


def _order_line(o: dict[str, Any]) -> str:
    px = o.get("trigger_price") or o.get("price")
    pxt = f" @ {px:.4f}" if isinstance(px, int | float) else ""
    ro = " reduce-only" if o.get("reduce_only") else ""
    return f"{o.get('tag') or o.get('order_id')}: {o.get('side')} {o.get('type')} {o.get('size'):g}{pxt}{ro}"


def kill_text(d: dict[str, Any]) -> str:
    """The human answer: what was cancelled (with signatures), what stays on the venue."""
    n = d.get("cancelled", 0)
    conf = (
        "confirmed by the venue"
        if d.get("confirmed")
        else "NOT confirmed" + (" yet (the instance keeps retrying)" if d.get("pending") else "")
    )
    head = str(d.get("trading_state", "halted")).upper()
    if d.get("already"):
        lines = [f"trading was already {head} ({d.get('reason')}): this kill cancelled {n} order(s), {conf}"]
    else:
        lines = [f"{head}: {d.get('reason')} — {n} order(s) cancelled, {conf} in {d.get('elapsed_ms')} ms"]
    for o in d.get("cancelled_orders") or []:
        sig = o.get("cancel_signature")
        lines.append(f"  cancelled {_order_line(o)}" + (f"  signature {sig}" if sig else ""))
    kept = d.get("kept") or []
    pos = d.get("position")
    for o in kept:
        lines.append(f"  stays on the venue: {_order_line(o)} (the stop of the {pos:+g} position)")
    if isinstance(pos, int | float) and pos:
        if d.get("unprotected"):
            lines.append(
                f"  position left open WITHOUT a stop: {pos:+g}"
                + (" (--cancel-all)" if d.get("cancel_all") else "")
            )
        elif not kept:
            lines.append(f"  position left open: {pos:+g}")
        if not d.get("flattened"):
            lines.append("  (autotrader kill --flatten closes it with a reduce-only market order)")
    if d.get("unknown_orders"):
        lines.append(
            f"  {d['unknown_orders']} order(s) still UNKNOWN (their transaction may land): retry the kill"
        )
    for e in (d.get("errors") or [])[-3:]:
        lines.append(f"  error: {e}")
    return "\n".join(lines)


async def offline_kill(
    cfg: Config, reason: str, flatten: bool, cancel_all: bool, timeout_s: float = OFFLINE_TIMEOUT_S
) -> dict[str, Any]:
    """The kill without a running instance (see the module docstring)."""
    from autotrader.config import state_db_path
    from autotrader.trading import TradingStack
    from core.bus import Bus
    from core.clock import WallClock

    t0 = time.perf_counter()
    stack = TradingStack(cfg, Bus(), WallClock(), state_db=state_db_path(cfg, "live"))
    try:
        await stack.start()
        engine = stack.engine
        result = await asyncio.wait_for(engine.kill(reason, flatten, cancel_all), timeout_s)
        venue = stack.async_venue
        cancelled = list(result.cancelled_orders)
        if venue is not None:
            for o in cancelled:
                o["cancel_signature"] = venue.cancel_signature(str(o["order_id"]))
        out = result_json(
            result, str(engine.trading_state), (time.perf_counter() - t0) * 1000, "this process"
        )
        out["cancelled_orders"] = cancelled
        return out
    finally:
        await stack.aclose()
        stack.close()


def run_offline(cfg: Config, reason: str, flatten: bool | None, cancel_all: bool) -> dict[str, Any]:
    """Raises VenueUnavailable (with the reason) when it cannot be done from here."""
    from autotrader.config import state_db_path
    from autotrader.state_claim import StateLockError, claim_state
    from autotrader.trading import VenueUnavailable

    flat = cfg.engine.flatten_on_kill if flatten is None else flatten
    if flat and cfg.engine.venue == "paper":
        raise VenueUnavailable(
            "--flatten without a running instance: the paper venue has no market data "
            "to fill the close; start the instance (autotrader run) and kill it there"
        )
    try:
        lock = claim_state(state_db_path(cfg, "live"))
    except StateLockError as exc:  # an instance holds the state but did not answer on its socket
        raise VenueUnavailable(f"{exc}; if it is hung, stop it and run the kill again") from None
    try:
        return asyncio.run(offline_kill(cfg, reason, flat, cancel_all))
    finally:
        lock.release()
