"""Does an Anchor program still dispatch an instruction? Ask the cluster, sign nothing.

Anchor's dispatcher matches the 8-byte discriminator before it looks at any account; an
instruction the program no longer has fails with ``InstructionFallbackNotFound`` (Anchor error
101). So ``simulateTransaction`` (``sigVerify: false``, ``replaceRecentBlockhash: true``) of the
bare discriminator, with any accounts, tells "removed" (101, or the program is gone) from
"dispatched" (any other outcome: a constraint error, a missing signature...). Drift v2 since
v2.162.0 has every instruction removed: this is how ``venue status`` reads that it no longer
accepts orders.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from execution.solana_send.rpc import RpcClient

FALLBACK_NOT_FOUND = 101
_GONE = ("ProgramAccountNotFound", "InvalidProgramForExecution", "AccountNotFound")


@dataclass(frozen=True)
class ProbeResult:
    dispatched: bool | None  # None: the answer says neither
    detail: str


def classify(err: Any, logs: list[str]) -> ProbeResult:
    if err is None:
        return ProbeResult(True, "the simulation succeeded")
    text = str(err)
    if isinstance(err, dict) and "InstructionError" in err:
        _, inner = err["InstructionError"]
        if isinstance(inner, dict) and inner.get("Custom") == FALLBACK_NOT_FOUND:
            return ProbeResult(
                False, "instruction not found in the program (Anchor error 101, InstructionFallbackNotFound)"
            )
        return ProbeResult(True, f"the program dispatched it (then: {text[:120]})")
    if any(g in text for g in _GONE):
        return ProbeResult(False, f"the program cannot be executed ({text[:120]})")
    if any("Fallback functions are not supported" in line for line in logs):
        return ProbeResult(False, "instruction not found in the program (fallback not supported)")
    return ProbeResult(None, f"unclear simulation error: {text[:160]}")


async def probe_instruction(
    rpc: RpcClient, program_id: Pubkey, discriminator: bytes, accounts: list[AccountMeta], payer: Pubkey
) -> ProbeResult:
    """Simulate ``discriminator`` (+ no args) against ``program_id``; RpcError propagates."""
    ix = Instruction(program_id, discriminator, accounts)
    msg = Message.new_with_blockhash([ix], payer, Hash.default())
    tx = Transaction.populate(msg, [Signature.default()] * msg.header.num_required_signatures)
    opts = {
        "encoding": "base64",
        "sigVerify": False,
        "replaceRecentBlockhash": True,
        "commitment": "confirmed",
    }
    res = await rpc.call("simulateTransaction", [base64.b64encode(bytes(tx)).decode(), opts])
    value = (res or {}).get("value") or {}
    return classify(value.get("err"), list(value.get("logs") or []))
