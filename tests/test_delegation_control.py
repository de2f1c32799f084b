"""The delegation panel's commands on a running instance (autotrader/delegation_control.py),
against the local Solana JSON-RPC server with the simulated Drift program: the delegate read from
chain, revoke (automation off at once, even when the passphrase is wrong; signed by the owner;
confirmed on chain; manual-sign mode after), the engine's intents and automation refused in
manual-sign mode, and an order summarized then signed by hand with its stop and take-profit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from autotrader.config import validate
from autotrader.control_handlers import ControlHandlers
from autotrader.delegation_control import NOT_DRIFT, DelegationControl
from autotrader.trading import TradingStack
from core.bus import Bus, Topics
from core.clock import EventClock
from core.guards import GUARDS
from core.models import BookTop
from execution.signers.keystore import EncryptedFileStore, KeyStoreError, passphrase_source
from storage.state_store import StateStore
from tests.drift_harness import T0, drift_env
from tests.test_drift_wiring import PASS, _tree
from tests.test_engine import report

ORDER = {"side": "buy", "size": 1.0, "sl": 97.0, "price": 100.0, "tps": [103.0]}


def _handlers(stack: TradingStack, cfg: Any) -> ControlHandlers:
    def spawn(coro: Any, name: str) -> asyncio.Task[Any]:
        return asyncio.ensure_future(coro)

    return ControlHandlers(stack, None, cfg.risk, dict, spawn)  # type: ignore[arg-type]


async def test_revoke_and_manual_sign_on_the_local_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = await drift_env(start=False)
    stack: TradingStack | None = None
    try:
        keyfile = tmp_path / "keys.enc"
        monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)  # the instance unlocks its delegate key at start
        store = EncryptedFileStore(keyfile, passphrase_source(None), scrypt_n=2**12)
        store.save("drift-delegate", env.delegate)
        store.save("drift-owner", env.owner)
        tree = _tree(env.rpc.url, str(env.program_id), str(env.owner.pubkey()), keyfile)
        cfg = validate(tree)
        bus = Bus()
        stack = TradingStack(cfg, bus, EventClock(T0), state_db=tmp_path / "state.sqlite3")
        await stack.start()
        bus.publish(Topics.BOOK, BookTop(venue="binance", symbol="SOLUSDT", timestamp=T0, update_id=1,
                                         bid_px=100.0, bid_qty=10, ask_px=100.1, ask_qty=10, spread_bps=10,
                                         bid_usd=1e6, ask_usd=1e6))
        bus.publish(GUARDS, report(T0))
        monkeypatch.delenv("AUTOTRADER_PASSPHRASE")  # from here on only the passphrase typed in the UI
        handlers = _handlers(stack, cfg)
        settings = StateStore(tmp_path / "settings.sqlite3")
        ctl = DelegationControl(cfg, handlers, tmp_path / "data", settings)
        delegate = str(env.delegate.pubkey())

        st = await asyncio.wait_for(ctl.status({}), 30)
        assert st["applicable"] and st["delegate"] == delegate and st["authority"] == str(env.owner.pubkey())
        assert st["signs_as"] == "delegate" and st["manual_sign"] is False
        # the TTL is issue 14's delegate session: the instance's watch started it when it first saw the key
        ttl_ms = int(cfg.venues.drift.session_ttl_h * 3.6e6)
        assert st["set_at_ms"] == T0 and st["expires_at_ms"] == T0 + ttl_ms
        assert st["ttl"].startswith(f"{cfg.venues.drift.session_ttl_h:g} h session, ends 20")

        stack.engine.automation_on = True
        sent = len(env.rpc.sent)
        with pytest.raises(KeyStoreError):
            await asyncio.wait_for(ctl.revoke({"passphrase": "wrong"}), 30)
        assert stack.engine.automation_on is False, "automation goes off before anything is signed"
        assert handlers.manual_sign, "the delegate is about to go: orders are signed by hand"
        assert len(env.rpc.sent) == sent and (await ctl.status({}))["delegate"] == delegate

        out = await asyncio.wait_for(ctl.revoke({"passphrase": PASS}), 60)
        assert out["delegate"] is None and out["manual_sign"] and out["automation_on"] is False
        assert out["signature"]
        tx, ixs = env.sim.parse(env.rpc.sent[-1].raw)
        assert [n for n, _, _ in ixs] == ["update_user_delegate"]
        assert tx.message.account_keys[0] == env.owner.pubkey(), "the owner signs the revoke"
        assert (await ctl.status({}))["delegate"] is None  # on chain

        with pytest.raises(ValueError, match="manual-sign mode"):
            await handlers.intent({"side": "buy", "size": 1.0, "sl": 97.0})
        with pytest.raises(ValueError, match="manual-sign mode"):
            await handlers.automation({"on": True})

        summary = await asyncio.wait_for(ctl.summary({"order": ORDER}), 30)
        text = "\n".join(summary["lines"])
        assert summary["orders"] == 3 and "BUY 1 @ 100.0000" in text and "reduce-only" in text
        assert f"signed by the owner {env.owner.pubkey()}" in text
        sent = len(env.rpc.sent)
        signed = await asyncio.wait_for(ctl.sign({"order": ORDER, "passphrase": PASS}), 90)
        assert signed["ok"], signed["lines"]
        assert len(env.rpc.sent) == sent + 1, "one transaction: the entry with its stop and take-profit"
        tx, ixs = env.sim.parse(env.rpc.sent[-1].raw)
        assert tx.message.account_keys[0] == env.owner.pubkey() and [n for n, _, _ in ixs] == ["place_orders"]
        params = ixs[0][1].params
        assert [p.reduce_only for p in params] == [False, True, True]

        stack.engine.automation_on = True
        again = _handlers(stack, cfg)  # a restart: the mode comes back from the settings' store
        DelegationControl(cfg, again, tmp_path / "data", settings)
        assert again.manual_sign and stack.engine.automation_on is False

        off = await ctl.manual_sign({"on": False})
        assert off["manual_sign"] is False and not handlers.manual_sign
        restarted = _handlers(stack, cfg)
        DelegationControl(cfg, restarted, tmp_path / "data", settings)
        assert not restarted.manual_sign
        settings.close()
    finally:
        if stack is not None:
            await stack.aclose()
            stack.close()
        await env.close()


async def test_paper_has_no_delegation(tmp_path: Path) -> None:
    cfg = validate({})
    stack = TradingStack(cfg, Bus(), EventClock(T0), state_db=None)
    try:
        ctl = DelegationControl(cfg, _handlers(stack, cfg), tmp_path)
        st = await ctl.status({})
        assert st["applicable"] is False and st["text"] == NOT_DRIFT
        for call in (ctl.revoke({"passphrase": "x"}), ctl.manual_sign({"on": True}),
                     ctl.sign({"order": ORDER, "passphrase": "x"})):
            with pytest.raises(ValueError, match="paper venue"):
                await call
    finally:
        await stack.aclose()
        stack.close()
