"""On-chain Drift transactions received from Helius webhooks (published on ``onchain:drift:events``)."""

from __future__ import annotations

from typing import Protocol

import msgspec

from core.bus import Topic


class DriftTxEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One transaction touching the Drift program, as Helius delivered it."""

    signature: str
    slot: int | None
    timestamp: int | None  # block time, s (Helius ``timestamp`` / ``blockTime``)
    type: str  # Helius enhanced ``type`` (e.g. "UNKNOWN"), "" for raw webhooks
    source: str  # Helius ``source`` (e.g. "DRIFT"), "" for raw webhooks
    received_at: int  # ms, receiver clock
    payload: str  # the transaction object as received (JSON text)


DRIFT_EVENTS: Topic[DriftTxEvent] = Topic("onchain:drift:events", DriftTxEvent)


class SeenSignatures(Protocol):
    """Signatures already delivered, kept across restarts (storage implements it with SQLite and an
    expiry), so a Helius retry after a restart is recognised as a duplicate."""

    def contains(self, signature: str, now_ms: int) -> bool: ...

    def add(self, signatures: list[str], now_ms: int) -> None:
        """Remember ``signatures`` durably before the delivery is acknowledged (raises OSError or
        sqlite3.Error on a failed write)."""
        ...
