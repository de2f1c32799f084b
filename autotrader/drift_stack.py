"""The Drift venue as the app composes it: keys, the journal (order bindings and signed
transactions), the restart of unresolved sends, and the delegate session watch.

Imported only when ``engine.venue = "drift"`` (driftpy is heavy)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec

from core.clock import Clock
from core.config_schema import Config
from core.delegation import DelegationVerdict, evaluate
from core.journal_port import JournalError, OrderJournal, SendJournal
from core.venue import OrderRequest, OrderStatus
from execution.drift.factory import build_drift_venue, key_store, owner_signer
from execution.drift.user_state import UserSnapshot
from execution.drift.venue import DriftVenue, TagBinding
from execution.signers.base import KeypairSigner, Signer
from execution.signers.keystore import PASSPHRASE_ENV, KeyStoreError, passphrase_source

log = logging.getLogger(__name__)
SESSION_KEY = "drift.delegate_session"


class Journal(OrderJournal, SendJournal, Protocol):
    """What the Drift venue's composition needs of the journal: orders and signed transactions
    (storage.journal.Journal, its fail-closed buffer, core.journal_port.MemoryJournal)."""


def trading_signer(cfg: Config, data_dir: Any, passphrase_file: Any = None) -> Signer:
    """The key the venue signs with: the delegate (``use_delegate``) or the owner's signer."""
    keys = key_store(cfg, passphrase_source(passphrase_file), data_dir)
    chain_cfg = cfg.venues.velocity if cfg.engine.venue == "velocity" else cfg.venues.drift
    if chain_cfg.use_delegate:
        return KeypairSigner(keys.load(cfg.keys.delegate_name), "delegate")
    return owner_signer(cfg, keys)


def owner_at_hand(cfg: Config, data_dir: Any) -> Signer | None:
    """The owner's local key when it can be loaded without asking anyone (keyring, or the key file
    with ``AUTOTRADER_PASSPHRASE``); None otherwise (a Ledger needs a human)."""
    if cfg.keys.owner_signer != "local":
        return None
    try:
        store = key_store(cfg, lambda _confirm: os.environ.get(PASSPHRASE_ENV) or "", data_dir)
        if store.kind == "file" and not os.environ.get(PASSPHRASE_ENV):
            return None
        return KeypairSigner(store.load(cfg.keys.owner_name), "owner")
    except (KeyStoreError, OSError, ValueError) as e:
        log.info("owner key not at hand: %s", e)
        return None


def journal_bindings(journal: Journal | None) -> tuple[list[TagBinding], Callable[[TagBinding], None]]:
    """(bindings of the journal's live orders, the hook that journals a new binding before signing)."""
    restore = [
        TagBinding(o.client_tag, o.user_order_id, o.order_id or o.client_tag)
        for o in (journal.open_orders() if journal is not None else [])
        if o.user_order_id
    ]

    def on_bind(b: TagBinding) -> None:
        if journal is not None and journal.find_order(client_tag=b.client_tag) is not None:
            journal.update_order(b.client_tag, order_id=b.order_id, user_order_id=b.user_order_id)

    return restore, on_bind


def build_drift(cfg: Config, clock: Clock, journal: Journal | None, data_dir: Any) -> DriftVenue:
    """The DriftVenue: order bindings and signed transactions journaled, bindings restored.
    Raises DriftSetupError / KeyStoreError with a message for the user."""
    signer = trading_signer(cfg, data_dir)
    restore, on_bind = journal_bindings(journal)
    return build_drift_venue(cfg, clock, signer, on_bind=on_bind, restore=restore, journal=journal)


