"""Order/intent journal (never re-submit) and the pure restart reconciliation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.reconcile import JournaledOrder, reconcile
from core.venue import Order, OrderRequest, OrderStatus, OrderType, PostOnly, TriggerCondition
from storage.activity_log import ActivityLog
from storage.journal import Journal, JournalError


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "state" / "state.sqlite")
    yield j
    j.close()


def test_begin_intent_never_twice(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with Journal(path) as j:
        assert j.begin_intent("bar-1-buy", {"side": "buy", "size": 1.0}) is True
        assert j.begin_intent("bar-1-buy", {"side": "buy", "size": 2.0}) is False
        got = j.get_intent("bar-1-buy")
        assert got is not None and got.payload == {"side": "buy", "size": 1.0} and got.state == "pending"
    # after a restart (new process / new connection) the id is still known
    with Journal(path) as j:
        assert j.has_intent("bar-1-buy")
        assert j.begin_intent("bar-1-buy", {}) is False
        assert j.begin_intent("bar-2-sell", {}) is True


def test_order_lifecycle_and_idempotent_tags(journal: Journal) -> None:
    journal.begin_intent("i1", {"side": "buy"}, ts_ms=1)
    assert journal.record_order("i1", "entry", "i1:entry", None, "submitting", user_order_id=7,
                                request={"price": 100.0}, ts_ms=2)
    assert not journal.record_order("i1", "entry", "i1:entry", None, "submitting")  # never place twice
    journal.update_order("i1:entry", order_id="o-1", state="open", ts_ms=3)
    journal.update_order("i1:entry", state="filled", ts_ms=4)  # keeps the order id
    journal.record_order("i1", "sl", "i1:sl", None, ts_ms=5)
    journal.update_order("i1:sl", order_id="o-2", state="open", ts_ms=6)
    orders = journal.orders_for("i1")
    assert [(o.role, o.client_tag, o.order_id, o.state) for o in orders] == [
        ("entry", "i1:entry", "o-1", "filled"),
        ("sl", "i1:sl", "o-2", "open"),
    ]
    assert orders[0].user_order_id == 7 and orders[0].request == {"price": 100.0}
    assert [o.client_tag for o in journal.open_orders()] == ["i1:sl"]
    assert journal.known_client_tags() == {"i1:entry", "i1:sl"}
    found = journal.find_order(order_id="o-2")
    assert found is not None and found.client_tag == "i1:sl"
    assert journal.find_order(client_tag="nope") is None


def test_intent_states(journal: Journal) -> None:
    journal.begin_intent("a", {}, ts_ms=1)
    journal.begin_intent("b", {}, ts_ms=2)
    journal.begin_intent("c", {}, ts_ms=3)
    journal.intent_state("a", "active")
    journal.intent_state("b", "done")
    assert [(i.intent_id, i.state) for i in journal.open_intents()] == [("a", "active"), ("c", "pending")]
    journal.intent_state("a", "killed")
    assert [i.intent_id for i in journal.open_intents()] == ["c"]


def test_errors_are_clear(journal: Journal) -> None:
    with pytest.raises(JournalError, match="unknown intent 'x'"):
        journal.record_order("x", "entry", "x:entry", None)
    with pytest.raises(JournalError, match="unknown intent 'x'"):
        journal.intent_state("x", "done")
    journal.begin_intent("i", {})
    with pytest.raises(JournalError, match="unknown intent state 'finished'"):
        journal.intent_state("i", "finished")
    with pytest.raises(JournalError, match="unknown order state 'sent'"):
        journal.record_order("i", "entry", "i:entry", None, "sent")
    with pytest.raises(JournalError, match="unknown order client_tag"):
        journal.update_order("i:nope", state="open")
    with pytest.raises(JournalError, match="client_tag must not be empty"):
        journal.record_order("i", "entry", "", None)


def test_journal_shares_file_with_activity_log(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with ActivityLog(path) as log, Journal(path) as j:
        assert j.begin_intent("i", {})
        j.record_order("i", "entry", "i:entry", None)
        log.append("order_submitted", ts_ms=1, intent_id="i")
        assert log.count() == 1 and len(j.open_orders()) == 1


def test_submitting_survives_crash(tmp_path: Path) -> None:
    """Written before the venue call: a crash after record_order leaves a detectable 'submitting'."""
    path = tmp_path / "state.sqlite"
    j = Journal(path)
    j.begin_intent("i", {})
    j.record_order("i", "entry", "i:entry", None, "submitting")
    del j  # no close: the row was committed already
    with Journal(path) as j2:
        [o] = j2.open_orders()
        assert o.state == "submitting" and o.order_id is None


# --- reconcile (pure) ----------------------------------------------------------------------------


def _venue(order_id: str, tag: str = "", uid: int = 0, status: OrderStatus = OrderStatus.OPEN) -> Order:
    req = OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1.0, price=100.0,
                       post_only=PostOnly.MUST, client_tag=tag, user_order_id=uid)
    return Order(order_id=order_id, request=req, status=status)


def _stop(order_id: str, tag: str = "") -> Order:
    req = OrderRequest(market="SOL-PERP", side="sell", type=OrderType.TRIGGER_MARKET, size=1.0,
                       trigger_price=95.0, trigger_condition=TriggerCondition.BELOW, reduce_only=True,
                       client_tag=tag)
    return Order(order_id=order_id, request=req, status=OrderStatus.OPEN)


def _j(tag: str, state: str = "open", order_id: str | None = None, uid: int = 0) -> JournaledOrder:
    intent, role = tag.split(":")
    return JournaledOrder(client_tag=tag, intent_id=intent, role=role, state=state, order_id=order_id,
                          user_order_id=uid)


def test_reconcile_all_matched() -> None:
    js = [_j("i1:entry", order_id="o1"), _j("i1:sl", order_id="o2")]
    res = reconcile(js, [_stop("o2", "i1:sl"), _venue("o1")])
    assert res.clean
    assert [(a.journal.client_tag, a.venue.order_id, a.matched_by) for a in res.adopted] == [
        ("i1:sl", "o2", "order_id"),
        ("i1:entry", "o1", "order_id"),
    ]


def test_reconcile_submitting_adopted_by_client_tag() -> None:
    """Crash after the venue accepted but before the journal recorded the order id."""
    res = reconcile([_j("i1:entry", state="submitting")], [_venue("o9", tag="i1:entry")])
    assert res.clean
    [a] = res.adopted
    assert a.matched_by == "client_tag" and a.venue.order_id == "o9"


def test_reconcile_by_user_order_id_only_when_unique() -> None:
    res = reconcile([_j("i1:entry", state="submitting", uid=5)], [_venue("o9", uid=5)])
    assert [a.matched_by for a in res.adopted] == ["user_order_id"]
    ambiguous = [_j("i1:entry", state="submitting", uid=5), _j("i2:entry", state="submitting", uid=5)]
    res2 = reconcile(ambiguous, [_venue("o9", uid=5)])
    assert res2.adopted == [] and [o.order_id for o in res2.orphans_on_venue] == ["o9"]
    assert [j.client_tag for j in res2.missing_on_venue] == ["i1:entry", "i2:entry"]


def test_reconcile_orphans_and_missing() -> None:
    js = [
        _j("i1:entry", order_id="o1"),  # on venue
        _j("i1:tp1", order_id="o3"),  # filled/cancelled while down -> missing
        _j("i2:entry", state="submitting"),  # crashed before the venue call -> missing
        _j("i0:entry", state="filled", order_id="o0"),  # terminal, not on venue: fine
    ]
    venue = [_venue("o1"), _venue("o7", tag="someone-else"), _venue("o8")]
    res = reconcile(js, venue)
    assert not res.clean
    assert [a.journal.client_tag for a in res.adopted] == ["i1:entry"]
    assert [o.order_id for o in res.orphans_on_venue] == ["o7", "o8"]
    assert [j.client_tag for j in res.missing_on_venue] == ["i1:tp1", "i2:entry"]


def test_reconcile_terminal_journal_order_still_open_is_orphan() -> None:
    res = reconcile([_j("i1:entry", state="cancelled", order_id="o1")], [_venue("o1")])
    assert res.adopted == [] and [o.order_id for o in res.orphans_on_venue] == ["o1"]
    assert res.missing_on_venue == []


def test_reconcile_duplicate_venue_orders_second_is_orphan() -> None:
    venue = [_venue("o1", "i1:entry"), _venue("o2", "i1:entry")]
    res = reconcile([_j("i1:entry", state="submitting")], venue)
    assert [a.venue.order_id for a in res.adopted] == ["o1"]
    assert [o.order_id for o in res.orphans_on_venue] == ["o2"]


def test_reconcile_empty() -> None:
    res = reconcile([], [])
    assert res.clean and res.adopted == []


def test_reconcile_with_journal_rows(tmp_path: Path) -> None:
    with Journal(tmp_path / "s.sqlite") as j:
        j.begin_intent("i1", {})
        j.record_order("i1", "entry", "i1:entry", None)
        j.record_order("i1", "sl", "i1:sl", None)
        j.update_order("i1:sl", order_id="o2", state="open")
        res = reconcile(j.open_orders(), [_venue("o1", "i1:entry"), _stop("o2")])
    matched = [(a.journal.role, a.matched_by) for a in res.adopted]
    assert matched == [("entry", "client_tag"), ("sl", "order_id")]
    assert res.clean
