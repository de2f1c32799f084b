"""The delegation panel's commands on a running instance (control socket, so ``autotrader ui``
and the in-process UI take the same path):

* ``delegation``: the delegate read from chain (when this app set it, its TTL), how this instance
  signs, manual-sign mode and automation;
* ``delegation.revoke``: automation off AT ONCE (before anything is signed), then the revoke,
  signed by the owner (the local owner key unlocked with the passphrase typed in the UI, or the
  Ledger) and confirmed on chain; an instance that trades as the delegate goes to manual-sign mode
  (its delegate can no longer sign);
* ``manual_sign``: on = every order is signed by hand (automation off, the engine's intents
  refused: :class:`~autotrader.control_handlers.ControlHandlers`); off = back to the delegate;
* ``manual.summary`` / ``manual.sign``: an order from the UI with its reduce-only stop and
  take-profits (:func:`autotrader.manual_cmd.protected_requests`), summarized as the venue will
  round it, then signed by the owner in one transaction and followed to the chain.

The passphrase crosses the control socket (owner-only, see :mod:`autotrader.control`) and is
never logged nor kept: each signing unlocks the key again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from core.config_schema import Config
from core.manual import ManualIntentError, build_manual_intent
from core.ui_port import ManualOrder

if TYPE_CHECKING:
    from autotrader.control import Handler
    from autotrader.control_handlers import ControlHandlers
    from core.intents import Intent
    from core.venue import OrderRequest
    from execution.signers.base import Signer
    from execution.signers.keystore import KeyStore
    from execution.solana_send.rpc import RpcClient
    from storage.state_store import StateStore

NOT_DRIFT = "the paper venue has no delegation: nothing is signed"
MANUAL_SIGN_KEY = "delegation.manual_sign"


class DelegationControl:
    def __init__(self, cfg: Config, handlers: ControlHandlers, data_dir: Path,
                 store: StateStore | None = None) -> None:
        self.cfg = cfg
        self.handlers = handlers
        self.data_dir = data_dir
        self.store = store  # the UI settings' store: manual-sign mode survives a restart
        if self.drift and store is not None and store.get_json(MANUAL_SIGN_KEY) is True:
            handlers.manual_sign = True
            handlers.engine.automation_on = False

    def _keep_mode(self) -> None:
        """Saved best effort: the mode is in force in memory either way."""
        from storage.state_store import StateStoreError

        if self.store is not None:
            with contextlib.suppress(StateStoreError, OSError):
                self.store.put_json(MANUAL_SIGN_KEY, self.handlers.manual_sign)

    def handlers_table(self) -> dict[str, Handler]:
        return {"delegation": self.status, "delegation.revoke": self.revoke, "manual_sign": self.manual_sign,
                "manual.summary": self.summary, "manual.sign": self.sign}

    @property
    def drift(self) -> bool:
        return self.cfg.engine.venue == "drift"

    def _mode(self) -> dict[str, Any]:
        d = self.cfg.venues.drift
        return {"applicable": self.drift, "manual_sign": self.handlers.manual_sign,
                "automation_on": self.handlers.engine.automation_on,
                "signs_as": "delegate" if d.use_delegate else "owner",
                "owner_signer": self.cfg.keys.owner_signer}

    def _need_drift(self) -> None:
        if not self.drift:
            raise ValueError(NOT_DRIFT)

    async def status(self, args: dict[str, Any]) -> Any:
        if not self.drift:
            return {**self._mode(), "text": NOT_DRIFT}
        from autotrader.delegation_ops import delegate_action

        st = await delegate_action(self.cfg, "status", None, self.data_dir, rpc=self._rpc(),
                                   session=self._session())
        return {**st, **self._mode()}

    def _session(self) -> tuple[str, int] | None:
        """The instance's delegate session (issue 14's watch: its TTL counts from it), if it has one."""
        watch = getattr(self.handlers.trading, "delegation", None)
        rec = watch.session() if watch is not None else None
        return rec if isinstance(rec, tuple) else None

    def _rpc(self) -> RpcClient | None:
        """The instance's own RPC client (one HTTP session per app), once its venue is built."""
        venue = self.handlers.trading.async_venue
        return venue.chain.rpc if venue is not None else None

    def _store(self, passphrase: object) -> KeyStore:
        """The key store, its file unlocked with the passphrase typed in the UI (a Ledger or the OS
        keyring need none)."""
        from autotrader.delegation_ops import given_passphrase
        from execution.drift.factory import key_store

        return key_store(self.cfg, given_passphrase(str(passphrase or "")), self.data_dir)

    async def _owner(self, passphrase: object) -> Signer:
        """The owner's signer, in a thread: unlocking the key file (scrypt) or opening the Ledger
        never blocks the instance's loop (market data, the kill switch)."""
        from execution.drift.factory import owner_signer

        store = self._store(passphrase)

        def unlock() -> Signer:
            signer = owner_signer(self.cfg, store)
            signer.pubkey()  # a Ledger answers it once, here (then cached)
            return signer

        return await asyncio.to_thread(unlock)

    async def revoke(self, args: dict[str, Any]) -> Any:
        from autotrader.delegation_ops import delegate_action

        self._need_drift()
        self.handlers.engine.set_automation(False)  # at once: nothing automatic goes out from here on
        if self.cfg.venues.drift.use_delegate:
            self.handlers.manual_sign = True  # the delegate cannot sign any more
            self._keep_mode()
        owner = await self._owner(args.get("passphrase"))
        st = await delegate_action(self.cfg, "revoke", None, self.data_dir, owner=owner, rpc=self._rpc(),
                                   session=self._session())
        return {**st, **self._mode()}

    async def manual_sign(self, args: dict[str, Any]) -> Any:
        on = args.get("on")
        if not isinstance(on, bool):
            raise ValueError("manual_sign needs on: true|false")
        self._need_drift()
        if on:
            self.handlers.engine.set_automation(False)
        self.handlers.manual_sign = on
        self._keep_mode()
        return self._mode()

    def _requests(self, args: dict[str, Any]) -> tuple[Intent, list[OrderRequest]]:
        from autotrader.manual_cmd import protected_requests

        try:
            order = msgspec.convert(args.get("order"), ManualOrder)
        except msgspec.ValidationError as exc:
            raise ValueError(f"bad order: {exc}") from None
        e = self.handlers.engine
        try:
            intent = build_manual_intent(
                intent_id=f"hand-{uuid.uuid4().hex[:8]}", ts=e.clock.now_ms(), market=e.cfg.market,
                side=order.side, size=order.size, sl=order.sl, price=order.price, bid=e.bid, ask=e.ask,
                tps=[(p, None) for p in order.tps], default_split=self.handlers.risk.tp_split,
                equity_usd=e.start_equity)
        except ManualIntentError as exc:
            raise ValueError(str(exc)) from None
        return intent, protected_requests(intent, e.cfg.market)

    async def summary(self, args: dict[str, Any]) -> Any:
        """What the owner will sign: every order of the transaction as the venue rounds it."""
        from execution.drift.manual import summarize
        from execution.drift.venue import DriftVenue

        self._need_drift()
        venue = self.handlers.trading.async_venue
        if not isinstance(venue, DriftVenue):
            raise ValueError("the Drift venue is not connected")
        _, reqs = self._requests(args)
        owner = self.cfg.venues.drift.authority
        lines: list[str] = []
        for r in reqs:
            s = dataclasses.replace(await summarize(venue, r), signer=f"the owner {owner}")
            lines += [f"[{r.client_tag}]", *s.text().splitlines()]
        return {"lines": lines, "orders": len(reqs)}

    async def sign(self, args: dict[str, Any]) -> Any:
        """Sign the order with its protection as the owner, in one transaction, and follow it to
        the chain (``autotrader intent --manual``'s path, in a thread: it has its own loop)."""
        from autotrader.manual_cmd import run_manual_orders

        self._need_drift()
        _, reqs = self._requests(args)
        signer = await self._owner(args.get("passphrase"))
        out: list[str] = []
        code = await asyncio.to_thread(run_manual_orders, self.cfg, reqs, signer, yes=True, echo=out.append)
        return {"ok": code == 0, "lines": out}