def report_resolved(venue: DriftVenue, journal: Journal) -> list[str]:
    """Without an engine: the journal's live orders get the venue's verdict (for the manual path
    and ``venue reconcile``), one line each."""
    from execution.order_gateway import journal_state

    lines = []
    for o in journal.open_orders():
        t = venue._by_tag.get(o.client_tag)
        if t is None:
            continue
        snap = t.snapshot()
        if snap.status == OrderStatus.UNKNOWN:
            lines.append(f"{o.client_tag}: still UNKNOWN (signature {', '.join(snap.signatures)})")
            continue
        state = journal_state(snap)
        if o.state == "submitting" and state == "rejected":
            state = "failed"
        journal.update_order(o.client_tag, order_id=snap.order_id, state=state)
        sigs = ", ".join(snap.signatures) or "-"
        word = {
            "open": "on chain, open",
            "filled": "on chain, filled",
            "failed": "did not land",
            "rejected": "did not land",
            "cancelled": "landed, then cancelled",
        }.get(state, state)
        lines.append(f"{o.client_tag}: {word} (signature {sigs})")
    return lines


def resume_sends(venue: DriftVenue, journal: Journal | None) -> int:
    """Follow again the transactions the journal holds unresolved (a crash or a stop mid-send):
    the orders they place are ``unknown`` until the chain says. Returns how many."""
    if journal is None:
        return 0
    requests: dict[str, OrderRequest] = {}
    for o in journal.open_orders():
        try:
            req = msgspec.convert({**o.request, "user_order_id": o.user_order_id}, OrderRequest)
        except (msgspec.ValidationError, ValueError, TypeError):
            continue
        requests[o.client_tag] = req
    return len(venue.resume(journal.open_sends(), requests))


class DelegationWatch:
    """Reads the account's delegate on every account update and every ``delegation_check_s``;
    a revoke, another delegate or the end of the session turns automation off (an activity row, a
    toast); at the end of the session it revokes when the owner key is at hand."""

    def __init__(
        self,
        cfg: Config,
        venue: DriftVenue,
        engine: Any,
        store: Any,
        now_ms: Callable[[], int],
        owner: Callable[[], Signer | None],
    ) -> None:
        self.cfg = cfg
        self.venue = venue
        self.engine = engine
        self.store = store
        self.now_ms = now_ms
        self.owner = owner
        self.expected = str(venue.signer.pubkey())
        self.ttl_ms = int(cfg.venues.drift.session_ttl_h * 3_600_000)
        self.verdict: DelegationVerdict = evaluate(self.expected, None, None, self.ttl_ms, now_ms())
        self._task: asyncio.Task[None] | None = None
        self._revoking: asyncio.Task[None] | None = None
        venue.account_listeners.append(self._on_account)

    def _on_account(self, snap: UserSnapshot) -> None:
        self.check(snap.delegate)

    def session(self) -> tuple[str, int] | None:
        rec = self.store.get_json(SESSION_KEY) if self.store is not None else None
        if isinstance(rec, dict) and isinstance(rec.get("set_at_ms"), int):
            return str(rec.get("delegate", "")), int(rec["set_at_ms"])
        return None

    def check(self, onchain: str | None) -> DelegationVerdict:
        now = self.now_ms()
        rec = self.session()
        if onchain == self.expected and (rec is None or rec[0] != onchain):
            rec = (onchain, now)  # set outside the app (or the record lost): the session starts now
            if self.store is not None:
                with contextlib.suppress(Exception):
                    self.store.put_json(
                        SESSION_KEY, {"delegate": onchain, "set_at_ms": now, "source": "first seen"}
                    )
        v = evaluate(self.expected, onchain, rec[1] if rec else None, self.ttl_ms, now)
        old, self.verdict = self.verdict, v
        if v.action == old.action and v.onchain == old.onchain:
            return v
        if v.action in ("revoked", "mismatch", "expired"):
            self.engine.block_automation(v.reason)
            self.engine.record("delegation", stage=v.action, reason=v.reason, delegate=v.onchain)
            if v.action == "expired":
                self._revoke_at_expiry(v)
        elif v.action == "warn":
            self.engine.record("delegation", stage="warn", reason=v.reason, delegate=v.onchain)
        elif v.action == "ok" and old.action in ("revoked", "mismatch", "expired"):
            self.engine.block_automation("")
            self.engine.record(
                "delegation",
                stage="ok",
                reason="the app's delegate is back on the account (automation stays off until turned on)",
                delegate=v.onchain,
            )
        return v

    def _revoke_at_expiry(self, v: DelegationVerdict) -> None:
        if self._revoking is not None and not self._revoking.done():
            return
        owner = self.owner()
        if owner is None:
            self.engine.record(
                "delegation",
                stage="expired",
                delegate=v.onchain,
                reason=f"{v.reason}; automation off — the owner key is not at hand: run "
                "'autotrader delegate revoke' (or 'delegate set' for a new session)",
            )
            return
        self._revoking = asyncio.ensure_future(self._revoke(owner))

    async def _revoke(self, owner: Signer) -> None:
        from execution.drift.delegation import revoke_delegate

        try:
            sub = await revoke_delegate(self.venue.chain, self.venue.sender, owner)
            self.engine.record(
                "delegation",
                stage="revoked_at_expiry",
                signature=sub.signature,
                reason="session over: delegate revoked" if sub.landed else sub.reason,
            )
        except Exception as e:
            self.engine.record("delegation", stage="revoke_failed", reason=str(e))

    async def run(self) -> None:
        from execution.drift.delegation import delegate_status

        while True:
            try:
                self.check((await delegate_status(self.venue.chain)).delegate)
            except Exception as e:  # unreadable: the venue's own staleness check fails closed
                log.info("delegate re-read failed: %s", e)
            await asyncio.sleep(self.cfg.venues.drift.delegation_check_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self.run())

    async def close(self) -> None:
        for t in (self._task, self._revoking):
            if t is not None and not t.done():
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        self._task = None


