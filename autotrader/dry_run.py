"""``autotrader intent ... --dry-run [--json]``: what would be signed, for any venue; nothing is
signed or sent.

The orders are those ``intent --manual`` signs (the post-only entry with its reduce-only stop and
take-profits, :func:`autotrader.manual_cmd.protected_requests`), in one transaction signed by the
owner (``venues.<venue>.authority``). Paper: the requests. Drift and Velocity: the accounts are
read (read-only RPC calls), then each instruction is printed with its program id, name, accounts
(named as in the IDL, writable/signer flags) and data as hex, so it can be checked before
signing by hand or on a Ledger. Exit codes: 0 printed, 1 the venue refused (paused, program
check, unreadable accounts), 2 bad input.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from core.config_schema import Config
from core.manual import build_manual_intent
from core.venue import OrderRequest, VenueError


class _PubkeyOnly:
    """A signer that only knows the owner's public key: a dry run never signs."""

    name = "dry-run"

    def __init__(self, pubkey: Any) -> None:
        self._pk = pubkey

    def pubkey(self) -> Any:
        return self._pk

    async def sign_message(self, message: bytes) -> bytes:
        raise RuntimeError("dry run: nothing is signed")


def _json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, bytes | bytearray):
        return bytes(v).hex()
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    return str(v)


def requests_for(
    cfg: Config, side: str, size: float, sl: float, price: float, tps: list[tuple[float, float | None]]
) -> list[OrderRequest]:
    from autotrader.manual_cmd import protected_requests

    now = int(time.time() * 1000)
    intent = build_manual_intent(
        intent_id=f"manual-{now}",
        ts=now,
        market=cfg.signal.market,
        side=side,
        size=size,
        sl=sl,
        price=price,
        bid=None,
        ask=None,
        tps=tps,
        default_split=cfg.risk.tp_split,
        equity_usd=cfg.paper.equity_usd,
    )
    return protected_requests(intent, cfg.signal.market)


async def _velocity(cfg: Config, reqs: list[OrderRequest]) -> dict[str, Any]:
    from core.clock import WallClock
    from execution.anchor_idl.instruction import describe_instruction
    from execution.drift.genesis import verify_cluster
    from execution.velocity.factory import build_velocity_venue, pubkey_of
    from execution.velocity.program import codec

    owner = pubkey_of(cfg.venues.velocity.authority, "venues.velocity.authority")
    sender = DryRunSender()
    venue = build_velocity_venue(
        cfg,
        WallClock(),
        _PubkeyOnly(owner),
        mainnet_flag=True,  # read-only
        sender=lambda rpc: sender,  # type: ignore[arg-type,return-value]
    )
    out: dict[str, Any] = {"venue": "velocity", "signer": str(owner)}
    try:
        await verify_cluster(venue.chain.rpc, cfg.venues.velocity.cluster)  # ClusterMismatch: exit 2
        await venue.start(poll=False)
        out["program_check"] = venue.chain.check.to_json()
        try:
            await venue.cancel_and_place([], reqs)
        except VenueError as e:
            if not sender.builder.instructions:
                out["refused"] = str(e)
    finally:
        await venue.close()
    ixs = sender.builder.instructions
    out["transactions"] = [
        {
            "label": "cancel-and-place",
            "fee_payer": str(owner),
            "instructions": [_json_safe(describe_instruction(codec(), ix)) for ix in ixs],
        }
    ] if ixs else []
    return out


class _DryRunBuilder:
    """The send path's transaction builder seen from a dry run: the instructions are recorded,
    nothing is signed (the venue reports "cannot build the transaction")."""

    def __init__(self) -> None:
        self.instructions: list[Any] = []
        self.last_estimate = None

    async def priority_fee(self, accounts: Any) -> int:
        return 0

    async def build(self, ixs: Any, signer: Any, cu_price: int, blockhash: Any = None) -> Any:
        from execution.solana_send.rpc import RpcError

        self.instructions = list(ixs)
        raise RpcError("dry run: nothing is signed or sent", code=0)


