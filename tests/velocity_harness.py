"""Shared setup for the Velocity venue tests: local RPC + simulated Velocity + a VelocityVenue
signing as the delegate through the shared send path (execution/solana_send), journaled. Not a test module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from core.clock import EventClock
from core.journal_port import MemoryJournal
from execution.signers.base import KeypairSigner
from execution.solana_send.rpc import RpcClient
from execution.solana_send.sender import SendConfig, TxSender
from execution.velocity.chain import VelocityChain
from execution.velocity.venue import TagBinding, VelocityVenue
from tests.solana_rpc import LocalSolanaRpc
from tests.velocity_sim import VelocitySim

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
class VelocityEnv:
    rpc: LocalSolanaRpc
    sim: VelocitySim
    venue: VelocityVenue
    owner: Keypair
    delegate: Keypair
    program_id: Pubkey
    client: RpcClient
    bindings: list[TagBinding]
    journal: MemoryJournal

    async def close(self) -> None:
        await self.venue.close()
        await self.client.close()
        await self.rpc.close()


async def velocity_env(
    cfg: SendConfig = FAST,
    *,
    start: bool = True,
    idl: dict[str, Any] | None = None,
    program_id: Pubkey | None = None,
) -> VelocityEnv:
    rpc = await LocalSolanaRpc(height_step=5).start()
    owner, delegate = Keypair(), Keypair()
    pid = program_id or Pubkey.new_unique()
    sim = VelocitySim(rpc, pid, owner.pubkey(), delegate.pubkey(), idl=idl)
    client = RpcClient(rpc.url, timeout_s=2.0)
    chain = VelocityChain(client, pid, owner.pubkey(), delegate.pubkey())
    journal = MemoryJournal()
    sender = TxSender(client, cfg, journal=journal, venue="velocity")
    bindings: list[TagBinding] = []
    venue = VelocityVenue(
        chain,
        sender,
        KeypairSigner(delegate, "delegate"),
        EventClock(T0),
        poll_s=0.05,
        on_bind=bindings.append,
    )
    env = VelocityEnv(rpc, sim, venue, owner, delegate, pid, client, bindings, journal)
    if start:
        await venue.start(poll=False)
    return env
