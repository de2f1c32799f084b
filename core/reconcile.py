"""Restart reconciliation (pure): the order journal against the venue's open orders.

After a restart the engine reconciles before trading: every journaled, still-live order is matched
to a venue open order, venue orders nobody journaled are orphans (adopted or cancelled by config),
and journaled live orders the venue does not show are *missing* (filled, cancelled or never placed
while we were down: look at fills and the position before deciding). Intents are never re-submitted.

Matching, per venue order, first hit wins:

1. ``order_id`` equal to a journaled order's venue id;
2. the venue echoes our ``client_tag`` (the idempotency key, ``<intent id>:<role>``) — this also
   catches a crash between the venue accepting the order and the journal recording its id
   (journal state ``submitting``, no ``order_id`` yet);
3. the u8 ``user_order_id`` (Drift's only client-side id) of a journaled live order, when exactly
   one live journaled order carries it.

A journal order matches at most one venue order (a second one is an orphan). A venue order that
matches a journal order in a terminal state (the journal believes it is done) is an orphan too:
the engine is not managing it.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from core.venue import Order

#: Order states of the journal. ``submitting`` is written (committed) before the venue call.
#: ``unknown``: its transaction may have landed; nothing is decided until the chain says so.
ORDER_STATES: frozenset[str] = frozenset(
    {"submitting", "unknown", "open", "partially_filled", "triggered", "filled", "cancelled", "rejected",
     "failed"}
)
TERMINAL_ORDER_STATES: frozenset[str] = frozenset({"filled", "cancelled", "rejected", "failed"})

#: Intent states of the journal. ``pending``: journaled, entry not yet confirmed; ``active``: entry
#: working or position open with protection; terminal states end the intent.
INTENT_STATES: frozenset[str] = frozenset(
    {"pending", "active", "done", "cancelled", "rejected", "failed", "killed"}
)
TERMINAL_INTENT_STATES: frozenset[str] = frozenset({"done", "cancelled", "rejected", "failed", "killed"})


class JournaledOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One order as the journal knows it."""

    client_tag: str
    intent_id: str
    role: str
    state: str
    order_id: str | None = None
    user_order_id: int = 0
    request: dict[str, object] = msgspec.field(default_factory=dict)
    created_ms: int = 0
    updated_ms: int = 0
    #: the venue's own reference of the order: ``uid:<u8>`` on Drift, a CLOB reference elsewhere
    venue_ref: str = ""

    @property
    def live(self) -> bool:
        return self.state not in TERMINAL_ORDER_STATES


class Adopted(msgspec.Struct, frozen=True, kw_only=True):
    journal: JournaledOrder
    venue: Order
    matched_by: str  # "order_id" | "client_tag" | "user_order_id"


class ReconcileResult(msgspec.Struct, frozen=True, kw_only=True):
    adopted: list[Adopted]
    orphans_on_venue: list[Order]
    missing_on_venue: list[JournaledOrder]

    @property
    def clean(self) -> bool:
        """Nothing to decide: every live journal order is on the venue and nothing else is."""
        return not self.orphans_on_venue and not self.missing_on_venue


def reconcile(
    journal_orders: Sequence[JournaledOrder], venue_open_orders: Sequence[Order]
) -> ReconcileResult:
    """Match journal orders with the venue's open orders (see the module docstring)."""
    by_id: dict[str, JournaledOrder] = {}
    by_tag: dict[str, JournaledOrder] = {}
    by_uid: dict[int, list[JournaledOrder]] = {}
    for j in journal_orders:
        if j.order_id:
            by_id.setdefault(j.order_id, j)
        if j.client_tag:
            by_tag.setdefault(j.client_tag, j)
        if j.user_order_id and j.live:
            by_uid.setdefault(j.user_order_id, []).append(j)

    used: set[str] = set()  # client tags already matched
    adopted: list[Adopted] = []
    orphans: list[Order] = []
    for v in venue_open_orders:
        hit: JournaledOrder | None = None
        how = ""
        tag = v.request.client_tag
        uid = v.request.user_order_id
        if v.order_id and v.order_id in by_id:
            hit, how = by_id[v.order_id], "order_id"
        elif tag and tag in by_tag:
            hit, how = by_tag[tag], "client_tag"
        elif uid and len(by_uid.get(uid, ())) == 1:
            cand = by_uid[uid][0]
            # only when the journal does not already know a different venue id for it
            if not cand.order_id:
                hit, how = cand, "user_order_id"
        if hit is None or not hit.live or hit.client_tag in used:
            orphans.append(v)
            continue
        used.add(hit.client_tag)
        adopted.append(Adopted(journal=hit, venue=v, matched_by=how))

    missing = [j for j in journal_orders if j.live and j.client_tag not in used]
    return ReconcileResult(adopted=adopted, orphans_on_venue=orphans, missing_on_venue=missing)
