"""Why a run traded what it traded: the funnel from the setups the signal detected to the trades
(pure; from the engine events and the intents a run published).

::

    setups detected = vetoed (by guard / by the signal's own conditions) + signal intents
    intents         = signal intents + manual intents = rejected by the engine + accepted
    accepted        = filled + unfilled + cancelled before a fill + still working
    trades          = filled (closed + still open)

A setup vetoed by two guards counts once in ``vetoed`` and under both guards in ``vetoed_by``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import msgspec

from core.engine_types import EngineEvent

_NUMBERS = re.compile(r"[-+]?\d[\d,.]*")


class Funnel(msgspec.Struct, kw_only=True):
    setups: int = 0
    vetoed: int = 0
    vetoed_by_guard: int = 0  # of which a guard said no (the rest: the signal's warm-up, book, size)
    vetoed_by: dict[str, int] = msgspec.field(default_factory=dict)
    intents: int = 0
    signal_intents: int = 0
    manual_intents: int = 0
    rejected: int = 0
    rejected_by: dict[str, int] = msgspec.field(default_factory=dict)
    accepted: int = 0
    filled: int = 0
    unfilled: int = 0
    cancelled: int = 0  # killed, left or abandoned on a state change before any fill
    working: int = 0  # accepted, no fill and not done when the run ended
    replaced: int = 0  # entry orders re-placed (over every intent)
    trades: int = 0
    closed: int = 0
    open: int = 0

    def adds_up(self) -> bool:
        return (self.setups == self.vetoed + self.signal_intents
                and self.intents == self.signal_intents + self.manual_intents == self.rejected + self.accepted
                and self.accepted == self.filled + self.unfilled + self.cancelled + self.working
                and self.trades == self.filled == self.closed + self.open)


def reason_key(reason: str) -> str:
    """A rejection reason without its numbers, so the same reason groups: ``"guard report stale:
    7.3 s old"`` -> ``"guard report stale"``."""
    head = reason.split(":", 1)[0]
    return _NUMBERS.sub("N", head).strip() or reason


def funnel(events: Iterable[EngineEvent], sources: Mapping[str, str]) -> Funnel:
    """``sources``: intent id -> ``signal``/``manual`` for every intent the run published."""
    f = Funnel()
    accepted: set[str] = set()
    filled: set[str] = set()
    done: dict[str, str] = {}
    rejected: set[str] = set()
    for ev in events:
        k, d = ev.kind, ev.data
        if k == "signal_vetoed":
            f.vetoed += 1
            f.vetoed_by_guard += bool(d.get("by_guards"))
            for v in d.get("vetoes") or ():
                name = str(v.get("guard", "?")) if isinstance(v, dict) else "?"
                f.vetoed_by[name] = f.vetoed_by.get(name, 0) + 1
        elif k == "intent_accepted":
            accepted.add(ev.intent_id)
        elif k == "intent_rejected" and not d.get("duplicate") and ev.intent_id not in rejected:
            rejected.add(ev.intent_id)
            for r in d.get("reasons") or ["?"]:
                key = reason_key(str(r))
                f.rejected_by[key] = f.rejected_by.get(key, 0) + 1
        elif k in ("order_filled", "order_partially_filled") and d.get("role") in ("entry", "convert"):
            filled.add(ev.intent_id)
        elif k == "order_replaced":
            f.replaced += 1
        elif k == "intent_done":
            done[ev.intent_id] = str(d.get("outcome", ""))
    f.signal_intents = sum(1 for s in sources.values() if s == "signal")
    f.manual_intents = len(sources) - f.signal_intents
    f.intents = len(sources)
    f.setups = f.vetoed + f.signal_intents
    f.accepted = len(accepted)
    f.rejected = len(rejected - accepted)
    f.filled = len(filled & accepted)
    for iid in accepted - filled:
        outcome = done.get(iid)
        if outcome is None:
            f.working += 1
        elif outcome == "unfilled":
            f.unfilled += 1
        else:
            f.cancelled += 1
    f.trades = f.filled
    f.closed = sum(1 for iid in filled & accepted if done.get(iid, "") not in ("", "killed"))
    f.open = f.trades - f.closed
    return f


def why_no_trades(f: Funnel) -> str:
    """One sentence when the run made no trade ("" when it did)."""
    if f.trades:
        return ""
    if not f.setups and not f.manual_intents:
        return "no trades: the signal detected no setup in this data"
    if f.setups and f.vetoed == f.vetoed_by.get("warm-up", 0) == f.setups and not f.manual_intents:
        return ("no trades: every setup came while the signal was still warming up (ATR(5m) needs "
                "guards.atr_period five-minute bars: 70 min of data by default)")
    if f.setups and f.vetoed == f.setups and not f.manual_intents:
        top = ", ".join(f"{g} {n}" for g, n in sorted(f.vetoed_by.items(), key=lambda x: -x[1])[:3])
        return f"no trades: every setup was vetoed ({top})"
    if f.intents and f.rejected == f.intents:
        top = ", ".join(f"{r} {n}" for r, n in sorted(f.rejected_by.items(), key=lambda x: -x[1])[:3])
        return f"no trades: the engine rejected every intent ({top})"
    return "no trades: no entry filled (see unfilled / cancelled)"
