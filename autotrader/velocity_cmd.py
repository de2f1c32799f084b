"""CLI helpers for the Velocity venue (issue 17): ``venue status``, delegation, the dry run and
hand-signed orders when ``engine.venue = "velocity"``. Heavy imports stay inside the functions."""

from __future__ import annotations

import asyncio
from typing import Any

from core.config_schema import Config


def _rpc(cfg: Config):  # type: ignore[no-untyped-def]
    from execution.solana_send.rpc import RpcClient

    v = cfg.venues.velocity
    return RpcClient(v.rpc_url, timeout_s=v.rpc_timeout_s)


def _chain(cfg: Config, rpc: Any, signer: Any = None):  # type: ignore[no-untyped-def]
    from solders.pubkey import Pubkey

    from execution.velocity.chain import VelocityChain
    from execution.velocity.factory import build_chain, pubkey_of

    v = cfg.venues.velocity
    if v.authority or signer is not None:
        return build_chain(v, rpc, signer if signer is not None else Pubkey.default())
    return VelocityChain(
        rpc,
        pubkey_of(v.program_id, "venues.velocity.program_id"),
        Pubkey.default(),
        Pubkey.default(),
        market_name=v.market,
    )


async def read_status(cfg: Config) -> dict[str, Any]:
    """Program check, then State/PerpMarket (and the account's equity when the User is readable)."""
    from execution.drift.genesis import verify_cluster
    from execution.velocity.chain import ChainError
    from execution.velocity.program_check import check_program

    rpc = _rpc(cfg)
    try:
        await verify_cluster(rpc, cfg.venues.velocity.cluster)  # ClusterMismatch: nothing is read
        chain = _chain(cfg, rpc)
        chain.check = await check_program(rpc, chain.program_id)
        out: dict[str, Any] = (await chain.read_status()).to_json()
        out["program"] = chain.check.to_json()
        if cfg.venues.velocity.authority:
            try:
                await chain.refresh(0.0)
                out["equity_usdt"], out["equity_exact"] = chain.equity()
            except ChainError as e:
                out["account_error"] = str(e)
        return out
    finally:
        await rpc.close()


def delegate(cfg: Config, action: str, passphrase_file: Any) -> dict[str, Any]:
    """``delegate status|set|revoke`` on the Velocity User account."""
    from solders.pubkey import Pubkey

    from autotrader.drift_cmd import _data_dir
    from execution.drift.genesis import verify_cluster
    from execution.signers.keystore import passphrase_source
    from execution.solana_send.sender import TxSender
    from execution.velocity.delegation import NO_DELEGATE, delegate_status, set_delegate
    from execution.velocity.factory import key_store, owner_signer, send_config

    async def main() -> dict[str, Any]:
        rpc = _rpc(cfg)
        try:
            await verify_cluster(rpc, cfg.venues.velocity.cluster)
            if action == "status":
                return (await delegate_status(_chain(cfg, rpc))).to_json()
            store = key_store(cfg, passphrase_source(passphrase_file), _data_dir())
            owner = owner_signer(cfg, store)
            chain = _chain(cfg, rpc, owner.pubkey())
            target = NO_DELEGATE
            if action == "set":
                pk = store.pubkey(cfg.keys.delegate_name)
                if pk is None:
                    name = cfg.keys.delegate_name
                    raise RuntimeError(f"no delegate key {name!r}: run 'autotrader keys generate'")
                target = Pubkey.from_string(pk)
            sender = TxSender(rpc, send_config(cfg), venue="velocity")
            try:
                out = await set_delegate(chain, sender, owner, target)
            finally:
                await sender.close()
            if not out.landed:
                raise RuntimeError(f"{out.state}: {out.reason} [{', '.join(out.signatures)}]")
            if action == "set":  # the session TTL (venues.velocity.session_ttl_h) counts from now
                from autotrader.velocity_stack import record_session_now

                record_session_now(cfg, str(target))
            st = (await delegate_status(chain)).to_json()
            st["signature"] = out.signature
            return st
        finally:
            await rpc.close()

    result: dict[str, Any] = asyncio.run(main())
    return result
