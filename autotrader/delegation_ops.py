"""The Drift account's delegation, for ``autotrader delegate`` and the UI's delegation panel.

Read from chain (the User account's ``delegate`` field), set or revoked by the OWNER (the local
owner key, unlocked with its passphrase, or the Ledger) and followed to confirmation on chain. The
chain keeps who the delegate is, not since when: this app records when it set the delegate
(``delegation.json`` in the data directory, owner-only; no secret in it) and the panel shows that
time when the delegate on chain is still the one it set. A Drift delegate has no expiry on chain
(it stays until the owner revokes it); ``ttl`` says so.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config_schema import Config
    from execution.drift.rpc import RpcClient
    from execution.signers.base import Signer
    from execution.signers.keystore import KeyStore, Passphrase

RECORD = "delegation.json"
NO_TTL = "none on chain: a Drift delegate stays until the owner revokes it"


def given_passphrase(passphrase: str) -> Passphrase:
    """A key-store passphrase typed in the UI: never read from the environment nor asked on the
    instance's terminal (a daemon has none); an empty one is refused."""
    from execution.signers.keystore import KeyStoreError

    def get(confirm: bool) -> str:
        if not passphrase:
            raise KeyStoreError("the owner key's passphrase is needed")
        return passphrase

    return get


def read_record(data_dir: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads((data_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def write_record(data_dir: Path, delegate: str | None, signature: str, now_ms: int) -> None:
    """When this app set (or revoked) the delegate; best effort (the chain is the truth)."""
    from storage.private_files import open_private, private_dir

    try:
        private_dir(data_dir)
        with open_private(data_dir / RECORD) as f:
            json.dump({"delegate": delegate, "at_ms": now_ms, "signature": signature}, f)
    except OSError:
        pass


def with_record(status: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """``status`` (from chain) with ``set_at_ms`` (None: set outside this app, or unknown) and ``ttl``."""
    rec = read_record(data_dir)
    same = rec is not None and status.get("delegate") and rec.get("delegate") == status.get("delegate")
    at = rec.get("at_ms") if same and rec is not None else None
    return {**status, "set_at_ms": at if isinstance(at, int) else None, "ttl": NO_TTL}


async def delegate_action(cfg: Config, action: str, store: KeyStore | None, data_dir: Path,
                          owner: Signer | None = None, rpc: RpcClient | None = None) -> dict[str, Any]:
    """``status`` (no key needed), ``set`` (the app's delegate key) or ``revoke``, signed by the
    owner (``owner``, or the owner's signer from ``store``) and confirmed on chain; the answer is
    the delegation read from chain afterwards. ``rpc``: a running instance's client (its one
    HTTP session; not closed here), else one of its own."""
    from solders.pubkey import Pubkey

    from execution.drift.delegation import delegate_status, revoke_delegate, set_delegate
    from execution.drift.factory import build_chain, owner_signer, send_config
    from execution.drift.genesis import verify_cluster
    from execution.drift.rpc import RpcClient
    from execution.drift.sender import TxSender

    own = rpc is None
    if rpc is None:
        rpc = RpcClient(cfg.venues.drift.rpc_url, timeout_s=cfg.venues.drift.rpc_timeout_s)
    try:
        await verify_cluster(rpc, cfg.venues.drift.cluster)
        if action == "status":
            chain = build_chain(cfg, rpc, Pubkey.default())
            return with_record((await delegate_status(chain)).to_json(), data_dir)
        if owner is None:
            if store is None:
                raise RuntimeError(f"delegate {action} needs the owner's key")
            owner = owner_signer(cfg, store)
        chain = build_chain(cfg, rpc, owner.pubkey())
        sender = TxSender(rpc, send_config(cfg))
        if action == "set":
            pk = store.pubkey(cfg.keys.delegate_name) if store is not None else None
            if pk is None:
                raise RuntimeError(
                    f"no delegate key {cfg.keys.delegate_name!r}: run 'autotrader keys generate'"
                )
            out = await set_delegate(chain, sender, owner, Pubkey.from_string(pk))
        elif action == "revoke":
            out = await revoke_delegate(chain, sender, owner)
        else:
            raise ValueError(f"unknown delegate action {action!r}")
        if not out.landed:
            raise RuntimeError(out.reason)
        st = (await delegate_status(chain)).to_json()
        write_record(data_dir, st["delegate"] if isinstance(st["delegate"], str) else None, out.signature,
                     int(time.time() * 1000))
        st = with_record(st, data_dir)
        st["signature"] = out.signature
        return st
    finally:
        if own:
            await rpc.close()