class DryRunSender:
    """``execution.solana_send.sender.TxSender`` for a dry run (Drift and Velocity venues): its
    builder records; nothing is ever submitted."""

    def __init__(self) -> None:
        self.builder = _DryRunBuilder()

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("dry run: nothing is sent")

    def pending(self, market: str | None = None) -> list[Any]:
        return []

    async def wait_idle(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _describe_drift(chain: Any, ix: Any) -> dict[str, Any]:
    from execution.drift.chain import drift_idl

    named = chain.program.coder.instruction.parse(bytes(ix.data))
    spec = next((i for i in drift_idl().instructions if i.name == named.name), None)
    names = [a.name for a in spec.accounts] if spec is not None else []
    accounts = [
        {
            "name": names[i] if i < len(names) else "remaining",
            "pubkey": str(m.pubkey),
            "writable": m.is_writable,
            "signer": m.is_signer,
        }
        for i, m in enumerate(ix.accounts)
    ]
    return {
        "program_id": str(ix.program_id),
        "instruction": named.name,
        "accounts": accounts,
        "data_hex": bytes(ix.data).hex(),
    }


async def _drift(cfg: Config, reqs: list[OrderRequest]) -> dict[str, Any]:
    from core.clock import WallClock
    from execution.drift.factory import build_chain, pubkey_of
    from execution.drift.genesis import verify_cluster
    from execution.drift.venue import DriftVenue
    from execution.solana_send.rpc import RpcClient

    owner = pubkey_of(cfg.venues.drift.authority, "venues.drift.authority")
    rpc = RpcClient(cfg.venues.drift.rpc_url, timeout_s=cfg.venues.drift.rpc_timeout_s)
    sender = DryRunSender()
    chain = build_chain(cfg, rpc, owner)
    venue = DriftVenue(chain, sender, _PubkeyOnly(owner), WallClock())  # type: ignore[arg-type]
    out: dict[str, Any] = {"venue": "drift", "signer": str(owner)}
    try:
        await verify_cluster(rpc, cfg.venues.drift.cluster)  # ClusterMismatch: exit 2
        await venue.start(poll=False)
        try:
            await venue.cancel_and_place([], reqs)
        except VenueError as e:
            if not sender.builder.instructions:
                out["refused"] = str(e)
    finally:
        await venue.close()
        await rpc.close()
    out["transactions"] = (
        [
            {
                "label": "cancel-and-place",
                "fee_payer": str(owner),
                "instructions": [_describe_drift(chain, ix) for ix in sender.builder.instructions],
            }
        ]
        if sender.builder.instructions
        else []
    )
    return out


def dry_run(cfg: Config, reqs: list[OrderRequest]) -> dict[str, Any]:
    """The dry-run report for ``cfg.engine.venue`` (nothing signed, nothing sent)."""
    venue = cfg.engine.venue
    if venue == "paper":
        out: dict[str, Any] = {"venue": "paper", "transactions": []}
    else:
        out = asyncio.run(_velocity(cfg, reqs) if venue == "velocity" else _drift(cfg, reqs))
    out["dry_run"] = True
    out["sent"] = False
    out["requests"] = [msgspec.to_builtins(r) for r in reqs]
    return out


def render_text(out: dict[str, Any]) -> str:
    lines = [f"dry run on {out['venue']}: nothing signed, nothing sent"]
    for r in out["requests"]:
        px = r.get("price") or r.get("trigger_price")
        lines.append(
            f"  {r['client_tag']}: {r['side']} {r['type']} {r['size']:g} @ {px:g}"
            + (" reduce-only" if r["reduce_only"] else "")
            + (f" post-only {r['post_only']}" if r["post_only"] != "none" else "")
        )
    if "refused" in out:
        lines.append(f"REFUSED: {out['refused']}")
    for tx in out.get("transactions", []):
        lines.append(f"transaction ({tx['label']}), fee payer and signer {tx['fee_payer']}:")
        for ix in tx["instructions"]:
            lines.append(f"  {ix['instruction']} on program {ix['program_id']}")
            for a in ix["accounts"]:
                flags = ("w" if a["writable"] else "-") + ("s" if a["signer"] else "-")
                lines.append(f"    {flags} {a['name']:<24} {a['pubkey']}")
            lines.append(f"    data {ix['data_hex']}")
    return "\n".join(lines)
