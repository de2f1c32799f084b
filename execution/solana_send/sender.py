"""One intended transaction, at most one landing: journal, broadcast, rebroadcast, resolve.

:meth:`TxSender.submit` journals the signed transaction (signature, blockhash,
``lastValidBlockHeight``, the signed bytes, the orders it concerns) *before* its first broadcast,
then follows it in a task the sender owns (a caller that times out or is cancelled never stops it):

* the first broadcast: accepted → ``sent``; a JSON-RPC error answered by the node → ``refused``
  (final: it was never forwarded); a timeout, a reset or an HTTP error → ``unknown`` (the request
  may have been forwarded); no answer within ``ack_wait_s`` → ``unknown`` (the caller gets its
  answer, the broadcast goes on);
* every ``poll_s``: ``getSignatureStatuses`` of every copy; confirmed → ``landed`` (``failed`` when
  it landed with an error); not confirmed after ``unknown_after_s`` → ``unknown``;
* every ``rebroadcast_s``, while the block height is not past ``lastValidBlockHeight``: the
  *same* bytes again (a copy can land at most once);
* once the finalized block height is past ``lastValidBlockHeight``: the evidence of
  :mod:`execution.solana_send.landing`; absent everywhere → ``not_landed``, and only then, if the
  caller gave ``resign`` and ``max_resigns`` allows, a replacement is signed over a fresh blockhash
  (journaled before its broadcast) and followed the same way;
* RPC errors: capped exponential backoff, the state stays ``unknown``; no local timeout ever turns
  ``unknown`` into failed. :meth:`TxSender.close` (shutdown) leaves it ``unknown`` in the journal;
  :meth:`TxSender.resume` follows it again after a restart (same bytes while they can land).

Interface for a venue (Drift today, Velocity next): build the instructions, ``await
builder.build(ixs, signer, fee)``, ``submit(tx, kind=..., market=..., refs=[...], resign=...,
probe=..., address=<an account the transaction writes>, on_change=...)``, ``await
wait_ack(sub)``, then read ``sub.state`` (once landed, ``sub.signature`` and ``sub.slot``: a read of
the venue's account from before that slot proves nothing about it); ``on_change`` is called on
every state change.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from solders.pubkey import Pubkey

from core.journal_port import JournaledSend, SendJournal
from execution.solana_send.crash import crash_point
from execution.solana_send.landing import (
    Found,
    Landing,
    Probe,
    Submission,
    in_signature_list,
    landed_status,
    list_covers,
)
from execution.solana_send.rpc import RpcClient, RpcError
from execution.solana_send.tx import SignedTx, TxBuilder

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
Resign = Callable[[], Awaitable[SignedTx]]
OnChange = Callable[[Submission], None]
SIG_LIST_LIMIT = 1000


@dataclass(frozen=True)
class SendConfig:
    rebroadcast_s: float = 2.0  # the same bytes again while they can land
    poll_s: float = 1.0  # signature statuses
    unknown_after_s: float = 10.0  # sent but not confirmed for this long: reported unknown
    ack_wait_s: float = 2.0  # how long a caller waits for the first broadcast's answer
    max_resigns: int = 1  # replacements signed after a copy provably cannot land
    backoff_max_s: float = 10.0  # RPC errors while following
    priority_fee_cap: int = 200_000
    priority_fee_percentile: float = 75.0
    compute_unit_limit: int = 400_000
    fee_cache_s: float = 10.0


class TxSender:
    def __init__(
        self,
        rpc: RpcClient,
        cfg: SendConfig | None = None,
        *,
        journal: SendJournal | None = None,
        venue: str = "solana",
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.rpc = rpc
        self.cfg = cfg or SendConfig()
        self.journal = journal
        self.venue = venue
        self.sleep = sleep
        self.monotonic = monotonic
        self.now_ms = now_ms
        self.jitter = jitter
        self._tasks: set[asyncio.Task[None]] = set()
        self.submissions: list[Submission] = []
        c = self.cfg
        self.builder = TxBuilder(
            rpc,
            compute_unit_limit=c.compute_unit_limit,
            priority_fee_cap=c.priority_fee_cap,
            priority_fee_percentile=c.priority_fee_percentile,
            fee_cache_s=c.fee_cache_s,
            monotonic=monotonic,
        )

    # ------------------------------------------------------------------ public
    def submit(
        self,
        tx: SignedTx,
        *,
        kind: str,
        market: str,
        refs: list[str],
        resign: Resign | None = None,
        probe: Probe | None = None,
        address: Pubkey | None = None,
        on_change: OnChange | None = None,
    ) -> Submission:
        """Journal ``tx`` (raises :class:`JournalError`: then nothing was broadcast) and follow it."""
        sub = Submission(kind=kind, market=market, refs=list(refs), txs=[tx])
        self._record(sub, tx)
        crash_point("after_sign")
        self._spawn(sub, self._run(sub, resign, probe, address, on_change, resumed=False))
        return sub

    def resume(
        self,
        rec: JournaledSend,
        *,
        probe: Probe | None = None,
        address: Pubkey | None = None,
        on_change: OnChange | None = None,
    ) -> Submission:
        """Follow a journaled transaction again after a restart (never re-signed: whatever it was
        for is decided again by its owner once this one is resolved)."""
        tx = SignedTx.from_raw(base64.b64decode(rec.raw), rec.last_valid_block_height, rec.min_slot)
        sub = Submission(
            kind=rec.kind,
            market=rec.market,
            refs=list(rec.refs),
            txs=[tx],
            state=Landing.UNKNOWN,
            reason="resumed after a restart",
        )
        sub.acked.set()
        self._spawn(sub, self._run(sub, None, probe, address, on_change, resumed=True))
        return sub

    async def wait_ack(self, sub: Submission, timeout: float | None = None) -> None:
        """Until the first broadcast was answered, or ``ack_wait_s`` passed — then ``sub`` is
        ``unknown``: the sender's own timer marks it before it lets the caller go (a second timer of
        the same length here would race it; Python 3.12 fires them in the other order). ``timeout``
        is only a backstop."""
        limit = 2 * self.cfg.ack_wait_s + 1.0 if timeout is None else timeout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sub.acked.wait(), limit)

    async def wait(self, sub: Submission) -> Submission:
        await sub.done.wait()
        return sub

    def pending(self, market: str | None = None) -> list[Submission]:
        return [s for s in self.submissions if not s.final and (market is None or s.market == market)]

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop following (shutdown): what is not resolved stays ``unknown`` in the journal."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    # ------------------------------------------------------------------ internals
    def _spawn(self, sub: Submission, coro: Awaitable[None]) -> None:
        self.submissions.append(sub)
        self.submissions = [s for s in self.submissions if not s.final or s is sub][-1000:]
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _record(self, sub: Submission, tx: SignedTx) -> None:
        if self.journal is None:
            return
        now = self.now_ms()
        self.journal.record_send(
            JournaledSend(
                signature=tx.signature,
                kind=sub.kind,
                venue=self.venue,
                market=sub.market,
                refs=sub.refs,
                blockhash=str(tx.blockhash),
                last_valid_block_height=tx.last_valid_block_height,
                min_slot=tx.min_slot,
                raw=base64.b64encode(tx.raw).decode(),
                state="signed",
                created_ms=now,
                updated_ms=now,
            )
        )

    def _journal_state(self, signature: str, state: Landing, detail: str) -> None:
        if self.journal is None:
            return
        try:
            self.journal.update_send(signature, str(state), detail=detail, ts_ms=self.now_ms())
        except Exception as e:  # a storage failure: the in-memory state stays authoritative
            log.error("journal: cannot record %s as %s: %s", signature, state, e)

    def _set(self, sub: Submission, state: Landing, reason: str, on_change: OnChange | None) -> None:
        if sub.state == state and sub.reason == reason:
            return
        sub.state, sub.reason = state, reason
        sig = sub.signature if state in (Landing.LANDED, Landing.FAILED) else sub.current.signature
        self._journal_state(sig, state, reason)
        if state.final:
            for t in sub.txs:  # every other copy provably did not land (or is moot: one landed)
                if t.signature != sig:
                    self._journal_state(t.signature, Landing.NOT_LANDED, f"superseded: {sig} {state}")
        if on_change is not None:
            try:
                on_change(sub)
            except Exception:
                log.exception("send state listener failed")

    async def _broadcast(self, sub: Submission, tx: SignedTx) -> RpcError | None:
        sub.sends += 1
        try:
            sig = await self.rpc.send_transaction(tx.raw)
        except RpcError as e:
            return e
        if sig != tx.signature:
            log.warning("RPC answered signature %s for %s", sig, tx.signature)
        return None

    async def _first(self, sub: Submission, on_change: OnChange | None) -> asyncio.Task[RpcError | None]:
        task: asyncio.Task[RpcError | None] = asyncio.ensure_future(self._broadcast(sub, sub.current))
        done, _ = await asyncio.wait({task}, timeout=self.cfg.ack_wait_s)
        if not done:
            self._set(
                sub,
                Landing.UNKNOWN,
                f"no answer to sendTransaction within {self.cfg.ack_wait_s:g} s",
                on_change,
            )
        else:
            self._classify_first(sub, task.result(), on_change)
        sub.acked.set()
        crash_point("after_send")
        return task

    def _classify_first(self, sub: Submission, err: RpcError | None, on_change: OnChange | None) -> None:
        if err is None:
            if sub.state == Landing.SIGNED:
                self._set(sub, Landing.SENT, "", on_change)
        elif err.answered and sub.sends == 1:
            sub.error = err
            self._set(sub, Landing.REFUSED, f"sendTransaction refused: {err}", on_change)
        else:
            self._set(sub, Landing.UNKNOWN, f"sendTransaction may have been forwarded: {err}", on_change)

    async def _run(
        self,
        sub: Submission,
        resign: Resign | None,
        probe: Probe | None,
        address: Pubkey | None,
        on_change: OnChange | None,
        *,
        resumed: bool,
    ) -> None:
        inflight: asyncio.Task[RpcError | None] | None = None
        try:
            if not resumed:
                inflight = await self._first(sub, on_change)
                if sub.final:
                    return
            await self._follow(sub, resign, probe, address, on_change, inflight)
        finally:
            if inflight is not None and not inflight.done():
                inflight.cancel()
            sub.acked.set()
            if sub.final:
                sub.done.set()

    async def _follow(
        self,
        sub: Submission,
        resign: Resign | None,
        probe: Probe | None,
        address: Pubkey | None,
        on_change: OnChange | None,
        inflight: asyncio.Task[RpcError | None] | None,
    ) -> None:
        cfg = self.cfg
        started = last_bcast = self.monotonic()
        if sub.sends == 0:  # resumed after a crash before its first broadcast: send it now
            last_bcast -= cfg.rebroadcast_s
        resigns = 0
        delay = cfg.poll_s
        while True:
            if inflight is not None and inflight.done():
                if sub.sends == 1:  # the first broadcast answered late
                    self._classify_first(sub, inflight.result(), on_change)
                inflight = None
                if sub.final:
                    return
            ok = True
            found: Found | None = None
            try:
                found = landed_status(await self.rpc.signature_statuses(sub.signatures), sub.signatures)
            except RpcError as e:
                ok = False
                log.info("getSignatureStatuses failed: %s", e)
            if found is not None:
                self._finish(sub, found, on_change)
                return
            now = self.monotonic()
            if sub.state == Landing.SENT and now - started >= cfg.unknown_after_s:
                self._set(sub, Landing.UNKNOWN, f"not confirmed after {now - started:.0f} s", on_change)
            height: int | None = None
            try:
                height = await self.rpc.block_height()
            except RpcError as e:
                ok = False
                log.info("getBlockHeight failed: %s", e)
            cur = sub.current
            if height is not None and height > cur.last_valid_block_height:
                verdict = await self._after_expiry(sub, probe, address)
                if isinstance(verdict, Found):
                    self._finish(sub, verdict, on_change)
                    return
                if verdict is False:  # provably not landed
                    if resign is not None and resigns < cfg.max_resigns:
                        self._journal_state(cur.signature, Landing.NOT_LANDED, "blockhash expired; re-signed")
                        try:
                            nxt = await resign()
                            self._record(sub, nxt)
                        except Exception as e:  # signer / RPC / journal: nothing new was broadcast
                            log.warning("re-sign failed: %s", e)
                            ok = False
                        else:
                            resigns += 1
                            sub.txs.append(nxt)
                            log.info(
                                "%s: %s cannot land; re-signed as %s", sub.kind, cur.signature, nxt.signature
                            )
                            await self._broadcast(sub, nxt)
                            last_bcast = self.monotonic()
                            continue
                    else:
                        why = (
                            f"blockhash expired (block height {height} > {cur.last_valid_block_height}) and "
                            f"the signature is absent from the chain's history"
                        )
                        self._set(sub, Landing.NOT_LANDED, why, on_change)
                        return
                else:
                    ok = False
                    if sub.state != Landing.UNKNOWN:
                        self._set(
                            sub,
                            Landing.UNKNOWN,
                            "blockhash expired; the chain's history cannot be read",
                            on_change,
                        )
            elif inflight is None and now - last_bcast >= cfg.rebroadcast_s:
                inflight = asyncio.ensure_future(self._broadcast(sub, cur))
                last_bcast = now
            delay = cfg.poll_s if ok else min(cfg.backoff_max_s, max(delay, cfg.poll_s) * 2)
            await self.sleep(delay * (1.0 + 0.2 * self.jitter()) if not ok else delay)

    async def _after_expiry(
        self, sub: Submission, probe: Probe | None, address: Pubkey | None
    ) -> Found | bool | None:
        """Found (landed / failed), False (provably not landed) or None (cannot tell yet)."""
        sigs = sub.signatures
        try:
            found = landed_status(await self.rpc.signature_statuses(sigs, search_history=True), sigs)
        except RpcError as e:
            log.info("getSignatureStatuses (history) failed: %s", e)
            return None
        if found is not None:
            return found
        if address is not None:
            try:
                entries = await self.rpc.signatures_for_address(address, SIG_LIST_LIMIT)
            except RpcError as e:
                log.info("getSignaturesForAddress failed: %s", e)
                return None
            hit = in_signature_list(entries, sigs)
            if hit is not None:
                return hit
            if not list_covers(entries, SIG_LIST_LIMIT, min(t.min_slot for t in sub.txs)):
                return None
        if probe is not None:
            try:
                seen = await probe()
            except Exception as e:
                log.info("probe failed: %s", e)
                return None
            if seen is True:
                return Found(sub.current.signature, None)
            if seen is None:
                return None
        return False

    def _finish(self, sub: Submission, found: Found, on_change: OnChange | None) -> None:
        sub.signature, sub.slot = found.signature, found.slot
        if found.err is None:
            self._set(sub, Landing.LANDED, "", on_change)
        else:
            sub.error = found.err
            self._set(sub, Landing.FAILED, f"landed with an error: {found.err}", on_change)
