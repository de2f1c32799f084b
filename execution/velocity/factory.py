"""Composition helpers: the Velocity chain view, send port, signers and venue from config
(``[venues.velocity]``; keys from ``[keys]`` as for Drift). Imports no driftpy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp
from solders.pubkey import Pubkey

from core.clock import Clock
from core.config_schema import Config, VelocityConfig
from core.journal_port import SendJournal
from execution.signers.base import KeypairSigner, Signer
from execution.signers.keystore import KeyStore, Passphrase, open_store
from execution.solana_send.rpc import RpcClient
from execution.solana_send.sender import SendConfig, TxSender
from execution.velocity.chain import VelocityChain
from execution.velocity.venue import TagBinding, VelocityVenue


class VelocitySetupError(Exception):
    pass


def check_cluster(cfg: Config, mainnet_flag: bool = False) -> None:
    v = cfg.venues.velocity
    if v.cluster == "mainnet" and not (v.allow_mainnet or mainnet_flag):
        raise VelocitySetupError(
            "venues.velocity.cluster is mainnet: pass --mainnet or set venues.velocity.allow_mainnet"
        )


def pubkey_of(text: str, key: str) -> Pubkey:
    try:
        return Pubkey.from_string(text)
    except Exception:
        raise VelocitySetupError(f"{key}: not a base58 public key: {text!r}") from None


def send_config(cfg: Config) -> SendConfig:
    v = cfg.venues.velocity
    return SendConfig(
        rebroadcast_s=v.rebroadcast_s,
        poll_s=v.confirm_poll_s,
        unknown_after_s=v.unknown_after_s,
        ack_wait_s=v.ack_wait_s,
        max_resigns=v.max_resigns,
        priority_fee_cap=int(cfg.engine.priority_fee_cap),
        priority_fee_percentile=v.priority_fee_percentile,
        compute_unit_limit=v.compute_unit_limit,
    )


def key_store(cfg: Config, passphrase: Passphrase, data_dir: Path) -> KeyStore:
    k = cfg.keys
    file = Path(k.encrypted_file) if k.encrypted_file else data_dir / "keys.enc"
    return open_store(k.backend, k.keyring_service, file, passphrase)


def owner_signer(cfg: Config, store: KeyStore) -> Signer:
    """The owner's signer: the local owner key, or the Ledger (``keys.owner_signer``)."""
    k = cfg.keys
    if k.owner_signer == "ledger":
        from execution.signers.ledger import HidTransport, LedgerSigner, TcpTransport

        if k.ledger_transport == "tcp":
            host, _, port = k.speculos.rpartition(":")
            return LedgerSigner(TcpTransport(host or "127.0.0.1", int(port)), k.ledger_path)
        return LedgerSigner(HidTransport(), k.ledger_path)
    return KeypairSigner(store.load(k.owner_name), "owner")


def build_chain(v: VelocityConfig, rpc: RpcClient, signer_pubkey: Pubkey) -> VelocityChain:
    if not v.authority:
        raise VelocitySetupError("venues.velocity.authority (the owner wallet's public key) is not set")
    return VelocityChain(
        rpc,
        pubkey_of(v.program_id, "venues.velocity.program_id"),
        pubkey_of(v.authority, "venues.velocity.authority"),
        signer_pubkey,
        sub_account_id=v.sub_account,
        market_name=v.market,
    )


def build_velocity_venue(
    cfg: Config,
    clock: Clock,
    signer: Signer,
    *,
    session: aiohttp.ClientSession | None = None,
    mainnet_flag: bool = False,
    on_bind: Callable[[TagBinding], None] | None = None,
    restore: list[TagBinding] | None = None,
    journal: SendJournal | None = None,
    sender: Callable[[RpcClient], TxSender] | None = None,
) -> VelocityVenue:
    """The venue for the composition root (``await venue.start()``, then the engine). ``signer``
    signs every transaction (the delegate, or the owner's key or Ledger) through the shared send
    path (:mod:`execution.solana_send`); ``journal`` keeps every signed transaction before its
    broadcast; ``sender`` replaces the send path (the dry run records instead of signing)."""
    check_cluster(cfg, mainnet_flag)
    v = cfg.venues.velocity
    rpc = RpcClient(v.rpc_url, session=session, timeout_s=v.rpc_timeout_s)
    chain = build_chain(v, rpc, signer.pubkey())
    tx_sender = sender(rpc) if sender is not None else TxSender(
        rpc, send_config(cfg), journal=journal, venue="velocity")
    venue = VelocityVenue(
        chain, tx_sender, signer, clock, poll_s=v.account_poll_s, max_age_s=v.max_account_age_s,
        on_bind=on_bind,
    )
    if restore:
        venue.restore(restore)
    return venue
