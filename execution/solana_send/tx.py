"""Signed v0 transactions and the priority fee (no venue knowledge: instructions come from the venue).

driftpy 0.8.89 quirks this avoids (verified against its source): ``DriftClient.send_ixs`` with
``tx_version=0`` fetches the lookup tables on *every* send unless they are passed; the legacy path
calls ``tx_sender.get_legacy_tx``, which ``StandardTxSender`` does not have; its senders sign with
``wallet.payer`` (a Keypair). Here v0 messages are compiled with explicit lookup tables and signed
through a :class:`execution.signers.base.Signer` (local key or Ledger).

Priority fee: compute-unit price = the configured percentile of ``getRecentPrioritizationFees``
for the written accounts, capped by ``priority_fee_cap`` (micro-lamports per CU), cached briefly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from execution.signers.base import Signer
from execution.solana_send.rpc import Blockhash, RpcClient, RpcError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction and what decides whether it can still land."""

    raw: bytes
    signature: str
    blockhash: Hash
    last_valid_block_height: int  # it can only be in a block at or below this height
    min_slot: int  # the chain's slot when the blockhash was fetched: it cannot be in an earlier block

    @classmethod
    def from_raw(cls, raw: bytes, last_valid_block_height: int, min_slot: int = 0) -> SignedTx:
        """Read back a journaled transaction (restart)."""
        tx = VersionedTransaction.from_bytes(raw)
        return cls(
            raw=raw,
            signature=str(tx.signatures[0]),
            blockhash=tx.message.recent_blockhash,
            last_valid_block_height=last_valid_block_height,
            min_slot=min_slot,
        )


def percentile(values: Sequence[int], pct: float) -> int:
    if not values:
        return 0
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, round(pct / 100 * (len(xs) - 1))))
    return int(xs[k])


class TxBuilder:
    """Compiles, signs and prices transactions for one RPC endpoint."""

    def __init__(
        self,
        rpc: RpcClient,
        *,
        compute_unit_limit: int = 400_000,
        priority_fee_cap: int = 200_000,
        priority_fee_percentile: float = 75.0,
        fee_cache_s: float = 10.0,
        lookup_tables: Sequence[AddressLookupTableAccount] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpc = rpc
        self.compute_unit_limit = compute_unit_limit
        self.priority_fee_cap = priority_fee_cap
        self.priority_fee_percentile = priority_fee_percentile
        self.fee_cache_s = fee_cache_s
        self.lookup_tables = list(lookup_tables)
        self.monotonic = monotonic
        self._fee: tuple[float, int] | None = None
        self.last_priority_fee: int | None = None
        #: the network's recent fee (before the cap): what the engine's preflight compares to the cap
        self.last_estimate: int | None = None

    async def priority_fee(self, accounts: Sequence[Pubkey]) -> int:
        """Compute-unit price (micro-lamports): recent fees' percentile, capped; cached briefly."""
        now = self.monotonic()
        if self._fee is not None and now - self._fee[0] < self.fee_cache_s:
            return self._fee[1]
        try:
            fees = await self.rpc.recent_prioritization_fees(list(accounts))
            estimate = percentile(fees, self.priority_fee_percentile)
            self.last_estimate = estimate
            cap = self.priority_fee_cap
            fee = min(estimate, cap) if cap > 0 else estimate
        except RpcError as e:
            log.warning("priority fee unavailable (%s): using the cap", e)
            fee = self.priority_fee_cap if self._fee is None else self._fee[1]
        self._fee = (now, fee)
        self.last_priority_fee = fee
        return fee

    async def build(
        self, ixs: Sequence[Instruction], signer: Signer, cu_price: int, blockhash: Blockhash | None = None
    ) -> SignedTx:
        """Compile a v0 message over a fresh blockhash (unless given) and sign it."""
        if blockhash is None:
            blockhash = await self.rpc.latest_blockhash()
        all_ixs = [
            set_compute_unit_limit(self.compute_unit_limit),
            set_compute_unit_price(cu_price),
            *ixs,
        ]
        msg = MessageV0.try_compile(signer.pubkey(), all_ixs, self.lookup_tables, blockhash.blockhash)
        sig = await signer.sign_message(to_bytes_versioned(msg))
        tx = VersionedTransaction.populate(msg, [Signature.from_bytes(sig)])
        return SignedTx(
            raw=bytes(tx),
            signature=str(tx.signatures[0]),
            blockhash=blockhash.blockhash,
            last_valid_block_height=blockhash.last_valid_block_height,
            min_slot=blockhash.slot,
        )
