"""The execution lifecycle of one intent: a pure, deterministic state machine (no I/O, no clock).

:class:`IntentLifecycle` consumes inputs (ticks, the results of the engine's venue calls, venue
order/fill events, a kill) and returns a :class:`Step`: the :data:`Action` values the engine must
execute against the venue and the :class:`EngineEvent` values it must record and publish.

Lifecycle (see docs/EXECUTION_ENGINE.md)::

    NEW --preflight fails--> DONE(rejected)
     |
     v
    ENTRY: post-only limit at the touch (attempt 1)
     |  unfilled after replace_timeout_s and touch drifted > tolerance, guards pass
     |     -> cancel, then re-place at the touch (attempt 2; never more than max_attempts)
     |  last attempt unfilled / entry_ttl_s over / guards block
     |     -> cancel; market_convert and guards pass -> market order for the rest; else give up
     |  any fill (partial included) -> the stop-loss is placed at once for the filled size
     v
    OPEN: stop live -> TP ladder (reduce-only limits); TP1 filled -> stop to breakeven + fees;
          then the stop trails by trail_atr_mult x ATR(5m) on each new 5m bar, never loosening;
          stop filled -> cancel TPs; last TP filled -> cancel stop
     v
    DONE       (flat, no live orders)
    CLOSING    (the stop could not be placed / was lost: Flatten + Halt, waits for Flattened)
    KILLED     (kill switch: no further orders from this lifecycle)

Safety invariants (property-tested): at most ``max_attempts`` entry orders (+ one market
convert); whenever the lifecycle holds a position it either has a stop order (pending or live) or
has just asked for a flatten; the stop price only tightens; after a kill no order is placed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core.engine_types import (
    Accepted,
    CancelFailed,
    Filled,
    Flatten,
    Flattened,
    Halt,
    Input,
    Kill,
    Modified,
    Modify,
    ModifyFailed,
    OrderChanged,
    PlaceFailed,
    Step,
    Tick,
)
from core.lifecycle_base import LifecycleBase
from core.lifecycle_state import (
    MAX_CANCEL_TRIES,
    MAX_MODIFY_FAILURES,
    TERMINAL,
    Phase,
    Slot,
)
from core.preflight import PreflightContext, finite_pos, preflight
from core.venue import (
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    PostOnly,
    TriggerCondition,
)

# --------------------------------------------------------------------------- state machine


def _tp_index(tag: str) -> int:
    """``...:tp2`` → 2; ``...:tp2-r1`` (placed again after a restart) → 2."""
    num = tag.rsplit(":", 1)[-1][2:].split("-", 1)[0]
    return int(num) if num.isdigit() else 0


class IntentLifecycle(LifecycleBase):
    """The lifecycle of one intent. Feed inputs with :meth:`start` then :meth:`on`."""

    # ---------------------------------------------------------------- entry
    def start(self, ctx: PreflightContext) -> Step:
        """Preflight and, when it passes, the first post-only entry."""
        self._ts = ctx.now_ms
        if self.phase != Phase.NEW:
            return self._flush()
        reasons = preflight(self.intent, ctx, self.cfg)
        if reasons:
            self.phase, self.outcome = Phase.DONE, "rejected"
            self._ev("intent_rejected", reasons=reasons)
            return self._flush()
        self.phase = Phase.ENTRY
        self.first_entry_ts = ctx.now_ms
        self._ev("intent_accepted", side=self.intent.side, price=self.intent.price, size=self.intent.size,
                 sl=self.intent.sl, tps=[list(t) for t in self.intent.tps], source=self.intent.source)
        self._place_entry(self.intent.price)
        return self._flush()

    def resume(self, ts: int) -> Step:
        """Continue after a restart, once :func:`core.recovery.recover_lifecycle` rebuilt the slots:
        a resting entry is cancelled (never kept across a restart), a held position is protected."""
        self._ts = max(self._ts, ts)
        working = self._entry_working()
        if working is not None and working.state == "live":
            self.phase = Phase.ENTRY
            self.after = "giveup"
            self._ev("guard_block", stage="restart", reason="a resting entry is not kept across a restart")
            self._cancel(working)
        elif self.entry_qty > self.eps:
            self.phase = Phase.OPEN
        else:
            self.phase, self.outcome = Phase.DONE, "unfilled"
            self._ev("intent_done", outcome=self.outcome, reason="restart: nothing filled")
            return self._flush()
        self._ev("reconcile", phase=str(self.phase), position=self.position, stop=self.stop_price,
                 live=[s.tag for s in self.open_orders()])
        self._advance()
        return self._flush()

    def abandon_entry(self, ts: int, reason: str) -> Step:
        """Stop entering (trading state no longer active): cancel a resting entry, keep exits."""
        self._ts = max(self._ts, ts)
        s = self._entry_working()
        if self.phase == Phase.ENTRY and s is not None and s.role == "entry":
            self._ev("guard_block", stage="trading state", reason=reason)
            self.after = "giveup"
            self._cancel(s)
        return self._flush()

    def _place_entry(self, price: float) -> None:
        self.attempts += 1
        size = self.intent.size - self.entry_qty
        req = OrderRequest(
            market=self.cfg.market, side=self.intent.side, type=OrderType.LIMIT, size=size, price=price,
            post_only=PostOnly.MUST if self.intent.post_only else PostOnly.NONE,
            client_tag=self._tag(f"e{self.attempts}"),
        )
        self._place("entry", req, index=self.attempts)

    def _inside_ladder(self) -> bool:
        """The touch is still strictly between the stop and the first target (else an entry there
        would be stopped or take profit at once)."""
        touch = self._touch()
        if touch is None:
            return False
        tp1 = self.intent.tps[0][0] if self.intent.tps else None
        if self.long:
            return touch > self.stop_price and (tp1 is None or touch < tp1)
        return touch < self.stop_price and (tp1 is None or touch > tp1)

    def _entry_working(self) -> Slot | None:
        for s in self.slots_of("entry", "convert"):
            if s.active:
                return s
        return None

    def _entry_tick(self) -> None:
        s = self._entry_working()
        if s is None or s.role != "entry" or s.state != "live" or s.cancel_sent:
            return
        ok, why = self._guards_ok()
        if not ok:
            self._ev("guard_block", stage="resting entry", reason=why)
            self.after = "giveup"
            self._cancel(s)
            return
        age_s = (self._ts - s.ts) / 1000.0
        total_s = (self._ts - self.first_entry_ts) / 1000.0
        touch = self._touch()
        price = s.req.price or 0.0
        drifted = touch is not None and abs(touch - price) / price * 1e4 > self.cfg.drift_tolerance_bps
        last = self.attempts >= self.cfg.max_attempts
        if not last and age_s >= self.cfg.replace_timeout_s and drifted:
            self.after = "replace"
            self._cancel(s)
        elif (last and age_s >= self.cfg.replace_timeout_s) or total_s >= self.cfg.entry_ttl_s:
            self.after = "convert" if self.cfg.market_convert else "giveup"
            self._cancel(s)

    def _entry_ended(self, s: Slot, why: str) -> None:
        """An entry order is finished (filled, cancelled, rejected); decide what comes next."""
        remaining = self.intent.size - self.entry_qty
        after = self.after
        self.after = None
        if s.role == "convert" or remaining <= self.eps or self.phase != Phase.ENTRY:
            return
        if after is None:  # not asked by us: post-only rejection or a venue cancel
            after = "replace" if self.attempts < self.cfg.max_attempts else (
                "convert" if self.cfg.market_convert else "giveup")
        if after in ("replace", "convert") and not self._inside_ladder():
            self._ev("entry_abandoned", filled=self.entry_qty, attempts=self.attempts,
                     why=f"price {self._touch()} left the range between stop and first target")
            return
        if after == "replace":
            ok, gwhy = self._guards_ok()
            touch = self._touch()
            if ok and touch is not None and self.attempts < self.cfg.max_attempts:
                old = s.req.price
                self._place_entry(touch)
                self._ev("order_replaced", old_price=old, new_price=touch, attempt=self.attempts, why=why)
                return
            if not ok:
                self._ev("guard_block", stage="replace", reason=gwhy)
            after = "convert" if (self.cfg.market_convert and ok) else "giveup"
        if after == "convert" and not self.converted:
            ok, gwhy = self._guards_ok()
            if ok:
                self.converted = True
                req = OrderRequest(market=self.cfg.market, side=self.intent.side, type=OrderType.MARKET,
                                   size=remaining, client_tag=self._tag("mc"))
                self._place("convert", req)
                self._ev("market_convert", size=remaining)
                return
            self._ev("guard_block", stage="market convert", reason=gwhy)
        self._ev("entry_abandoned", filled=self.entry_qty, attempts=self.attempts, why=why)

    # ---------------------------------------------------------------- protection
    def _stop_req(self, size: float) -> OrderRequest:
        return OrderRequest(
            market=self.cfg.market, side=self.exit_side, type=OrderType.TRIGGER_MARKET, size=size,
            trigger_price=self.stop_price,
            trigger_condition=TriggerCondition.BELOW if self.long else TriggerCondition.ABOVE,
            reduce_only=True, client_tag=self._tag(f"sl{len(self.slots_of('sl')) + 1}"),
        )

    def _tighter(self, new: float, old: float) -> bool:
        return self._tighter_stop(new, old)

    def _move_stop(self, price: float, kind: str, **data: Any) -> None:
        if self._tighter(price, self.stop_price):
            old, self.stop_price = self.stop_price, price
            self._ev(kind, old=old, new=price, **data)

    def _flatten(self, reason: str) -> None:
        self.phase = Phase.CLOSING
        self.outcome = "flattened"
        ids = tuple(s.order_id for s in self.open_orders() if s.order_id is not None and s.role != "flat")
        self._act(Flatten(intent_id=self.intent.id, reason=reason, cancel_ids=ids))
        self._act(Halt(reason=reason))
        self._ev("flatten", reason=reason, position=self.position)

    def _protect(self) -> None:
        """Keep a stop for the whole position; the first thing done after any entry fill."""
        pos = self.position
        if pos <= 0:
            return
        sl = self.sl_slot
        if sl is None:
            self._place("sl", self._stop_req(pos))
            return
        if sl.state != "live" or sl.modifying or sl.cancel_sent or sl.order_id is None:
            return
        want_size = sl.filled + pos
        size_diff = abs(sl.req.size - want_size) > self.eps
        px_diff = sl.req.trigger_price is None or abs(sl.req.trigger_price - self.stop_price) > 1e-12
        if (size_diff or px_diff) and sl.modify_failures < MAX_MODIFY_FAILURES:
            sl.modifying = True
            sl.pending_mod = (want_size if size_diff else None, self.stop_price if px_diff else None)
            self._act(Modify(order_id=sl.order_id, tag_=sl.tag, size=sl.pending_mod[0],
                             trigger_price=sl.pending_mod[1]))

    def _plan_ladder(self) -> list[tuple[str, float, float]]:
        pos = self.position
        total_f = sum(f for _, f in self.intent.tps)
        left = pos
        n = len(self.intent.tps)
        out = []
        for i, (px, f) in enumerate(self.intent.tps):
            size = left if i == n - 1 else pos * f / total_f
            left -= size
            if size > self.eps:
                out.append((self._tag(f"tp{i + 1}"), px, size))
        return out

    def _place_tps(self) -> None:
        """The ladder is planned once (journaled with the protection); each TP of it that was never
        placed is placed (after a restart too: a crash between two TPs loses none)."""
        if not self.intent.tps or (self.ladder is None and self.slots_of("tp")):
            return
        sl = self.sl_slot
        if sl is None or sl.state != "live":
            return  # the stop first
        if self.ladder is None:
            self.ladder = self._plan_ladder()
        for tag, px, size in self.ladder:
            if tag in self.slots:
                continue
            req = OrderRequest(market=self.cfg.market, side=self.exit_side, type=OrderType.LIMIT, size=size,
                               price=px, reduce_only=True, client_tag=tag)
            self._place("tp", req, index=_tp_index(tag))

    def _trail_tick(self, t: Tick) -> None:
        touch = self._touch()
        if touch is not None and (self.hwm is None or self._tighter(touch, self.hwm)):
            self.hwm = touch
        if not (self.be_moved and t.new_bar and t.atr is not None and finite_pos(t.atr) and self.hwm):
            return
        dist = self.cfg.trail_atr_mult * t.atr
        cand = self.hwm - dist if self.long else self.hwm + dist
        if touch is not None and not self._tighter(touch, cand):
            return  # would trigger at once; wait for the next bar
        self._move_stop(cand, "trail_moved", atr=t.atr, ref=self.hwm)

    def _breakeven(self) -> float:
        q = self.entry_qty
        avg = self.avg_entry
        fees = sum(s.fees for s in self.slots_of("entry", "convert"))
        per_unit = max(0.0, fees / q if q else 0.0)
        per_unit += avg * (self.cfg.taker_fee_bps + self.cfg.breakeven_buffer_bps) / 1e4
        return avg + per_unit if self.long else avg - per_unit

    # ---------------------------------------------------------------- driver
    def _advance(self) -> None:
        if self.phase in TERMINAL or self.phase in (Phase.NEW, Phase.CLOSING):
            return
        self._protect()
        pos = self.position
        if self.phase == Phase.ENTRY and self._entry_working() is None:
            self.after = None
            if self.entry_qty > self.eps:
                self.phase = Phase.OPEN
                self._ev("order_filled", role="entry", filled=self.entry_qty, avg_price=self.avg_entry)
            else:
                self.phase, self.outcome = Phase.DONE, "unfilled"
                self._ev("intent_done", outcome=self.outcome)
                return
        if self.phase == Phase.OPEN:
            if pos > 0:
                self._place_tps()
            else:
                for s in self.open_orders():
                    self._cancel(s)
                if not self.open_orders():
                    self.phase = Phase.DONE
                    self.outcome = self.outcome or "closed"
                    self._ev("intent_done", outcome=self.outcome, entry=self.avg_entry,
                             size=self.entry_qty)

    def on(self, inp: Input) -> Step:
        """Consume one input; returns the actions and events it causes."""
        ts = inp.fill.ts if isinstance(inp, Filled) else inp.ts
        self._ts = max(self._ts, ts)
        if isinstance(inp, Kill):
            self._kill(inp)
            return self._flush()
        if isinstance(inp, Tick):
            self.last = inp
            self._retry_cancels()
            if self.phase == Phase.ENTRY:
                self._entry_tick()
            if self.phase == Phase.OPEN:
                self._trail_tick(inp)
        elif isinstance(inp, Accepted):
            self._on_accepted(inp)
        elif isinstance(inp, PlaceFailed):
            self._on_place_failed(inp)
        elif isinstance(inp, Modified | ModifyFailed):
            self._on_modify(inp)
        elif isinstance(inp, CancelFailed):
            s = self.slots.get(inp.tag)
            if s is not None and s.active:
                # never forget an order we could not cancel: it may still fill; retried on ticks
                s.cancel_sent = False
                if s.cancel_tries == MAX_CANCEL_TRIES:
                    self._ev("error", stage="cancel", tag=s.tag, reason=inp.reason,
                             note="still live on the venue; the cancel is retried")
        elif isinstance(inp, OrderChanged):
            self._on_order(inp)
        elif isinstance(inp, Filled):
            self._on_fill(inp.fill)
        elif isinstance(inp, Flattened) and self.phase == Phase.CLOSING:
            self.phase = Phase.DONE
            self.outcome = "flattened" if inp.ok else "flatten_failed"
            for s in self.open_orders():
                s.state = "done"
            self._ev("intent_done", outcome=self.outcome, reason=inp.reason)
        self._advance()
        return self._flush()

    def _kill(self, k: Kill) -> None:
        if self.phase in TERMINAL:
            return
        self.phase, self.outcome = Phase.KILLED, "killed"
        for s in self.open_orders():
            s.state = "done"  # the kill switch cancels everything on the venue
        self._ev("intent_done", outcome="killed", reason=k.reason, position=self.position)

    def _on_accepted(self, a: Accepted) -> None:
        s = self.slots.get(a.tag)
        if s is None or s.state != "pending":
            return
        s.order_id = a.order.order_id
        s.req = a.order.request  # the venue may have sized a reduce-only order down
        s.state = "live"
        s.status = str(a.order.status)
        if s.role == "sl":
            self._ev("sl_placed", order_id=s.order_id, trigger=s.req.trigger_price, size=s.req.size)
        elif s.role == "tp":
            self._ev("tp_placed", order_id=s.order_id, index=s.index, price=s.req.price, size=s.req.size)
        else:
            self._ev("order_submitted", role=s.role, order_id=s.order_id, price=s.req.price,
                     size=s.req.size, attempt=s.index)
        if self.terminal or self.phase == Phase.CLOSING:
            return
        self._apply_order(s, a.order, "")

    def _on_place_failed(self, f: PlaceFailed) -> None:
        s = self.slots.get(f.tag)
        if s is None or s.state != "pending":
            return
        s.state, s.status = "done", "failed"
        self._ev("order_rejected", role=s.role, reason=f.reason)
        if self.terminal or self.phase == Phase.CLOSING:
            return
        if s.role == "sl":
            if self.position > 0:
                self._flatten(f"stop could not be placed: {f.reason}")
        elif s.role in ("entry", "convert"):
            self._entry_ended(s, f.reason)
        elif s.role == "tp":
            self._ev("error", stage="take-profit", index=s.index, reason=f.reason)

    def _on_modify(self, m: Modified | ModifyFailed) -> None:
        s = self.slots.get(m.tag)
        if s is None:
            return
        s.modifying = False
        if isinstance(m, Modified):
            size, trig = s.pending_mod
            s.req = msgspec.structs.replace(
                s.req, size=size if size is not None else s.req.size,
                trigger_price=trig if trig is not None else s.req.trigger_price)
            if s.active and not self.terminal:
                self._apply_order(s, m.order, "")
        else:
            s.modify_failures += 1
            self._ev("error", stage="modify", tag=s.tag, reason=m.reason, failures=s.modify_failures)

    def _on_order(self, u: OrderChanged) -> None:
        s = self.slots.get(u.order.request.client_tag)
        if s is None:
            return
        if s.order_id is None:  # the event raced the call's answer
            s.order_id = u.order.order_id
            if s.state == "pending":
                s.state = "live"
        self._apply_order(s, u.order, u.reason)

    def _apply_order(self, s: Slot, o: Order, reason: str) -> None:
        was = s.filled
        if o.filled > s.filled_upd:
            s.filled_upd = o.filled
            s.avg_upd = o.avg_price
        if not s.active:
            return
        st = o.status
        s.status = str(st)
        if s.filled > was + self.eps:
            self._partial(s)
        if st not in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED):
            return
        s.state = "done"
        if self.terminal or self.phase == Phase.CLOSING:
            return
        if st == OrderStatus.FILLED:
            self._on_slot_filled(s)
        else:
            if st == OrderStatus.REJECTED:
                self._ev("order_rejected", role=s.role, order_id=s.order_id, reason=reason)
            else:
                self._ev("order_cancelled", role=s.role, order_id=s.order_id, filled=s.filled, reason=reason)
            if s.role in ("entry", "convert"):
                self._entry_ended(s, reason or str(st))
            elif s.role == "sl" and self.position > 0:
                self._flatten(f"stop {st}: {reason}".strip())

    def _on_slot_filled(self, s: Slot) -> None:
        if s.role in ("entry", "convert"):
            if s.role == "convert":
                self._ev("order_filled", role="convert", filled=s.filled)
            self._entry_ended(s, "filled")
        elif s.role == "sl":
            self.outcome = "stopped"
            self._ev("sl_hit", order_id=s.order_id, trigger=s.req.trigger_price, size=s.filled)
        elif s.role == "tp":
            self._ev("tp_hit", index=s.index, price=s.req.price, size=s.filled)
            if not self.be_moved:
                self.be_moved = True
                be = self._breakeven()
                self._move_stop(be, "sl_moved", reason="breakeven after TP1", avg_entry=self.avg_entry)
                self.hwm = self._touch() or s.req.price
            if not any(t.active for t in self.slots_of("tp")) and self.position <= 0:
                self.outcome = "target"

    def _partial(self, s: Slot) -> None:
        if s.role in ("entry", "convert") and s.filled < s.req.size - self.eps:
            self._ev("order_partially_filled", role=s.role, order_id=s.order_id, filled=s.filled,
                     size=s.req.size)

    def _on_fill(self, f: Fill) -> None:
        s = self.slots.get(f.client_tag)
        if s is None:
            return
        was = s.filled
        s.fill_qty += f.size
        s.fill_cost += f.size * f.price
        s.fees += f.fee
        if s.filled > was + self.eps:
            self._partial(s)
        if s.order_id is None:
            s.order_id = f.order_id
            if s.state == "pending":
                s.state = "live"
