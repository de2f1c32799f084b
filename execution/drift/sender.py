"""Build, sign, send and confirm Drift transactions (v0 messages, explicit lookup tables).

driftpy 0.8.89 quirks avoided here (verified against its source):

* ``DriftClient.send_ixs`` with ``tx_version=0`` calls ``fetch_market_lookup_table_accounts()``
  (an RPC round trip per table) on *every* send unless ``lookup_tables`` is passed; we never call
  it: lookup tables are fetched once by the caller and compiled in here;
* ``tx_version=Legacy`` calls ``tx_sender.get_legacy_tx`` which ``StandardTxSender`` does not
  have (AttributeError): we only build v0 messages ourselves;
* its senders sign with ``wallet.payer`` (a Keypair); we sign the serialized message through a
  :class:`execution.signers.base.Signer` (local key or Ledger).

Priority fee: compute-unit price = the configured percentile of ``getRecentPrioritizationFees``
for the written accounts, capped by ``priority_fee_cap`` (micro-lamports per CU).

Confirmation (:meth:`TxSender.confirm`): poll ``getSignatureStatuses`` through windows of
``schedule_s`` (30, 45, 60, 90 s by default). At the end of each window the caller's ``landed``
check runs (the User account shows the order by user order id: nothing is sent again); then the
transaction is re-broadcast: the *same* signed bytes while its blockhash is still valid (it may
still land: a re-signed copy could land twice), a copy signed over a *fresh* blockhash only once
the previous one has expired (it can no longer land). After the last window the sender waits
(bounded by ``expiry_wait_s``) until the last blockhash has expired, checks once more, and only
then reports failure: a failure never leaves a transaction that could still land.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from execution.drift.rpc import RpcClient, RpcError
from execution.signers.base import Signer

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class SendConfig:
    schedule_s: tuple[float, ...] = (30.0, 45.0, 60.0, 90.0)
    poll_s: float = 1.0
    priority_fee_cap: int = 200_000
    priority_fee_percentile: float = 75.0
    compute_unit_limit: int = 400_000
    expiry_wait_s: float = 90.0
    fee_cache_s: float = 10.0


@dataclass(frozen=True)
class SignedTx:
    raw: bytes
    signature: str
    blockhash: Hash
    message: MessageV0


@dataclass
class Outcome:
    landed: bool
    signature: str = ""
    reason: str = ""
    sends: int = 0
    signatures: list[str] = field(default_factory=list)


def percentile(values: Sequence[int], pct: float) -> int:
    if not values:
        return 0
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, round(pct / 100 * (len(xs) - 1))))
    return int(xs[k])


class TxSender:
    def __init__(
        self,
        rpc: RpcClient,
        cfg: SendConfig | None = None,
        lookup_tables: Sequence[AddressLookupTableAccount] = (),
        *,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpc = rpc
        self.cfg = cfg or SendConfig()
        self.lookup_tables = list(lookup_tables)
        self.sleep = sleep
        self.monotonic = monotonic
        self._fee: tuple[float, int] | None = None
        self.last_priority_fee: int | None = None
        #: the network's recent fee (before the cap): what the engine's preflight compares to the cap
        self.last_estimate: int | None = None

    # ------------------------------------------------------------------ fees
    async def priority_fee(self, accounts: Sequence[Pubkey]) -> int:
        """Compute-unit price (micro-lamports): recent fees' percentile, capped; cached briefly."""
        now = self.monotonic()
        if self._fee is not None and now - self._fee[0] < self.cfg.fee_cache_s:
            return self._fee[1]
        try:
            fees = await self.rpc.recent_prioritization_fees(list(accounts))
            estimate = percentile(fees, self.cfg.priority_fee_percentile)
            self.last_estimate = estimate
            cap = self.cfg.priority_fee_cap
            fee = min(estimate, cap) if cap > 0 else estimate
        except RpcError as e:
            log.warning("priority fee unavailable (%s): using the cap", e)
            fee = self.cfg.priority_fee_cap if self._fee is None else self._fee[1]
        self._fee = (now, fee)
        self.last_priority_fee = fee
        return fee

    # ------------------------------------------------------------------ build / send
    async def build(
        self, ixs: Sequence[Instruction], signer: Signer, cu_price: int, blockhash: Hash | None = None
    ) -> SignedTx:
        if blockhash is None:
            blockhash, _ = await self.rpc.latest_blockhash()
        all_ixs = [
            set_compute_unit_limit(self.cfg.compute_unit_limit),
            set_compute_unit_price(cu_price),
            *ixs,
        ]
        msg = MessageV0.try_compile(signer.pubkey(), all_ixs, self.lookup_tables, blockhash)
        sig = await signer.sign_message(to_bytes_versioned(msg))
        tx = VersionedTransaction.populate(msg, [Signature.from_bytes(sig)])
        return SignedTx(raw=bytes(tx), signature=str(tx.signatures[0]), blockhash=blockhash, message=msg)

    async def send(self, tx: SignedTx) -> str:
        sig = await self.rpc.send_transaction(tx.raw)
        if sig != tx.signature:
            log.warning("RPC answered signature %s for %s", sig, tx.signature)
        return tx.signature

    # ------------------------------------------------------------------ confirm
    async def _status(self, sigs: list[str]) -> tuple[str | None, str]:
        """('landed', sig) / ('failed', reason) / (None, '') from getSignatureStatuses."""
        try:
            sts = await self.rpc.signature_statuses(sigs)
        except RpcError as e:
            log.info("getSignatureStatuses failed: %s", e)
            return None, ""
        for sig, st in zip(sigs, sts, strict=False):
            if not st:
                continue
            if st.get("err") is not None:
                return "failed", f"transaction {sig} failed: {st['err']}"
            if st.get("confirmationStatus") in ("confirmed", "finalized"):
                return "landed", sig
        return None, ""

    async def _valid(self, bh: Hash) -> bool | None:
        try:
            return await self.rpc.is_blockhash_valid(bh)
        except RpcError:
            return None  # unknown: treat as possibly valid (never re-sign on unknown)

    async def confirm(
        self,
        first: SignedTx,
        resign: Callable[[], Awaitable[SignedTx]],
        landed: Callable[[], Awaitable[bool]],
    ) -> Outcome:
        """Follow ``first`` through the schedule (module docstring). ``resign`` builds and signs a
        fresh copy; ``landed`` tells whether the intended effect is visible on chain."""
        out = Outcome(landed=False, sends=1, signatures=[first.signature])
        current = first
        windows = self.cfg.schedule_s
        for i, window in enumerate(windows):
            deadline = self.monotonic() + window
            while True:
                what, info = await self._status(out.signatures)
                if what == "landed":
                    out.landed, out.signature = True, info
                    return out
                if what == "failed":
                    out.reason = info
                    return out
                if self.monotonic() >= deadline:
                    break
                await self.sleep(min(self.cfg.poll_s, max(0.0, deadline - self.monotonic())))
            if await self._landed(landed):
                out.landed, out.signature = True, current.signature
                return out
            if i == len(windows) - 1:
                break
            valid = await self._valid(current.blockhash)
            try:
                if valid is False:
                    current = await resign()
                    out.signatures.append(current.signature)
                    log.info("blockhash expired: re-signed as %s", current.signature)
                await self.send(current)
                out.sends += 1
            except RpcError as e:
                log.warning("re-send %d failed: %s", i + 1, e)
            except Exception as e:  # a signer failure: stop re-signing, keep waiting
                log.warning("re-sign failed: %s", e)
        # make sure nothing in flight can still land before declaring failure
        waited_until = self.monotonic() + self.cfg.expiry_wait_s
        while self.monotonic() < waited_until:
            if await self._valid(current.blockhash) is False:
                break
            what, info = await self._status(out.signatures)
            if what == "landed":
                out.landed, out.signature = True, info
                return out
            await self.sleep(self.cfg.poll_s)
        what, info = await self._status(out.signatures)
        if what == "landed":
            out.landed, out.signature = True, info
            return out
        if await self._landed(landed):
            out.landed, out.signature = True, current.signature
            return out
        total = sum(windows)
        out.reason = (
            f"not confirmed after {out.sends} send(s) over {total:g} s "
            f"({len(out.signatures)} signature(s); last blockhash expired)"
        )
        return out

    @staticmethod
    async def _landed(landed: Callable[[], Awaitable[bool]]) -> bool:
        try:
            return await landed()
        except Exception as e:
            log.info("landed check failed: %s", e)
            return False
