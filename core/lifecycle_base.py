"""The state of one intent's lifecycle and its primitives (order slots, events, actions, touch,
guard freshness). The policy — entry, protection, exits — is :class:`core.lifecycle.IntentLifecycle`."""

from __future__ import annotations

from typing import Any

from core.engine_types import Action, Cancel, EngineConfig, EngineEvent, Place, Step, Tick
from core.intents import Intent
from core.lifecycle_state import TERMINAL, After, Phase, Role, Slot
from core.preflight import finite_pos, guard_fresh_ok
from core.venue import OrderRequest, OrderSide


class LifecycleBase:
    """State of one intent's lifecycle and the primitives its policy (:class:`IntentLifecycle`) uses."""

    def __init__(self, intent: Intent, cfg: EngineConfig) -> None:
        self.intent = intent
        self.cfg = cfg
        self.phase = Phase.NEW
        self.outcome = ""
        self.slots: dict[str, Slot] = {}
        self.attempts = 0
        self.converted = False
        self.first_entry_ts = 0
        self.after: After | None = None
        self.stop_price = intent.sl
        self.be_moved = False
        #: the take-profit ladder as first planned: (client tag, price, size) per TP
        self.ladder: list[tuple[str, float, float]] | None = None
        self.hwm: float | None = None
        self.last: Tick | None = None
        self.long = intent.side == "buy"
        self.eps = 1e-9 * max(1.0, intent.size)
        self._ts = intent.ts
        self._step = Step()

    # ---------------------------------------------------------------- helpers
    @property
    def exit_side(self) -> OrderSide:
        return "sell" if self.long else "buy"

    def _tag(self, suffix: str) -> str:
        return f"{self.intent.id}:{suffix}"

    def owns(self, tag: str) -> bool:
        return tag.startswith(self.intent.id + ":")

    def slots_of(self, *roles: Role) -> list[Slot]:
        return [s for s in self.slots.values() if s.role in roles]

    @property
    def entry_qty(self) -> float:
        return sum(s.filled for s in self.slots_of("entry", "convert"))

    @property
    def exit_qty(self) -> float:
        return sum(s.filled for s in self.slots_of("sl", "tp", "flat"))

    @property
    def position(self) -> float:
        """Unsigned size this lifecycle holds (entries filled minus exits filled)."""
        p = self.entry_qty - self.exit_qty
        return p if p > self.eps else 0.0

    @property
    def avg_entry(self) -> float:
        q = self.entry_qty
        return sum(s.cost for s in self.slots_of("entry", "convert")) / q if q > 0 else 0.0

    @property
    def sl_slot(self) -> Slot | None:
        for s in self.slots_of("sl"):
            if s.active:
                return s
        return None

    def open_orders(self) -> list[Slot]:
        """Orders accepted (or being placed) and not yet finished."""
        return [s for s in self.slots.values() if s.active]

    def protection(self) -> dict[str, Any]:
        """What the protective orders must be (journaled before the engine acts on it, so a restart
        completes a breakeven move, a trail or a ladder the crash interrupted): the stop price, whether
        breakeven is done, and the planned take-profit ladder."""
        return {"stop": self.stop_price, "be": self.be_moved,
                "ladder": [list(t) for t in self.ladder] if self.ladder is not None else None}

    def restore_protection(self, plan: dict[str, Any]) -> None:
        """Take a journaled :meth:`protection` back after a restart (the stop only ever tightens)."""
        stop = plan.get("stop")
        if isinstance(stop, int | float) and stop > 0 and self._tighter_stop(float(stop), self.stop_price):
            self.stop_price = float(stop)
        self.be_moved = self.be_moved or bool(plan.get("be"))
        ladder = plan.get("ladder")
        if isinstance(ladder, list) and self.ladder is None:
            self.ladder = [(str(t), float(p), float(q)) for t, p, q in ladder]

    def _tighter_stop(self, new: float, old: float) -> bool:
        return new > old + 1e-12 if self.long else new < old - 1e-12

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL

    @property
    def reads_guard(self) -> bool:
        """Whether the guard report can matter to this lifecycle: only while it enters (a resting
        entry, a replace, a convert); an open position's exits never wait for guards."""
        return self.phase in (Phase.NEW, Phase.ENTRY)

    def _ev(self, kind: str, **data: Any) -> None:
        self._step.events.append(EngineEvent(kind=kind, intent_id=self.intent.id, ts=self._ts, data=data))

    def _act(self, a: Action) -> None:
        self._step.actions.append(a)

    def _place(self, role: Role, req: OrderRequest, index: int = 0) -> None:
        self.slots[req.client_tag] = Slot(tag=req.client_tag, role=role, req=req, ts=self._ts, index=index)
        self._act(Place(req=req))

    def _cancel_due(self, s: Slot) -> bool:
        """A failed cancel is retried with capped exponential backoff (0.5 s .. 30 s)."""
        wait_ms = min(30_000.0, 500.0 * 2 ** (s.cancel_tries - 1))
        return not s.cancel_tries or self._ts - s.cancel_ts >= wait_ms

    def _cancel(self, s: Slot) -> None:
        s.want_cancel = True
        if s.state == "live" and s.order_id is not None and not s.cancel_sent and self._cancel_due(s):
            s.cancel_sent = True
            s.cancel_tries += 1
            s.cancel_ts = self._ts
            self._act(Cancel(order_id=s.order_id, tag_=s.tag))

    def _retry_cancels(self) -> None:
        """Orders whose cancel failed are cancelled again (when due; see :meth:`_cancel_due`)."""
        for s in self.open_orders():
            if s.want_cancel and not s.cancel_sent and s.cancel_tries:
                self._cancel(s)

    def _flush(self) -> Step:
        st, self._step = self._step, Step()
        return st

    def _touch(self) -> float | None:
        t = self.last
        if t is None:
            return None
        px = t.bid if self.long else t.ask
        return px if px is not None and finite_pos(px) else None

    def _guards_ok(self) -> tuple[bool, str]:
        """May this lifecycle enter now (an entry, a replace, a market convert)? The guard report
        must allow it, and the touch it would trade at must not be crossed (nor locked)."""
        t = self.last
        ok, why = guard_fresh_ok(t.guard if t else None, self._ts, self.cfg.guard_max_age_s)
        if ok and t is not None and t.bid is not None and t.ask is not None and not t.bid < t.ask:
            return False, f"book crossed: best bid {t.bid:g} >= best ask {t.ask:g}"
        return ok, why
