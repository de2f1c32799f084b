"""The shared send path (execution/solana_send) against the local RPC, fault by fault: one intended
transaction, at most one landing, and what the sender says equals what the chain holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from core.journal_port import MemoryJournal
from execution.signers.base import KeypairSigner
from execution.solana_send.landing import Landing
from execution.solana_send.rpc import RpcClient
from execution.solana_send.sender import SendConfig, TxSender
from execution.solana_send.tx import SignedTx, TxBuilder
from storage.journal import Journal
from tests.send_harness import REAL_TIMINGS, FakeTime, no_jitter
from tests.solana_rpc import LocalSolanaRpc

DEST = Pubkey.new_unique()


class Env:
    def __init__(self, rpc: LocalSolanaRpc, cfg: SendConfig, journal: MemoryJournal | Journal | None) -> None:
        self.rpc = rpc
        self.time = FakeTime()
        self.client = RpcClient(rpc.url, timeout_s=0.5)
        self.payer = KeypairSigner(Keypair())
        self.builder = TxBuilder(self.client, fee_cache_s=0.0)
        self.journal = journal if journal is not None else MemoryJournal()
        self.sender = TxSender(
            self.client,
            cfg,
            journal=self.journal,
            venue="test",
            sleep=self.time.sleep,
            monotonic=self.time.monotonic,
            jitter=no_jitter,
        )

    async def sign(self) -> SignedTx:
        ix = transfer(TransferParams(from_pubkey=self.payer.pubkey(), to_pubkey=DEST, lamports=1))
        return await self.builder.build([ix], self.payer, 100)

    async def submit(self, resign: bool = True):  # type: ignore[no-untyped-def]
        tx = await self.sign()
        sub = self.sender.submit(
            tx,
            kind="transfer",
            market="TEST",
            refs=["t1"],
            address=DEST,
            resign=self.sign if resign else None,
        )
        await self.sender.wait_ack(sub)
        return sub

    async def close(self) -> None:
        await self.sender.close()
        await self.client.close()


async def env(cfg: SendConfig = REAL_TIMINGS, journal: MemoryJournal | Journal | None = None) -> Env:
    rpc = await LocalSolanaRpc(height_step=5).start()
    return Env(rpc, cfg, journal)


def landed_count(e: Env) -> int:
    return len(e.rpc.landed)


async def test_clean_send_lands_once_and_is_journaled_before_broadcast() -> None:
    e = await env()
    seen: list[str] = []
    e.rpc.on_send.append(lambda tx: seen.append(e.journal.get_send(tx.signature).state))  # type: ignore[union-attr]
    try:
        sub = await e.submit()
        await asyncio.wait_for(e.sender.wait(sub), 5)
        assert sub.state == Landing.LANDED and landed_count(e) == 1
        assert seen == ["signed"], "the row existed before the RPC saw the transaction"
        row = e.journal.get_send(sub.signature)
        assert row is not None and row.state == "landed" and row.refs == ["t1"] and row.raw
        assert row.blockhash == str(sub.current.blockhash)
        assert row.last_valid_block_height == sub.current.last_valid_block_height > e.rpc.block_height - 150
    finally:
        await e.close()
        await e.rpc.close()


async def test_refused_by_the_node_is_final_and_never_forwarded() -> None:
    e = await env()
    try:
        e.rpc.fault("error", -32003, "Transaction signature verification failure", method="sendTransaction")
        sub = await e.submit()
        await asyncio.wait_for(e.sender.wait(sub), 5)
        assert sub.state == Landing.REFUSED and landed_count(e) == 0
        assert "verification failure" in sub.reason
    finally:
        await e.close()
        await e.rpc.close()


@pytest.mark.parametrize(
    "fault", [("accept_then_http", 502), ("accept_then_http", 500), ("accept_then_drop",)]
)
async def test_error_after_the_rpc_accepted_is_unknown_then_landed_once(fault: tuple[object, ...]) -> None:
    e = await env()
    try:
        e.rpc.fault(*fault, method="sendTransaction")
        sub = await e.submit()
        assert sub.state == Landing.UNKNOWN, "an HTTP error after the request left means maybe landed"
        await asyncio.wait_for(e.sender.wait(sub), 5)
        assert sub.state == Landing.LANDED and landed_count(e) == 1 and len(set(sub.signatures)) == 1
    finally:
        await e.close()
        await e.rpc.close()


async def test_slow_send_answering_after_the_caller_gave_up() -> None:
    """sendTransaction answers after 8 s (scaled: 0.4 s against a 0.3 s ack wait): unknown at once,
    never re-signed, landed once."""
    e = await env()
    try:
        e.rpc.fault("slow", 0.4, method="sendTransaction")
        sub = await e.submit()
        assert sub.state == Landing.UNKNOWN and "no answer" in sub.reason
        await asyncio.wait_for(e.sender.wait(sub), 5)
        assert sub.state == Landing.LANDED and landed_count(e) == 1 and len(sub.txs) == 1
    finally:
        await e.close()
        await e.rpc.close()


async def test_statuses_null_for_the_whole_window_found_in_history_never_resigned() -> None:
    e = await env()
    try:
        e.rpc.statuses = "null_recent"
        sub = await e.submit()
        await asyncio.wait_for(e.sender.wait(sub), 5)
        assert sub.state == Landing.LANDED and len(sub.txs) == 1 and landed_count(e) == 1
        assert e.time.t - 1000.0 > 10, "it waited for the blockhash to expire before deciding"
        assert sub.sends >= 2, "the same bytes were rebroadcast meanwhile"
        assert {t.signature for t in e.rpc.sent} == {sub.signature}
    finally:
        await e.close()
        await e.rpc.close()


async def test_all_statuses_null_the_account_signature_list_decides() -> None:
    e = await env()
    try:
        e.rpc.statuses = "null"
        sub = await e.submit()
        await asyncio.wait_for(e.sender.wait(sub), 5)
        assert sub.state == Landing.LANDED and len(sub.txs) == 1 and landed_count(e) == 1
    finally:
        await e.close()
        await e.rpc.close()


async def test_dropped_never_lands_not_landed_after_expiry_then_resigned_lands_once() -> None:
    e = await env()
    try:
        drop = {"on": True}
        e.rpc.auto_land = False

        def lander(tx) -> None:  # type: ignore[no-untyped-def]
            if not drop["on"] and e.rpc._blockhash_ok(str(SignedTx.from_raw(tx.raw, 0).blockhash)):
                e.rpc.mark_landed(tx.signature, [str(DEST)])

        e.rpc.on_send.append(lander)
        sub = await e.submit()

        async def stop_dropping() -> None:
            while len(sub.txs) < 2:
                await asyncio.sleep(0.001)
            drop["on"] = False

        task = asyncio.create_task(stop_dropping())
        await asyncio.wait_for(e.sender.wait(sub), 5)
        await task
        assert sub.state == Landing.LANDED and len(sub.txs) == 2 and landed_count(e) == 1
        first = e.journal.get_send(sub.txs[0].signature)
        assert first is not None and first.state == "not_landed"
    finally:
        await e.close()
        await e.rpc.close()


async def test_dropped_without_resign_is_not_landed_only_after_expiry() -> None:
    e = await env()
    try:
        e.rpc.auto_land = False
        sub = await e.submit(resign=False)
        await asyncio.wait_for(e.sender.wait(sub), 5)
        assert sub.state == Landing.NOT_LANDED and landed_count(e) == 0
        assert e.rpc.block_height > sub.current.last_valid_block_height
        assert "absent from the chain's history" in sub.reason
    finally:
        await e.close()
        await e.rpc.close()


async def test_history_unreadable_keeps_it_unknown_until_the_rpc_answers() -> None:
    e = await env()
    try:
        e.rpc.auto_land = False
        e.rpc.sig_list = False  # the account's signature list is not available: cannot decide
        sub = await e.submit(resign=False)
        for _ in range(200):
            await asyncio.sleep(0.002)
            if e.rpc.block_height > sub.current.last_valid_block_height + 50:
                break
        assert not sub.final and sub.state == Landing.UNKNOWN
        e.rpc.sig_list = True
        await asyncio.wait_for(e.sender.wait(sub), 5)
        assert sub.state == Landing.NOT_LANDED
    finally:
        await e.close()
        await e.rpc.close()


async def test_429_bursts_on_every_method_resolve_once_they_stop() -> None:
    e = await env()
    try:
        e.rpc.burst(3, "http", 429, method="sendTransaction")
        e.rpc.burst(5, "http", 429, method="getSignatureStatuses")
        e.rpc.burst(5, "http", 429, method="getBlockHeight")
        sub = await e.submit()
        assert sub.state == Landing.UNKNOWN
        await asyncio.wait_for(e.sender.wait(sub), 5)
        assert sub.state == Landing.LANDED and landed_count(e) == 1 and len(sub.txs) == 1
    finally:
        await e.close()
        await e.rpc.close()


async def test_landed_with_an_error_is_failed_never_resent() -> None:
    e = await env()
    try:
        e.rpc.auto_land = False
        e.rpc.on_send.append(
            lambda tx: e.rpc.mark_landed(
                tx.signature, [str(DEST)], {"InstructionError": [2, {"Custom": 6010}]}
            )
        )
        sub = await e.submit()
        await asyncio.wait_for(e.sender.wait(sub), 5)
        assert sub.state == Landing.FAILED and "6010" in sub.reason and len(sub.txs) == 1
    finally:
        await e.close()
        await e.rpc.close()


async def test_resume_after_restart_rebroadcasts_the_journaled_bytes(tmp_path: Path) -> None:
    """A crash between sign and send: the journal holds the signed bytes; a new sender resumes them."""
    j = Journal(tmp_path / "state.db")
    e = await env(journal=j)
    try:
        tx = await e.sign()
        sub = e.sender.submit(tx, kind="transfer", market="TEST", refs=["t1"], address=DEST)
        await e.sender.close()  # the process dies before anything was broadcast (or followed)
        assert [r.signature for r in j.open_sends()] == [tx.signature]
        assert sub.sends <= 1
        fresh = TxSender(e.client, REAL_TIMINGS, journal=j, sleep=e.time.sleep, monotonic=e.time.monotonic)
        [rec] = j.open_sends()
        again = fresh.resume(rec, address=DEST)
        await asyncio.wait_for(fresh.wait(again), 5)
        assert again.state == Landing.LANDED and again.signature == tx.signature and landed_count(e) == 1
        assert j.open_sends() == []
        await fresh.close()
    finally:
        await e.close()
        await e.rpc.close()
        j.close()
