"""The send path behind the Velocity venue: a thin port the venue hands instructions to.

The venue builds instructions (pure functions, :mod:`execution.velocity.instructions`) and calls
:meth:`TxPort.submit`; signing, sending, rebroadcasting and confirming are the port's. The
outcome comes back through ``done`` (awaited) once the chain has decided: ``landed`` True, or False only
when nothing sent can still land. ``submit`` raises :class:`SendRefused` when nothing left this
machine or the RPC refused it (safe to report rejected); a send whose answer was lost is not an
error: it is followed like any other (it may have landed).

:class:`SenderPort` adapts the Drift venue's sender (``execution.drift.sender.TxSender``:
priority fee, v0 message, signature by a :class:`execution.signers.base.Signer` (local key or
Ledger), confirmation windows; same bytes re-broadcast while the blockhash is valid, a fresh
signature only once it has expired). :class:`DryRunPort` records what would be signed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from execution.drift.rpc import RpcError
from execution.drift.sender import Outcome, SignedTx, TxSender
from execution.signers.base import Signer

log = logging.getLogger(__name__)
Landed = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class SendOutcome:
    landed: bool
    signature: str = ""
    reason: str = ""


class SendRefused(Exception):
    """Nothing was sent, or the RPC refused the transaction: it cannot land."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class TxPort(Protocol):
    signer_pubkey: Pubkey

    async def submit(
        self,
        ixs: Sequence[Instruction],
        *,
        label: str,
        landed: Landed,
        done: Callable[[SendOutcome], Awaitable[None]],
    ) -> str:
        """Sign and send ``ixs`` in one transaction; returns its signature once it has left."""
        ...

    def priority_fee_estimate(self) -> int | None:
        """The network's recent fee before the cap (the engine's preflight compares it)."""
        ...

    async def wait_idle(self) -> None: ...

    async def close(self) -> None: ...


class SenderPort:
    """:class:`TxPort` over ``execution.drift.sender.TxSender`` (see the module docstring)."""

    def __init__(self, sender: TxSender, signer: Signer, fee_accounts: Sequence[Pubkey] = ()) -> None:
        self.sender = sender
        self.signer = signer
        self.signer_pubkey = signer.pubkey()
        self.fee_accounts = list(fee_accounts)
        self._tasks: set[asyncio.Task[None]] = set()

    def priority_fee_estimate(self) -> int | None:
        return self.sender.last_estimate

    async def submit(
        self,
        ixs: Sequence[Instruction],
        *,
        label: str,
        landed: Landed,
        done: Callable[[SendOutcome], Awaitable[None]],
    ) -> str:
        fee = await self.sender.priority_fee(self.fee_accounts)

        async def build() -> SignedTx:
            return await self.sender.build(list(ixs), self.signer, fee)

        try:
            tx = await build()
        except RpcError as e:
            raise SendRefused(f"cannot build the transaction: {e}", retryable=e.retryable) from None
        try:
            await self.sender.send(tx)
        except RpcError as e:
            if e.code is not None:
                raise SendRefused(f"sendTransaction refused: {e}", retryable=e.retryable) from None
            log.warning("send of %s (%s) ambiguous (%s): following it", tx.signature, label, e)

        async def follow() -> None:
            out: Outcome = await self.sender.confirm(tx, build, landed)
            await done(SendOutcome(out.landed, out.signature or tx.signature, out.reason))

        task = asyncio.create_task(follow(), name=f"velocity-confirm-{label}-{tx.signature[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return tx.signature

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()


@dataclass
class DryRunPort:
    """Records each transaction instead of signing it (``autotrader intent --dry-run``)."""

    signer_pubkey: Pubkey
    describe: Callable[[Instruction], dict[str, Any]]
    transactions: list[dict[str, Any]] = field(default_factory=list)

    async def submit(
        self,
        ixs: Sequence[Instruction],
        *,
        label: str,
        landed: Landed,
        done: Callable[[SendOutcome], Awaitable[None]],
    ) -> str:
        self.transactions.append(
            {
                "label": label,
                "fee_payer": str(self.signer_pubkey),
                "instructions": [self.describe(ix) for ix in ixs],
            }
        )
        raise SendRefused("dry run: nothing is signed or sent")

    def priority_fee_estimate(self) -> int | None:
        return None

    async def wait_idle(self) -> None:
        return None

    async def close(self) -> None:
        return None
