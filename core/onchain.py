"""On-chain Drift transactions received from Helius webhooks (published on ``onchain:drift:events``)."""

from __future__ import annotations

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
