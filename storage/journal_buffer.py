"""The order/intent journal as the engine uses it when storage may fail.

Writes go straight to the SQLite :class:`storage.journal.Journal` (committed and fsynced before the
call returns: the write-ahead protocol) while it works. A write the storage refuses is applied to
an in-memory overlay instead and queued; later writes queue behind it (their order is kept) and
:meth:`JournalBuffer.flush` replays them once the storage takes writes again. Reads see the
overlay over the file, so the engine's view stays whole: nothing it did is forgotten because a
save failed. While writes wait the write-ahead guarantee is weaker (a crash loses what waits: the
venue's orders are then found as orphans at restart), which is why the engine takes no new risk
meanwhile (REDUCING, :class:`core.storage_health.StorageHealth`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from core.journal_port import (
    SEND_STATES,
    JournaledIntent,
    JournaledSend,
    JournalError,
    check_state,
)
from core.reconcile import (
    INTENT_STATES,
    ORDER_STATES,
    TERMINAL_INTENT_STATES,
    TERMINAL_ORDER_STATES,
    JournaledOrder,
)
from core.storage_health import StorageHealth
from storage.journal import Journal
from storage.write_buffer import is_storage_error, short

#: queued writes kept at most (each is small; a day of trading is a few hundred)
MAX_PENDING_OPS = 100_000


def _now_ms() -> int:
    return int(time.time() * 1000)


class JournalBuffer:
    STORE = "journal"

    def __init__(self, journal: Journal, health: StorageHealth, *,
                 now_ms: Callable[[], int] = lambda: 0) -> None:
        self.journal = journal
        self.health = health
        self.now_ms = now_ms
        self._ops: deque[tuple[str, tuple[Any, ...], dict[str, Any]]] = deque()
        self._intents: dict[str, JournaledIntent] = {}
        self._orders: dict[str, JournaledOrder] = {}
        self._plans: dict[str, dict[str, Any]] = {}
        self._sends: dict[str, JournaledSend] = {}

    @property
    def path(self) -> Any:
        return self.journal.path

    @property
    def pending(self) -> int:
        return len(self._ops)

    # ------------------------------------------------------------------ writing
    def _direct(self, name: str, *args: Any, **kw: Any) -> tuple[bool, Any]:
        """(True, result) when written now; (False, None) when it must wait (the caller applies it
        to the overlay and queues it)."""
        if self._ops and not self.flush():
            return False, None
        try:
            return True, getattr(self.journal, name)(*args, **kw)
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            self.health.failed(self.STORE, short(exc), self.now_ms(), pending=len(self._ops) + 1)
            return False, None

    def _queue(self, name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        if len(self._ops) >= MAX_PENDING_OPS:
            raise JournalError(f"journal backlog full ({MAX_PENDING_OPS} writes wait for the storage)")
        self._ops.append((name, args, kw))
        self.health.set_pending(self.STORE, len(self._ops))

    def begin_intent(self, intent_id: str, payload: dict[str, Any], *, state: str = "pending",
                     ts_ms: int | None = None) -> bool:
        if not intent_id:
            raise JournalError("intent_id must not be empty")
        check_state(state, INTENT_STATES, "intent")
        now = _now_ms() if ts_ms is None else ts_ms
        done, result = self._direct("begin_intent", intent_id, payload, state=state, ts_ms=now)
        if done:
            return bool(result)
        if self.get_intent(intent_id) is not None:
            return False
        self._intents[intent_id] = JournaledIntent(intent_id=intent_id, state=state, payload=dict(payload),
                                                   created_ms=now, updated_ms=now)
        self._queue("begin_intent", (intent_id, payload), {"state": state, "ts_ms": now})
        return True

    def intent_state(self, intent_id: str, state: str, *, ts_ms: int | None = None) -> None:
        check_state(state, INTENT_STATES, "intent")
        now = _now_ms() if ts_ms is None else ts_ms
        base = self.get_intent(intent_id)  # read first: an unknown id is refused in either case
        if base is None:
            raise JournalError(f"unknown intent {intent_id!r}")
        done, _ = self._direct("intent_state", intent_id, state, ts_ms=now)
        if done:
            return
        self._intents[intent_id] = msgspec.structs.replace(base, state=state, updated_ms=now)
        self._queue("intent_state", (intent_id, state), {"ts_ms": now})

    def record_order(self, intent_id: str, role: str, client_tag: str, order_id: str | None,
                     state: str = "submitting", *, user_order_id: int = 0,
                     request: dict[str, Any] | None = None, ts_ms: int | None = None,
                     venue_ref: str = "") -> bool:
        if not client_tag:
            raise JournalError("client_tag must not be empty")
        if not role:
            raise JournalError("role must not be empty")
        check_state(state, ORDER_STATES, "order")
        now = _now_ms() if ts_ms is None else ts_ms
        kw = {"user_order_id": user_order_id, "request": request, "ts_ms": now, "venue_ref": venue_ref}
        done, result = self._direct("record_order", intent_id, role, client_tag, order_id, state, **kw)
        if done:
            return bool(result)
        if self.get_intent(intent_id) is None:
            raise JournalError(f"unknown intent {intent_id!r}: begin_intent first")
        if self.find_order(client_tag=client_tag) is not None:
            return False
        self._orders[client_tag] = JournaledOrder(
            client_tag=client_tag, intent_id=intent_id, role=role, state=state, order_id=order_id,
            user_order_id=int(user_order_id), request=dict(request or {}), created_ms=now, updated_ms=now,
            venue_ref=venue_ref or (f"uid:{int(user_order_id)}" if user_order_id else ""))
        self._queue("record_order", (intent_id, role, client_tag, order_id, state), kw)
        return True

    def update_order(self, client_tag: str, order_id: str | None = None, state: str | None = None, *,
                     user_order_id: int | None = None, ts_ms: int | None = None,
                     venue_ref: str | None = None) -> None:
        if state is not None:
            check_state(state, ORDER_STATES, "order")
        now = _now_ms() if ts_ms is None else ts_ms
        base = self.find_order(client_tag=client_tag)
        if base is None:
            raise JournalError(f"unknown order client_tag {client_tag!r}")
        kw = {"order_id": order_id, "state": state, "user_order_id": user_order_id, "ts_ms": now,
              "venue_ref": venue_ref}
        done, _ = self._direct("update_order", client_tag, **kw)
        if done:
            return
        self._orders[client_tag] = msgspec.structs.replace(
            base, order_id=order_id if order_id is not None else base.order_id,
            state=state if state is not None else base.state, updated_ms=now,
            user_order_id=user_order_id if user_order_id is not None else base.user_order_id,
            venue_ref=venue_ref if venue_ref is not None else (
                f"uid:{user_order_id}" if user_order_id else base.venue_ref))
        self._queue("update_order", (client_tag,), kw)

    # ------------------------------------------------------------------ sends (SendJournal)
    def record_send(self, send: JournaledSend) -> None:
        """A signed transaction, before its first broadcast. When the storage refuses it, it is kept
        here and queued (the engine is then REDUCING: only reduce-only orders and cancels go out, so a
        send that is not yet durable never adds risk)."""
        check_state(send.state, SEND_STATES, "send")
        if self.get_send(send.signature) is not None:
            raise JournalError(f"transaction {send.signature} is journaled already")
        done, _ = self._direct("record_send", send)
        if done:
            return
        self._sends[send.signature] = send
        self._queue("record_send", (send,), {})

    def update_send(self, signature: str, state: str, *, detail: str = "", ts_ms: int | None = None) -> None:
        check_state(state, SEND_STATES, "send")
        now = _now_ms() if ts_ms is None else ts_ms
        base = self.get_send(signature)
        if base is None:
            raise JournalError(f"unknown transaction {signature}")
        done, _ = self._direct("update_send", signature, state, detail=detail, ts_ms=now)
        if done:
            return
        self._sends[signature] = msgspec.structs.replace(base, state=state, detail=detail or base.detail,
                                                         updated_ms=now)
        self._queue("update_send", (signature, state), {"detail": detail, "ts_ms": now})

    def get_send(self, signature: str) -> JournaledSend | None:
        return self._sends.get(signature) or self.journal.get_send(signature)

    def open_sends(self) -> list[JournaledSend]:
        out = {x.signature: x for x in self.journal.open_sends()}
        for sig, x in self._sends.items():
            if x.open:
                out[sig] = x
            else:
                out.pop(sig, None)
        return sorted(out.values(), key=lambda x: x.created_ms)

    def set_protection(self, intent_id: str, plan: dict[str, Any], *, ts_ms: int | None = None) -> None:
        now = _now_ms() if ts_ms is None else ts_ms
        if self.get_intent(intent_id) is None:
            raise JournalError(f"unknown intent {intent_id!r}")
        done, _ = self._direct("set_protection", intent_id, plan, ts_ms=now)
        if done:
            return
        self._plans[intent_id] = dict(plan)
        self._queue("set_protection", (intent_id, plan), {"ts_ms": now})

    def protection(self, intent_id: str) -> dict[str, Any] | None:
        return self._plans.get(intent_id) or self.journal.protection(intent_id)

    def flush(self) -> bool:
        """Replay the waiting writes in order; True when nothing waits any more."""
        ops = self._ops
        try:
            while ops:
                name, args, kw = ops[0]
                getattr(self.journal, name)(*args, **kw)
                ops.popleft()
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            self.health.failed(self.STORE, short(exc), self.now_ms(), pending=len(ops))
            return False
        self._intents.clear()
        self._orders.clear()
        self._plans.clear()
        self._sends.clear()
        self.health.recovered(self.STORE)
        return True

    # ------------------------------------------------------------------ reading (overlay first)
    def get_intent(self, intent_id: str) -> JournaledIntent | None:
        return self._intents.get(intent_id) or self.journal.get_intent(intent_id)

    def has_intent(self, intent_id: str) -> bool:
        return self.get_intent(intent_id) is not None

    def open_intents(self) -> list[JournaledIntent]:
        out = {i.intent_id: i for i in self.journal.open_intents()}
        for iid, it in self._intents.items():
            if it.state in TERMINAL_INTENT_STATES:
                out.pop(iid, None)
            else:
                out[iid] = it
        return sorted(out.values(), key=lambda i: i.created_ms)

    def _merge(self, rows: list[JournaledOrder],
               keep: Callable[[JournaledOrder], bool]) -> list[JournaledOrder]:
        out = {o.client_tag: o for o in rows}
        for tag, o in self._orders.items():
            if keep(o):
                out[tag] = o
            else:
                out.pop(tag, None)
        return sorted(out.values(), key=lambda o: o.created_ms)

    def orders_for(self, intent_id: str) -> list[JournaledOrder]:
        return self._merge(self.journal.orders_for(intent_id), lambda o: o.intent_id == intent_id)

    def open_orders(self) -> list[JournaledOrder]:
        return self._merge(self.journal.open_orders(), lambda o: o.state not in TERMINAL_ORDER_STATES)

    def find_order(self, *, client_tag: str | None = None,
                   order_id: str | None = None) -> JournaledOrder | None:
        if (client_tag is None) == (order_id is None):
            raise JournalError("give exactly one of client_tag or order_id")
        if client_tag is not None:
            return self._orders.get(client_tag) or self.journal.find_order(client_tag=client_tag)
        hits = [o for o in self._orders.values() if o.order_id == order_id]
        return hits[-1] if hits else self.journal.find_order(order_id=order_id)

    def known_client_tags(self) -> set[str]:
        return self.journal.known_client_tags() | set(self._orders)

    def close(self) -> None:
        self.flush()
        self.journal.close()
