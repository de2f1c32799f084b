"""Order/intent journal: idempotency keys so a restart never re-submits an intent.

Tables ``intents`` and ``orders`` in SQLite (WAL, ``synchronous=FULL``, see
:func:`storage.activity_log.open_db`). The journal may share its file with the activity log
(recommended: one state file to back up; each keeps its own connection and tables) or use its own.

Write-ahead protocol for the engine:

1. ``begin_intent(intent.id, payload)`` — ``False`` means the id is already journaled: never submit
   it again (it was submitted before a restart, or is a duplicate publication);
2. ``record_order(intent_id, role, client_tag, None, "submitting")`` — committed *before* the venue
   call; ``False`` means this client tag was already used: do not place it again;
3. the venue call; then ``update_order(client_tag, order_id=..., state="open")`` (or
   ``state="failed"`` when the venue refused it).

Protective steps (entry fill → stop and TPs, TP1 fill → stop to breakeven, trail, resize) are
journaled as a plan per intent (``set_protection``: stop price, breakeven done, TP ladder) before the
orders are touched; recovery completes whatever the plan says and the venue does not show yet.

A crash between 2 and 3 leaves an order in ``submitting``; on restart
:func:`core.reconcile.reconcile` matches it by client tag (or user order id) if the venue has it,
otherwise reports it missing. Every write is committed before the method returns.

Table ``sends`` (:class:`core.journal_port.SendJournal`): every signed transaction of an on-chain
venue, written before its first broadcast (see :mod:`execution.solana_send`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from core.journal_port import (
    SEND_STATES,
    TERMINAL_SEND_STATES,
    JournaledIntent,
    JournaledSend,
    JournalError,
)
from core.journal_port import check_state as _check
from core.reconcile import (
    INTENT_STATES,
    ORDER_STATES,
    TERMINAL_INTENT_STATES,
    TERMINAL_ORDER_STATES,
    JournaledOrder,
)
from storage.activity_log import ActivityLogError, encode_data, open_db
from storage.faults import before_write

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    intent_id  TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    payload    TEXT NOT NULL DEFAULT '{}',
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    client_tag    TEXT PRIMARY KEY,
    intent_id     TEXT NOT NULL REFERENCES intents (intent_id),
    role          TEXT NOT NULL,
    order_id      TEXT,
    user_order_id INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL,
    request       TEXT NOT NULL DEFAULT '{}',
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sends (
    signature  TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    venue      TEXT NOT NULL,
    market     TEXT NOT NULL,
    refs       TEXT NOT NULL DEFAULT '[]',
    blockhash  TEXT NOT NULL,
    last_valid_block_height INTEGER NOT NULL,
    min_slot   INTEGER NOT NULL DEFAULT 0,
    raw        TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sends_state ON sends (state);
CREATE TABLE IF NOT EXISTS protection (
    intent_id  TEXT PRIMARY KEY REFERENCES intents (intent_id),
    plan       TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_intent ON orders (intent_id);
CREATE INDEX IF NOT EXISTS orders_order_id ON orders (order_id);
CREATE INDEX IF NOT EXISTS intents_state ON intents (state);
"""

