"""The order/intent journal as the engine sees it: a Protocol, plus an in-memory implementation
(backtests, tests). The durable one is :class:`storage.journal.Journal` (SQLite, WAL).

Write-ahead protocol (see :mod:`storage.journal`): ``begin_intent`` before anything else
(``False`` = already journaled: never submit it again); ``record_order(..., "submitting")``
*before* the venue call (``False`` = this client tag was used already: do not place it again);
``update_order`` with the venue id and state after it.

On-chain venues also journal every signed transaction (:class:`SendJournal`): the row — its
signature, blockhash and ``last_valid_block_height``, the signed bytes, the orders it concerns —
is written *before* the first broadcast, so a restart can tell whether it may still land (see
:mod:`execution.solana_send`). Order references are strings (``venue_ref``): a u8 user order id on
Drift (``uid:17``), a CLOB reference elsewhere.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from core.reconcile import (
    INTENT_STATES,
    ORDER_STATES,
    TERMINAL_INTENT_STATES,
    TERMINAL_ORDER_STATES,
    JournaledOrder,
)


class JournalError(Exception):
    """The journal refused a write (unknown id, bad state) or could not be opened."""


#: States of a journaled transaction. ``signed``: written before the first broadcast; ``sent``: an
#: RPC accepted it; ``unknown``: maybe landed (no answer, an HTTP error, statuses unavailable);
#: ``landed``/``failed`` (landed with an error)/``not_landed`` (blockhash expired and the signature
#: absent from the chain's history)/``refused`` (the node answered with an error: never forwarded).
SEND_STATES: frozenset[str] = frozenset(
    {"signed", "sent", "unknown", "landed", "failed", "not_landed", "refused"}
)
TERMINAL_SEND_STATES: frozenset[str] = frozenset({"landed", "failed", "not_landed", "refused"})


class JournaledSend(msgspec.Struct, frozen=True, kw_only=True):
    """One signed transaction as the journal keeps it (the signed bytes are public once sent)."""

    signature: str
    kind: str  # place | cancel | modify | cancel_and_place | cancel_all | delegate | ...
    venue: str
    market: str
    refs: list[str] = msgspec.field(default_factory=list)  # client tags / order ids it concerns
    blockhash: str
    last_valid_block_height: int
    min_slot: int = 0  # the chain's slot when it was signed: it cannot be in an earlier block
    raw: str = ""  # base64 of the signed transaction
    state: str = "signed"
    detail: str = ""
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def open(self) -> bool:
        return self.state not in TERMINAL_SEND_STATES


class SendJournal(Protocol):
    def record_send(self, send: JournaledSend) -> None: ...

    def update_send(
        self, signature: str, state: str, *, detail: str = "", ts_ms: int | None = None
    ) -> None: ...

    def open_sends(self) -> list[JournaledSend]: ...

    def get_send(self, signature: str) -> JournaledSend | None: ...


class JournaledIntent(msgspec.Struct, frozen=True, kw_only=True):
    intent_id: str
    state: str
    payload: dict[str, Any]
    created_ms: int
    updated_ms: int


def check_state(state: str, known: frozenset[str], what: str) -> None:
    if state not in known:
        raise JournalError(f"unknown {what} state {state!r}; known: {', '.join(sorted(known))}")


class OrderJournal(Protocol):
    def begin_intent(
        self, intent_id: str, payload: dict[str, Any], *, state: str = "pending", ts_ms: int | None = None
    ) -> bool: ...

    def intent_state(self, intent_id: str, state: str, *, ts_ms: int | None = None) -> None: ...

    def get_intent(self, intent_id: str) -> JournaledIntent | None: ...

    def open_intents(self) -> list[JournaledIntent]: ...

    def record_order(
        self,
        intent_id: str,
        role: str,
        client_tag: str,
        order_id: str | None,
        state: str = "submitting",
        *,
        user_order_id: int = 0,
        request: dict[str, Any] | None = None,
        ts_ms: int | None = None,
        venue_ref: str = "",
    ) -> bool: ...

    def update_order(
        self,
        client_tag: str,
        order_id: str | None = None,
        state: str | None = None,
        *,
        user_order_id: int | None = None,
        ts_ms: int | None = None,
        venue_ref: str | None = None,
    ) -> None: ...

    def orders_for(self, intent_id: str) -> list[JournaledOrder]: ...

    def open_orders(self) -> list[JournaledOrder]: ...

    def find_order(
        self, *, client_tag: str | None = None, order_id: str | None = None
    ) -> JournaledOrder | None: ...

    def set_protection(self, intent_id: str, plan: dict[str, Any], *, ts_ms: int | None = None) -> None:
        """What the intent's protective orders must be (stop price, breakeven done, TP ladder),
        written *before* the engine acts on it: a restart completes the step a crash interrupted."""
        ...

    def protection(self, intent_id: str) -> dict[str, Any] | None: ...


class MemoryJournal:
    """:class:`OrderJournal` in memory, with the same rules as the SQLite one."""

    def __init__(self) -> None:
        self.intents: dict[str, JournaledIntent] = {}
        self.orders: dict[str, JournaledOrder] = {}
        self.sends: dict[str, JournaledSend] = {}
        self.plans: dict[str, dict[str, Any]] = {}

    # --- sends (SendJournal) -------------------------------------------------------------------
    def record_send(self, send: JournaledSend) -> None:
        check_state(send.state, SEND_STATES, "send")
        if send.signature in self.sends:
            raise JournalError(f"transaction {send.signature} is journaled already")
        self.sends[send.signature] = send

    def update_send(self, signature: str, state: str, *, detail: str = "", ts_ms: int | None = None) -> None:
        check_state(state, SEND_STATES, "send")
        old = self.sends.get(signature)
        if old is None:
            raise JournalError(f"unknown transaction {signature}")
        self.sends[signature] = msgspec.structs.replace(
            old, state=state, detail=detail or old.detail, updated_ms=ts_ms or old.updated_ms)

    def open_sends(self) -> list[JournaledSend]:
        return [x for x in self.sends.values() if x.open]

    def get_send(self, signature: str) -> JournaledSend | None:
        return self.sends.get(signature)

    def set_protection(self, intent_id: str, plan: dict[str, Any], *, ts_ms: int | None = None) -> None:
        if intent_id not in self.intents:
            raise JournalError(f"unknown intent {intent_id!r}")
        self.plans[intent_id] = dict(plan)

    def protection(self, intent_id: str) -> dict[str, Any] | None:
        return self.plans.get(intent_id)

    def begin_intent(
        self, intent_id: str, payload: dict[str, Any], *, state: str = "pending", ts_ms: int | None = None
    ) -> bool:
        if not intent_id:
            raise JournalError("intent_id must not be empty")
        check_state(state, INTENT_STATES, "intent")
        if intent_id in self.intents:
            return False
        now = ts_ms or 0
        self.intents[intent_id] = JournaledIntent(
            intent_id=intent_id, state=state, payload=dict(payload), created_ms=now, updated_ms=now
        )
        return True

    def intent_state(self, intent_id: str, state: str, *, ts_ms: int | None = None) -> None:
        check_state(state, INTENT_STATES, "intent")
        it = self.intents.get(intent_id)
        if it is None:
            raise JournalError(f"unknown intent {intent_id!r}")
        self.intents[intent_id] = msgspec.structs.replace(it, state=state, updated_ms=ts_ms or it.updated_ms)

    def get_intent(self, intent_id: str) -> JournaledIntent | None:
        return self.intents.get(intent_id)

    def open_intents(self) -> list[JournaledIntent]:
        return [i for i in self.intents.values() if i.state not in TERMINAL_INTENT_STATES]

    def record_order(
        self,
        intent_id: str,
        role: str,
        client_tag: str,
        order_id: str | None,
        state: str = "submitting",
        *,
        user_order_id: int = 0,
        request: dict[str, Any] | None = None,
        ts_ms: int | None = None,
        venue_ref: str = "",
    ) -> bool:
        if not client_tag or not role:
            raise JournalError("client_tag and role must not be empty")
        check_state(state, ORDER_STATES, "order")
        if intent_id not in self.intents:
            raise JournalError(f"unknown intent {intent_id!r}: begin_intent first")
        if client_tag in self.orders:
            return False
        now = ts_ms or 0
        self.orders[client_tag] = JournaledOrder(
            client_tag=client_tag, intent_id=intent_id, role=role, state=state, order_id=order_id,
            user_order_id=user_order_id, request=dict(request or {}), created_ms=now, updated_ms=now,
            venue_ref=venue_ref or (f"uid:{user_order_id}" if user_order_id else ""),
        )
        return True

    def update_order(
        self,
        client_tag: str,
        order_id: str | None = None,
        state: str | None = None,
        *,
        user_order_id: int | None = None,
        ts_ms: int | None = None,
        venue_ref: str | None = None,
    ) -> None:
        if state is not None:
            check_state(state, ORDER_STATES, "order")
        o = self.orders.get(client_tag)
        if o is None:
            raise JournalError(f"unknown order client_tag {client_tag!r}")
        self.orders[client_tag] = msgspec.structs.replace(
            o, order_id=order_id if order_id is not None else o.order_id,
            state=state if state is not None else o.state, updated_ms=ts_ms or o.updated_ms,
            user_order_id=user_order_id if user_order_id is not None else o.user_order_id,
            venue_ref=venue_ref if venue_ref is not None else (
                f"uid:{user_order_id}" if user_order_id else o.venue_ref),
        )

    def orders_for(self, intent_id: str) -> list[JournaledOrder]:
        return [o for o in self.orders.values() if o.intent_id == intent_id]

    def open_orders(self) -> list[JournaledOrder]:
        return [o for o in self.orders.values() if o.state not in TERMINAL_ORDER_STATES]

    def find_order(
        self, *, client_tag: str | None = None, order_id: str | None = None
    ) -> JournaledOrder | None:
        if (client_tag is None) == (order_id is None):
            raise JournalError("give exactly one of client_tag or order_id")
        if client_tag is not None:
            return self.orders.get(client_tag)
        hits = [o for o in self.orders.values() if o.order_id == order_id]
        return hits[-1] if hits else None
