"""Shared setup for the Drift venue tests: local RPC + simulated Drift + a DriftVenue. Not a test module."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from core.clock import EventClock
from execution.drift.chain import DriftChain
from execution.drift.venue import DriftVenue, TagBinding
from execution.signers.base import KeypairSigner
from execution.solana_send.rpc import RpcClient
from execution.solana_send.sender import SendConfig, TxSender
from tests.drift_sim import DriftSim
from tests.solana_rpc import LocalSolanaRpc

T0 = 1_700_000_000_000
#: real-time but short waits (the chain moves 5 slots per getBlockHeight: expiry after ~30 polls)
FAST = SendConfig(
    rebroadcast_s=0.02,
    poll_s=0.005,
    unknown_after_s=0.5,
    ack_wait_s=0.5,
    max_resigns=1,
    backoff_max_s=0.05,
    priority_fee_cap=3000,
    fee_cache_s=0.0,
)


@dataclass
class DriftEnv:
    rpc: LocalSolanaRpc
    sim: DriftSim
    venue: DriftVenue
    owner: Keypair
    delegate: Keypair
    program_id: Pubkey
    client: RpcClient
    bindings: list[TagBinding]

    async def close(self) -> None:
        await self.venue.close()
        await self.client.close()
        await self.rpc.close()


async def drift_env(cfg: SendConfig = FAST, *, start: bool = True) -> DriftEnv:
    rpc = await LocalSolanaRpc(height_step=5).start()
    owner, delegate = Keypair(), Keypair()
    pid = Pubkey.new_unique()
    sim = DriftSim(rpc, pid, owner.pubkey(), delegate.pubkey())
    client = RpcClient(rpc.url, timeout_s=2.0)
    chain = DriftChain(client, pid, owner.pubkey(), delegate.pubkey())
    bindings: list[TagBinding] = []
    venue = DriftVenue(
        chain,
        TxSender(client, cfg),
        KeypairSigner(delegate, "delegate"),
        EventClock(T0),
        poll_s=0.05,
        on_bind=bindings.append,
    )
    env = DriftEnv(rpc, sim, venue, owner, delegate, pid, client, bindings)
    if start:
        await venue.start(poll=False)
    return env


async def communicate(proc: asyncio.subprocess.Process, timeout: float) -> tuple[bytes, bytes]:
    """``proc.communicate()`` bounded by ``timeout``; the process is killed if it is still running
    (a hung CLI never outlives its test)."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        return out or b"", err or b""
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 10)