_ORDER_COLS = (
    "client_tag, intent_id, role, state, order_id, user_order_id, request, created_ms, updated_ms, venue_ref"
)
_SEND_COLS = (
    "signature, kind, venue, market, refs, blockhash, last_valid_block_height, min_slot, raw, state, "
    "detail, created_ms, updated_ms"
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Journal:
    """The order/intent journal. Thread-safe (one connection behind a lock); one writer process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._conn: sqlite3.Connection | None = open_db(self.path)
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
            cols = {r[1] for r in self._conn.execute("PRAGMA table_info(orders)")}
            if "venue_ref" not in cols:  # a journal written before order references were strings
                self._conn.execute("ALTER TABLE orders ADD COLUMN venue_ref TEXT NOT NULL DEFAULT ''")
        except (sqlite3.Error, OSError, ActivityLogError) as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError("journal is closed")
        return self._conn

    # --- intents -----------------------------------------------------------------------------

    def begin_intent(
        self, intent_id: str, payload: dict[str, Any], *, state: str = "pending", ts_ms: int | None = None
    ) -> bool:
        """Journal an intent; ``False`` when the id is already journaled (never re-submit it)."""
        if not intent_id:
            raise JournalError("intent_id must not be empty")
        _check(state, INTENT_STATES, "intent")
        now = _now_ms() if ts_ms is None else ts_ms
        text = encode_data(payload)
        with self._lock:
            before_write("journal", "begin_intent")
            cur = self._db().execute(
                "INSERT OR IGNORE INTO intents (intent_id, state, payload, created_ms, updated_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (intent_id, state, text, now, now),
            )
            return cur.rowcount == 1

    def intent_state(self, intent_id: str, state: str, *, ts_ms: int | None = None) -> None:
        _check(state, INTENT_STATES, "intent")
        now = _now_ms() if ts_ms is None else ts_ms
        with self._lock:
            before_write("journal", "intent_state")
            cur = self._db().execute(
                "UPDATE intents SET state = ?, updated_ms = ? WHERE intent_id = ?", (state, now, intent_id)
            )
        if cur.rowcount != 1:
            raise JournalError(f"unknown intent {intent_id!r}")

    def has_intent(self, intent_id: str) -> bool:
        with self._lock:
            row = self._db().execute("SELECT 1 FROM intents WHERE intent_id = ?", (intent_id,)).fetchone()
        return row is not None

    def get_intent(self, intent_id: str) -> JournaledIntent | None:
        with self._lock:
            row = self._db().execute(
                "SELECT intent_id, state, payload, created_ms, updated_ms FROM intents WHERE intent_id = ?",
                (intent_id,),
            ).fetchone()
        return None if row is None else self._intent(row)

    def open_intents(self) -> list[JournaledIntent]:
        """Intents not in a terminal state, oldest first."""
        terminal = sorted(TERMINAL_INTENT_STATES)
        with self._lock:
            rows = self._db().execute(
                "SELECT intent_id, state, payload, created_ms, updated_ms FROM intents "
                f"WHERE state NOT IN ({', '.join('?' * len(terminal))}) ORDER BY created_ms, rowid",
                terminal,
            ).fetchall()
        return [self._intent(r) for r in rows]

    @staticmethod
    def _intent(r: tuple[Any, ...]) -> JournaledIntent:
        return JournaledIntent(
            intent_id=r[0], state=r[1], payload=msgspec.json.decode(r[2]), created_ms=r[3], updated_ms=r[4]
        )

    # --- orders ------------------------------------------------------------------------------

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
        """Journal an order of ``intent_id`` (before the venue call: ``state="submitting"``).

        ``False`` when ``client_tag`` is already journaled (do not place it again)."""
        if not client_tag:
            raise JournalError("client_tag must not be empty")
        if not role:
            raise JournalError("role must not be empty")
        _check(state, ORDER_STATES, "order")
        now = _now_ms() if ts_ms is None else ts_ms
        text = encode_data(request)
        with self._lock:
            db = self._db()
            if db.execute("SELECT 1 FROM intents WHERE intent_id = ?", (intent_id,)).fetchone() is None:
                raise JournalError(f"unknown intent {intent_id!r}: begin_intent first")
            ref = venue_ref or (f"uid:{int(user_order_id)}" if user_order_id else "")
            before_write("journal", "record_order")
            cur = db.execute(
                f"INSERT OR IGNORE INTO orders ({_ORDER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (client_tag, intent_id, role, state, order_id, int(user_order_id), text, now, now, ref),
            )
            return cur.rowcount == 1

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
        """Set the venue order id, state and/or user order id of a journaled order (``None`` keeps it)."""
        if state is not None:
            _check(state, ORDER_STATES, "order")
        now = _now_ms() if ts_ms is None else ts_ms
        if venue_ref is None and user_order_id:
            venue_ref = f"uid:{int(user_order_id)}"
        with self._lock:
            before_write("journal", "update_order")
            cur = self._db().execute(
                "UPDATE orders SET order_id = COALESCE(?, order_id), state = COALESCE(?, state), "
                "user_order_id = COALESCE(?, user_order_id), venue_ref = COALESCE(?, venue_ref), "
                "updated_ms = ? WHERE client_tag = ?",
                (order_id, state, user_order_id, venue_ref, now, client_tag),
            )
        if cur.rowcount != 1:
            raise JournalError(f"unknown order client_tag {client_tag!r}")

    def orders_for(self, intent_id: str) -> list[JournaledOrder]:
        with self._lock:
            rows = self._db().execute(
                f"SELECT {_ORDER_COLS} FROM orders WHERE intent_id = ? ORDER BY created_ms, rowid",
                (intent_id,),
            ).fetchall()
        return [self._order(r) for r in rows]

    def open_orders(self) -> list[JournaledOrder]:
        """Orders not in a terminal state (``submitting`` included), oldest first: the journal side
        of :func:`core.reconcile.reconcile`."""
        terminal = sorted(TERMINAL_ORDER_STATES)
        with self._lock:
            rows = self._db().execute(
                f"SELECT {_ORDER_COLS} FROM orders "
                f"WHERE state NOT IN ({', '.join('?' * len(terminal))}) ORDER BY created_ms, rowid",
                terminal,
            ).fetchall()
        return [self._order(r) for r in rows]

    def find_order(
        self, *, client_tag: str | None = None, order_id: str | None = None
    ) -> JournaledOrder | None:
        if (client_tag is None) == (order_id is None):
            raise JournalError("give exactly one of client_tag or order_id")
        col, val = ("client_tag", client_tag) if client_tag is not None else ("order_id", order_id)
        with self._lock:
            row = self._db().execute(
                f"SELECT {_ORDER_COLS} FROM orders WHERE {col} = ? ORDER BY rowid DESC LIMIT 1", (val,)
            ).fetchone()
        return None if row is None else self._order(row)

    # --- protection plans (crash consistency of protective orders) ------------------------------

    def set_protection(self, intent_id: str, plan: dict[str, Any], *, ts_ms: int | None = None) -> None:
        """Journal what the intent's protective orders must be, before the engine acts on it."""
        now = _now_ms() if ts_ms is None else ts_ms
        text = encode_data(plan)
        with self._lock:
            db = self._db()
            if db.execute("SELECT 1 FROM intents WHERE intent_id = ?", (intent_id,)).fetchone() is None:
                raise JournalError(f"unknown intent {intent_id!r}")
            before_write("journal", "set_protection")
            db.execute(
                "INSERT INTO protection (intent_id, plan, updated_ms) VALUES (?, ?, ?) "
                "ON CONFLICT(intent_id) DO UPDATE SET plan = excluded.plan, updated_ms = excluded.updated_ms",
                (intent_id, text, now),
            )

    def protection(self, intent_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db().execute("SELECT plan FROM protection WHERE intent_id = ?",
                                     (intent_id,)).fetchone()
        if row is None:
            return None
        plan: dict[str, Any] = msgspec.json.decode(row[0])
        return plan

    def known_client_tags(self) -> set[str]:
        with self._lock:
            rows = self._db().execute("SELECT client_tag FROM orders").fetchall()
        return {r[0] for r in rows}

    @staticmethod
    def _order(r: tuple[Any, ...]) -> JournaledOrder:
        return JournaledOrder(
            client_tag=r[0], intent_id=r[1], role=r[2], state=r[3], order_id=r[4], user_order_id=r[5],
            request=msgspec.json.decode(r[6]), created_ms=r[7], updated_ms=r[8], venue_ref=r[9] or "",
        )

    # --- sends (signed transactions of on-chain venues) -----------------------------------------

    def record_send(self, send: JournaledSend) -> None:
        """Journal a signed transaction before its first broadcast (committed on return)."""
        _check(send.state, SEND_STATES, "send")
        now = send.created_ms or _now_ms()
        with self._lock:
            before_write("journal", "record_send")
            try:
                self._db().execute(
                    f"INSERT INTO sends ({_SEND_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (send.signature, send.kind, send.venue, send.market,
                     msgspec.json.encode(send.refs).decode(),
                     send.blockhash, int(send.last_valid_block_height), int(send.min_slot), send.raw,
                     send.state, send.detail, now, send.updated_ms or now),
                )
            except sqlite3.IntegrityError:
                raise JournalError(f"transaction {send.signature} is journaled already") from None

    def update_send(self, signature: str, state: str, *, detail: str = "", ts_ms: int | None = None) -> None:
        _check(state, SEND_STATES, "send")
        now = _now_ms() if ts_ms is None else ts_ms
        with self._lock:
            before_write("journal", "update_send")
            cur = self._db().execute(
                "UPDATE sends SET state = ?, detail = CASE WHEN ? = '' THEN detail ELSE ? END, "
                "updated_ms = ? WHERE signature = ?",
                (state, detail, detail, now, signature),
            )
        if cur.rowcount != 1:
            raise JournalError(f"unknown transaction {signature}")

    def open_sends(self) -> list[JournaledSend]:
        """Transactions not known to have landed or not (oldest first): a restart resolves them."""
        terminal = sorted(TERMINAL_SEND_STATES)
        with self._lock:
            rows = self._db().execute(
                f"SELECT {_SEND_COLS} FROM sends WHERE state NOT IN ({', '.join('?' * len(terminal))}) "
                "ORDER BY created_ms, rowid",
                terminal,
            ).fetchall()
        return [self._send(r) for r in rows]

    def get_send(self, signature: str) -> JournaledSend | None:
        with self._lock:
            row = self._db().execute(
                f"SELECT {_SEND_COLS} FROM sends WHERE signature = ?", (signature,)
            ).fetchone()
        return None if row is None else self._send(row)

    @staticmethod
    def _send(r: tuple[Any, ...]) -> JournaledSend:
        return JournaledSend(
            signature=r[0], kind=r[1], venue=r[2], market=r[3], refs=list(msgspec.json.decode(r[4])),
            blockhash=r[5], last_valid_block_height=int(r[6]), min_slot=int(r[7]), raw=r[8], state=r[9],
            detail=r[10], created_ms=int(r[11]), updated_ms=int(r[12]),
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
