"""What the chain says about a signed transaction: the states of one send and the evidence rules.

A transaction is **landed** when its signature has a ``confirmed``/``finalized`` status without an
error (landed with an error = **failed**: it took effect as a failure and can never land again).
It is **not landed** only when the chain proves it cannot land any more: the block height is past
its ``lastValidBlockHeight`` *and* its signature is absent from the chain's history —
``getSignatureStatuses`` with ``searchTransactionHistory`` answered null *and*, when the venue
names an account the transaction writes, that account's signature list (``getSignaturesForAddress``)
does not hold it — *and* the venue's probe of the account does not show the effect. Anything else
(no answer, an HTTP error, statuses unavailable, a probe that cannot tell) leaves it **unknown**.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from execution.solana_send.tx import SignedTx


class Landing(StrEnum):
    SIGNED = "signed"  # journaled, not broadcast yet
    SENT = "sent"  # an RPC accepted it; not confirmed yet
    UNKNOWN = "unknown"  # maybe landed: no answer / HTTP error / statuses unavailable
    LANDED = "landed"
    FAILED = "failed"  # landed with an error: it took no effect and never will
    NOT_LANDED = "not_landed"  # blockhash expired and the signature is absent from the history
    REFUSED = "refused"  # the node answered the first broadcast with an error: never forwarded

    @property
    def final(self) -> bool:
        return self in (Landing.LANDED, Landing.FAILED, Landing.NOT_LANDED, Landing.REFUSED)


#: the effect is visible on chain (True), certainly not (False), or cannot be told now (None)
Probe = Callable[[], Awaitable[bool | None]]


@dataclass
class Submission:
    """One intended transaction: its signed copies (a copy is re-signed only after the previous
    one provably cannot land), its state, and events for waiters."""

    kind: str
    market: str
    refs: list[str]
    txs: list[SignedTx]
    state: Landing = Landing.SIGNED
    reason: str = ""
    signature: str = ""  # the copy that landed (or failed on chain)
    sends: int = 0  # broadcasts made
    error: Any = None  # the on-chain error of a failed transaction
    slot: int = 0  # the slot the landed (or failed) copy is in, when the chain said (0 = unknown)
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def current(self) -> SignedTx:
        return self.txs[-1]

    @property
    def signatures(self) -> list[str]:
        return [t.signature for t in self.txs]

    @property
    def final(self) -> bool:
        return self.state.final

    @property
    def landed(self) -> bool:
        return self.state == Landing.LANDED

    def describe(self) -> str:
        sigs = ", ".join(self.signatures)
        return f"{self.kind} {self.state}" + (f" ({self.reason})" if self.reason else "") + f" [{sigs}]"


@dataclass(frozen=True)
class Found:
    signature: str
    err: Any  # None: it took effect
    slot: int = 0  # the slot it landed in (0 = not said)


def _slot(d: dict[str, Any]) -> int:
    s = d.get("slot")
    return s if isinstance(s, int) and not isinstance(s, bool) and s > 0 else 0


def landed_status(statuses: Sequence[dict[str, Any] | None], signatures: Sequence[str]) -> Found | None:
    """The first signature with a confirmed/finalized status (``processed`` may still be dropped)."""
    for sig, st in zip(signatures, statuses, strict=False):
        if st and st.get("confirmationStatus") in ("confirmed", "finalized"):
            return Found(sig, st.get("err"), _slot(st))
    return None


def in_signature_list(entries: Sequence[dict[str, Any]], signatures: Sequence[str]) -> Found | None:
    mine = set(signatures)
    for e in entries:
        if e.get("signature") in mine:
            return Found(str(e["signature"]), e.get("err"), _slot(e))
    return None


def list_covers(entries: Sequence[dict[str, Any]], limit: int, min_slot: int) -> bool:
    """Does an account's signature list reach back to ``min_slot`` (a full page may not)?"""
    if len(entries) < limit:
        return True
    oldest = min((int(e.get("slot", 0)) for e in entries), default=0)
    return oldest <= min_slot
