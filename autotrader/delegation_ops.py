"""The Drift account's delegation, for ``autotrader delegate`` and the UI's delegation panel.

Read from chain (the User account's ``delegate`` field), set or revoked by the OWNER (the local
owner key, unlocked with its passphrase, or the Ledger) and followed to confirmation on chain. The
chain keeps who the delegate is, not since when, and a Drift delegate has no expiry on chain: the
app's delegate SESSION has one (``venues.drift.session_ttl_h``, issue 14's
:class:`~autotrader.drift_stack.DelegationWatch`), counted from the session record in the live state
(written by ``delegate set``, or when the instance first sees the delegate). ``set_at_ms``,
``expires_at_ms`` and ``ttl`` come from that record (a running instance's watch, else the state
database read-only); without one, from ``delegation.json`` in the data directory (owner-only, no
secret in it), where this app notes when it set or revoked the delegate.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config_schema import Config
    from execution.signers.base import Signer
    from execution.signers.keystore import KeyStore, Passphrase
    from execution.solana_send.rpc import RpcClient

RECORD = "delegation.json"
Session = tuple[str, int]  # (the delegate, when its session started, ms)


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


def saved_session(cfg: Config) -> Session | None:
    """The delegate session recorded in the live state database (read-only; None when absent)."""
    from autotrader.config import state_db_path
    from autotrader.drift_stack import SESSION_KEY
    from storage.state_store import StateStore, StateStoreError

    path = state_db_path(cfg, "live")
    if not path.exists():
        return None
    try:
        db = StateStore(path, readonly=True)
    except StateStoreError:
        return None
    try:
        rec = db.get_json(SESSION_KEY)
    except Exception:  # unreadable: the panel says "not recorded"
        rec = None
    finally:
        db.close()
    if isinstance(rec, dict) and isinstance(rec.get("set_at_ms"), int):
        return str(rec.get("delegate", "")), int(rec["set_at_ms"])
    return None


def _utc(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def with_record(status: dict[str, Any], data_dir: Path, cfg: Config,
                session: Session | None = None) -> dict[str, Any]:
    """``status`` (from chain) with ``set_at_ms`` (None: unknown), ``expires_at_ms`` and ``ttl``
    (the session's length and end, see the module docstring)."""
    delegate = status.get("delegate")
    ttl_h = cfg.venues.drift.session_ttl_h
    at: int | None = None
    if session is not None and delegate and session[0] == delegate:
        at = session[1]
    else:
        rec = read_record(data_dir)
        if rec is not None and delegate and rec.get("delegate") == delegate:
            at = rec["at_ms"] if isinstance(rec.get("at_ms"), int) else None
    ends = None if at is None else at + int(ttl_h * 3_600_000)
    ttl = (f"{ttl_h:g} h session, ends {_utc(ends)}" if ends is not None
           else f"{ttl_h:g} h session, counted from when the instance first sees the delegate")
    return {**status, "set_at_ms": at, "expires_at_ms": ends, "ttl": ttl}


async def delegate_action(cfg: Config, action: str, store: KeyStore | None, data_dir: Path,
                          owner: Signer | None = None, rpc: RpcClient | None = None,
                          session: Session | None = None) -> dict[str, Any]:
    """``status`` (no key needed), ``set`` (the app's delegate key) or ``revoke``, signed by the
    owner (``owner``, or the owner's signer from ``store``) and confirmed on chain; the answer is
    the delegation read from chain afterwards. ``rpc``: a running instance's client (its one
    HTTP session; not closed here), else one of its own; ``session``: a running instance's
    delegate session (its watch's record), else read from the live state database."""
    from solders.pubkey import Pubkey

    from execution.drift.delegation import delegate_status, revoke_delegate, set_delegate
    from execution.drift.factory import build_chain, owner_signer, send_config
    from execution.drift.genesis import verify_cluster
    from execution.solana_send.rpc import RpcClient
    from execution.solana_send.sender import TxSender

    own = rpc is None
    if rpc is None:
        rpc = RpcClient(cfg.venues.drift.rpc_url, timeout_s=cfg.venues.drift.rpc_timeout_s)
    try:
        await verify_cluster(rpc, cfg.venues.drift.cluster)
        if action == "status":
            chain = build_chain(cfg, rpc, Pubkey.default())
            st0 = (await delegate_status(chain)).to_json()
            return with_record(st0, data_dir, cfg, session if session is not None else saved_session(cfg))
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
        if action == "set":  # the session TTL (venues.drift.session_ttl_h) counts from now
            from autotrader.velocity_stack import record_session_now

            record_session_now(cfg, str(pk))
        st = (await delegate_status(chain)).to_json()
        write_record(data_dir, st["delegate"] if isinstance(st["delegate"], str) else None, out.signature,
                     int(time.time() * 1000))
        st = with_record(st, data_dir, cfg, session if session is not None else saved_session(cfg))
        st["signature"] = out.signature
        return st
    finally:
        if own:
            await rpc.close()
