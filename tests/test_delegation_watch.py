"""The delegate is read from the chain: a revoke or another delegate turns automation off (activity
row, toast kind, the badge from the chain); the session TTL warns an hour before and at the end
revokes when the owner key is at hand, else automation goes off and says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from solders.pubkey import Pubkey

from autotrader.config import validate
from autotrader.drift_stack import SESSION_KEY
from autotrader.trading import TradingStack
from core.bus import Bus
from core.clock import EventClock
from core.delegation import NO_DELEGATE, WARN_BEFORE_MS, evaluate
from core.engine_types import ENGINE_EVENTS, EngineEvent
from execution.signers.keystore import EncryptedFileStore, passphrase_source
from tests.drift_harness import T0, DriftEnv, drift_env
from tests.drift_sim import rep

PASS = "correct horse battery staple"
H = 3_600_000


def test_verdicts() -> None:
    me = str(Pubkey.new_unique())
    assert evaluate(me, None, None, 24 * H, T0).action == "unknown"
    assert evaluate(me, me, T0, 24 * H, T0 + H).action == "ok"
    w = evaluate(me, me, T0, 24 * H, T0 + 24 * H - WARN_BEFORE_MS + 1)
    assert w.action == "warn" and w.ok and "in 59 min" in w.reason
    e = evaluate(me, me, T0, 24 * H, T0 + 24 * H)
    assert e.action == "expired" and not e.ok and e.badge == f"DELEGATE EXPIRED {me[:4]}…{me[-4:]}"
    r = evaluate(me, NO_DELEGATE, T0, 24 * H, T0)
    assert r.action == "revoked" and not r.ok and r.badge == "DELEGATE REVOKED"
    other = str(Pubkey.new_unique())
    m = evaluate(me, other, T0, 24 * H, T0)
    assert m.action == "mismatch" and other in m.reason


async def stack_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner_key: bool
) -> tuple[DriftEnv, TradingStack, EventClock, list[EngineEvent]]:
    env = await drift_env(start=False)
    keyfile = tmp_path / "keys.enc"
    monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)
    store = EncryptedFileStore(keyfile, passphrase_source(None), scrypt_n=2**12)
    store.save("drift-delegate", env.delegate)
    if owner_key:
        store.save("drift-owner", env.owner)
    cfg = validate(
        {
            "engine": {"venue": "drift", "automation": "on", "call_timeout_s": 2.0},
            "venues": {
                "drift": {
                    "rpc_url": env.rpc.url,
                    "program_id": str(env.program_id),
                    "authority": str(env.owner.pubkey()),
                    "confirm_poll_s": 0.01,
                    "rebroadcast_s": 0.05,
                    "account_poll_s": 0.05,
                    "delegation_check_s": 0.05,
                }
            },
            "keys": {"backend": "file", "encrypted_file": str(keyfile)},
        }
    )
    clock = EventClock(T0)
    bus = Bus()
    events: list[EngineEvent] = []
    bus.on(ENGINE_EVENTS, events.append)
    stack = TradingStack(cfg, bus, clock, state_db=tmp_path / "state.sqlite3")
    await stack.start()
    return env, stack, clock, events


async def test_a_revoke_on_chain_turns_automation_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, stack, _clock, events = await stack_env(tmp_path, monkeypatch, owner_key=False)
    try:
        st = await stack.status()
        me = str(env.delegate.pubkey())
        assert st["delegation"]["badge"] == f"delegate {me[:4]}…{me[-4:]}"
        assert st["delegation"]["delegate"] == me
        assert stack.engine.automation_on
        env.sim.user = rep(env.sim.user, delegate=Pubkey.default())  # the owner revoked it elsewhere
        env.sim.write_user()
        v = stack.async_venue
        assert v is not None
        await v.refresh()  # an account update (the poll does the same within account_poll_s)
        assert not stack.engine.automation_on
        d = [e for e in events if e.kind == "delegation"]
        assert d and d[-1].data["stage"] == "revoked"
        assert (await stack.status())["delegation"]["badge"] == "DELEGATE REVOKED"
        with pytest.raises(RuntimeError, match="revoked"):
            stack.engine.set_automation(True)
        rows = [r for r in stack.activity.query() if r.kind == "delegation"] if stack.activity else []
        assert rows, "the activity log has it"
        env.sim.user = rep(env.sim.user, delegate=Pubkey.new_unique())  # another key
        env.sim.write_user()
        await v.refresh()
        assert [e.data["stage"] for e in events if e.kind == "delegation"][-1] == "mismatch"
    finally:
        await stack.aclose()
        stack.close()
        await env.close()


async def test_session_ttl_warns_then_revokes_with_the_owner_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, stack, clock, events = await stack_env(tmp_path, monkeypatch, owner_key=True)
    try:
        assert stack.store is not None and stack.delegation is not None
        assert stack.store.get_json(SESSION_KEY)["set_at_ms"] == T0  # first seen: the session starts
        clock.advance(T0 + 23 * H + 1)
        stack.delegation.check(str(env.delegate.pubkey()))
        assert [e.data["stage"] for e in events if e.kind == "delegation"] == ["warn"]
        assert stack.engine.automation_on
        clock.advance(T0 + 24 * H)
        stack.delegation.check(str(env.delegate.pubkey()))
        assert not stack.engine.automation_on
        assert stack.delegation._revoking is not None
        await stack.delegation._revoking
        stages = [e.data["stage"] for e in events if e.kind == "delegation"]
        assert stages[-1] == "revoked_at_expiry", events[-3:]
        assert env.sim.user.delegate == Pubkey.default(), "revoked on chain, signed by the owner"
    finally:
        await stack.aclose()
        stack.close()
        await env.close()


async def test_session_end_without_the_owner_key_turns_automation_off_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, stack, clock, events = await stack_env(tmp_path, monkeypatch, owner_key=False)
    try:
        assert stack.delegation is not None
        clock.advance(T0 + 24 * H + 5)
        stack.delegation.check(str(env.delegate.pubkey()))
        assert not stack.engine.automation_on
        why = [e.data["reason"] for e in events if e.kind == "delegation"][-1]
        assert "expired" in why and "owner key is not at hand" in why and "delegate revoke" in why
        assert env.sim.user.delegate == env.delegate.pubkey(), "nothing was sent"
    finally:
        await stack.aclose()
        stack.close()
        await env.close()