def record_session(store: Any, delegate: str, now_ms: int) -> None:
    """``autotrader delegate set`` records when the session started (the TTL counts from it)."""
    try:
        store.put_json(SESSION_KEY, {"delegate": delegate, "set_at_ms": now_ms, "source": "delegate set"})
    except (JournalError, OSError) as e:
        log.warning("cannot record the delegate session: %s", e)


class StateBusy(Exception):
    """Another process holds the live state database."""


def with_journaled_venue(
    cfg: Config,
    signer: Signer,
    body: Callable[[DriftVenue, Any, int], Awaitable[Any]],
    *,
    mainnet_flag: bool = False,
) -> Any:
    """For the commands that trade without an instance (``intent --manual``, ``venue
    reconcile``): claim the live state database (raises :class:`StateBusy`), open its journal,
    build the venue on it (bindings restored, sends journaled), follow what an earlier run left
    unresolved, read the accounts, then ``await body(venue, journal, resumed)``; always closed.
    Raises ``core.cluster.ClusterMismatch`` when the RPC serves another cluster."""
    from autotrader.config import state_db_path
    from autotrader.state_claim import StateLockError, claim_state
    from core.clock import WallClock
    from storage.journal import Journal as SqliteJournal

    state = state_db_path(cfg, "live")
    try:
        lock = claim_state(state)
    except StateLockError as exc:
        raise StateBusy(str(exc)) from None

    async def main(journal: Journal) -> Any:
        from execution.drift.genesis import verify_cluster

        restore, on_bind = journal_bindings(journal)
        build: Any = build_drift_venue
        cluster = cfg.venues.drift.cluster
        if cfg.engine.venue == "velocity":  # issue 17: the same flow on the Velocity program
            from execution.velocity.factory import build_velocity_venue as build

            cluster = cfg.venues.velocity.cluster
        venue = build(cfg, WallClock(), signer, mainnet_flag=mainnet_flag, on_bind=on_bind,
                      restore=restore, journal=journal)
        try:
            # the RPC serves the configured cluster: checked before anything is signed or sent again
            await verify_cluster(venue.chain.rpc, cluster)
            resumed = resume_sends(venue, journal)
            await venue.start(poll=True)
            return await body(venue, journal, resumed)
        finally:
            await venue.close()
            await venue.chain.rpc.close()

    try:
        with SqliteJournal(state) as journal:
            return asyncio.run(main(journal))
    finally:
        lock.release()
