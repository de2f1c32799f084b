"""Composition helpers: build the Drift chain view, sender, signers and venue from config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp
from solders.pubkey import Pubkey

from core.clock import Clock
from core.config_schema import Config
from core.journal_port import SendJournal
from execution.drift.chain import DriftChain
from execution.drift.venue import DriftVenue, TagBinding
from execution.signers.base import KeypairSigner, Signer
from execution.signers.keystore import KeyStore, Passphrase, open_store
from execution.solana_send.rpc import RpcClient
from execution.solana_send.sender import SendConfig, TxSender


class DriftSetupError(Exception):
    pass


def check_cluster(cfg: Config, mainnet_flag: bool = False) -> None:
    d = cfg.venues.drift
    if d.cluster == "mainnet" and not (d.allow_mainnet or mainnet_flag):
        raise DriftSetupError(
            "venues.drift.cluster is mainnet: pass --mainnet or set venues.drift.allow_mainnet"
        )


def pubkey_of(text: str, key: str) -> Pubkey:
    try:
        return Pubkey.from_string(text)
    except Exception:
        raise DriftSetupError(f"{key}: not a base58 public key: {text!r}") from None


def send_config(cfg: Config) -> SendConfig:
    d = cfg.venues.drift
    return SendConfig(
        rebroadcast_s=d.rebroadcast_s,
        poll_s=d.confirm_poll_s,
        unknown_after_s=d.unknown_after_s,
        ack_wait_s=d.ack_wait_s,
        max_resigns=d.max_resigns,
        priority_fee_cap=int(cfg.engine.priority_fee_cap),
        priority_fee_percentile=d.priority_fee_percentile,
        compute_unit_limit=d.compute_unit_limit,
    )


def key_store(cfg: Config, passphrase: Passphrase, data_dir: Path) -> KeyStore:
    k = cfg.keys
    file = Path(k.encrypted_file) if k.encrypted_file else data_dir / "keys.enc"
    return open_store(k.backend, k.keyring_service, file, passphrase)


def owner_signer(cfg: Config, store: KeyStore) -> Signer:
    k = cfg.keys
    if k.owner_signer == "ledger":
        from execution.signers.ledger import HidTransport, LedgerSigner, TcpTransport

        if k.ledger_transport == "tcp":
            host, _, port = k.speculos.rpartition(":")
            return LedgerSigner(TcpTransport(host or "127.0.0.1", int(port)), k.ledger_path)
        return LedgerSigner(HidTransport(), k.ledger_path)
    return KeypairSigner(store.load(k.owner_name), "owner")


def build_chain(cfg: Config, rpc: RpcClient, signer_pubkey: Pubkey) -> DriftChain:
    d = cfg.venues.drift
    if not d.authority:
        raise DriftSetupError("venues.drift.authority (the owner wallet's public key) is not set")
    return DriftChain(
        rpc,
        pubkey_of(d.program_id, "venues.drift.program_id"),
        pubkey_of(d.authority, "venues.drift.authority"),
        signer_pubkey,
        sub_account_id=d.sub_account,
        perp_market_index=d.perp_market_index,
    )


def build_drift_venue(
    cfg: Config,
    clock: Clock,
    signer: Signer,
    *,
    session: aiohttp.ClientSession | None = None,
    mainnet_flag: bool = False,
    on_bind: Callable[[TagBinding], None] | None = None,
    restore: list[TagBinding] | None = None,
    journal: SendJournal | None = None,
) -> DriftVenue:
    """The DriftVenue for the composition root (call ``await venue.start()`` then hand it to the
    engine). ``signer`` is the delegate (``use_delegate``) or the owner's signer."""
    check_cluster(cfg, mainnet_flag)
    d = cfg.venues.drift
    if d.lookup_tables:
        raise DriftSetupError(
            "venues.drift.lookup_tables: fetching address lookup tables is not implemented yet; "
            "leave it empty"
        )
    rpc = RpcClient(d.rpc_url, session=session, timeout_s=d.rpc_timeout_s)
    chain = build_chain(cfg, rpc, signer.pubkey())
    venue = DriftVenue(
        chain,
        TxSender(rpc, send_config(cfg), journal=journal, venue="drift", now_ms=clock.now_ms),
        signer,
        clock,
        poll_s=d.account_poll_s,
        max_age_s=d.max_account_age_s,
        on_bind=on_bind,
    )
    if restore:
        venue.restore(restore)
    return venue
