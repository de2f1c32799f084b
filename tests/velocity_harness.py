"""Shared setup for the Velocity venue tests: local RPC + simulated Velocity + a VelocityVenue
signing as the delegate through the Drift sender. Not a test module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from core.clock import EventClock
from execution.drift.rpc import RpcClient
from execution.drift.sender import SendConfig, TxSender
from execution.signers.base import KeypairSigner
from execution.velocity.chain import VelocityChain
from execution.velocity.send import SenderPort
from execution.velocity.venue import TagBinding, VelocityVenue
from tests.solana_rpc import LocalSolanaRpc
from tests.velocity_sim import VelocitySim

T0 = 1_700_000_000_000
FAST = SendConfig(
    schedule_s=(0.05, 0.05, 0.05, 0.05),
    poll_s=0.01,
    expiry_wait_s=1.0,
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
    rpc = await LocalSolanaRpc().start()
    owner, delegate = Keypair(), Keypair()
    pid = program_id or Pubkey.new_unique()
    sim = VelocitySim(rpc, pid, owner.pubkey(), delegate.pubkey(), idl=idl)
    client = RpcClient(rpc.url, timeout_s=2.0)
    chain = VelocityChain(client, pid, owner.pubkey(), delegate.pubkey())
    port = SenderPort(TxSender(client, cfg), KeypairSigner(delegate, "delegate"), [chain.user_pubkey])
    bindings: list[TagBinding] = []
    venue = VelocityVenue(chain, port, EventClock(T0), poll_s=0.05, on_bind=bindings.append)
    env = VelocityEnv(rpc, sim, venue, owner, delegate, pid, client, bindings)
    if start:
        await venue.start(poll=False)
    return env
