"""Program check at start: is the deployed Velocity program the one the venue was built for?

The program publishes its IDL in its canonical Program Metadata account (``deploy-scripts/
README.md`` of velocity-v1: ``program-metadata create idl`` at deploy, ``SetData`` at every
upgrade; :mod:`execution.anchor_idl.metadata`). The check reads it, compares the canonical form
of every instruction and account the venue uses with the committed IDL subset
(:mod:`execution.anchor_idl.fingerprint`) and says:

* ``match``: trading allowed;
* ``differs``: trading refused before anything is signed; the first difference is named; the
  accounts whose layout still matches stay readable (venue status keeps working when State and
  PerpMarket match);
* ``unverified``: no readable IDL on chain (not published, unreadable, another program's):
  trading refused; reads use the built-for layouts (each account is still checked by its
  discriminator and size).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from solders.pubkey import Pubkey

from execution.anchor_idl.fingerprint import FingerprintError, compare
from execution.anchor_idl.metadata import MetadataError, canonical_metadata_address, decode_metadata_account
from execution.solana_send.rpc import RpcClient
from execution.velocity.program import ACCOUNTS_USED, IDL_VERSION, INSTRUCTIONS_USED, load_idl


@dataclass(frozen=True)
class ProgramCheck:
    verdict: str  # match | differs | unverified | not run
    detail: str = ""
    address: str = ""
    onchain_version: str = ""
    readable: frozenset[str] = frozenset(ACCOUNTS_USED)
    differences: tuple[str, ...] = ()
    instructions_ok: frozenset[str] = frozenset()  # used instructions whose form matches

    def instruction_ok(self, name: str) -> bool:
        """Whether ``name`` may be signed (a cancel stays possible when only placing changed)."""
        return self.verdict in ("match", "differs") and name in self.instructions_ok

    @property
    def trade_allowed(self) -> bool:
        return self.verdict == "match"

    def summary(self) -> str:
        if self.verdict == "match":
            return f"match (on-chain IDL {self.onchain_version}, built for {IDL_VERSION})"
        return f"{self.verdict}: {self.detail}" if self.detail else self.verdict

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "detail": self.detail,
            "metadata_account": self.address,
            "onchain_version": self.onchain_version,
            "built_for": IDL_VERSION,
            "differences": list(self.differences),
            "readable_accounts": sorted(self.readable),
        }


NOT_RUN = ProgramCheck("not run", "the program has not been checked yet")


def check_idl(
    onchain: dict[str, Any], address: str = "", reference: dict[str, Any] | None = None
) -> ProgramCheck:
    """Compare an IDL (parsed JSON) with the one the venue was built for."""
    ref = reference if reference is not None else load_idl()
    version = str((onchain.get("metadata") or {}).get("version", "?"))
    try:
        cmp = compare(ref, onchain, list(INSTRUCTIONS_USED), list(ACCOUNTS_USED))
    except (FingerprintError, KeyError, TypeError) as e:
        return ProgramCheck("unverified", f"the on-chain IDL is malformed: {e}", address, version)
    readable = frozenset(a for a in ACCOUNTS_USED if cmp.account_matches(a))
    ok = frozenset(n for n, d in cmp.instructions.items() if d is None and "User" in readable)
    if cmp.matches:
        return ProgramCheck("match", "", address, version, readable, (), ok)
    diffs = tuple(cmp.differences)
    return ProgramCheck(
        "differs",
        f"{diffs[0]} (IDL {version}; built for {IDL_VERSION})",
        address,
        version,
        readable,
        diffs,
        ok,
    )


async def check_program(rpc: RpcClient, program_id: Pubkey) -> ProgramCheck:
    """Read the program's canonical IDL metadata account and compare (RpcError propagates)."""
    _, program = await rpc.get_account(program_id)
    if program is None:
        return ProgramCheck("unverified", f"program {program_id} not found on this cluster")
    addr = canonical_metadata_address(program_id)
    _, raw = await rpc.get_account(addr)
    if raw is None:
        return ProgramCheck(
            "unverified", f"no IDL published on chain (metadata account {addr} not found)", str(addr)
        )
    try:
        meta = decode_metadata_account(raw)
        if meta.program != program_id:
            return ProgramCheck(
                "unverified", f"metadata account {addr} describes program {meta.program}", str(addr)
            )
        onchain = json.loads(meta.content())
    except (MetadataError, ValueError) as e:
        return ProgramCheck("unverified", f"cannot read the on-chain IDL at {addr}: {e}", str(addr))
    if not isinstance(onchain, dict):
        return ProgramCheck("unverified", f"the on-chain IDL at {addr} is not a JSON object", str(addr))
    return check_idl(onchain, str(addr))
