"""The delegate session watch on Velocity (autotrader/velocity_stack.py): the delegate is read from
the Velocity User account; a revoke turns automation off; at the end of the session the owner key
revokes it through the Velocity program on the shared send path."""

from __future__ import annotations

from pathlib import Path

import pytest
from solders.pubkey import Pubkey

from autotrader.config import validate
from autotrader.drift_stack import SESSION_KEY
from autotrader.trading import TradingStack
from core.bus import Bus
from core.clock import EventClock
from core.engine_types import ENGINE_EVENTS, EngineEvent
from execution.signers.keystore import EncryptedFileStore, passphrase_source
from tests.velocity_harness import T0, VelocityEnv, velocity_env

PASS = "correct horse battery staple"
H = 3_600_000


async def stack_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner_key: bool
) -> tuple[VelocityEnv, TradingStack, EventClock, list[EngineEvent]]:
    env = await velocity_env(start=False)
    env.sim.deposit(5000)
    keyfile = tmp_path / "keys.enc"
    monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)
    store = EncryptedFileStore(keyfile, passphrase_source(None), scrypt_n=2**12)
    store.save("drift-delegate", env.delegate)
    if owner_key:
        store.save("drift-owner", env.owner)
    cfg = validate(
        {
            "engine": {"venue": "velocity", "automation": "on", "call_timeout_s": 2.0},
            "venues": {
                "velocity": {
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


async def test_a_revoke_on_the_velocity_account_turns_automation_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, stack, _clock, events = await stack_env(tmp_path, monkeypatch, owner_key=False)
    try:
        me = str(env.delegate.pubkey())
        st = await stack.status()
        assert st["delegation"]["badge"] == f"delegate {me[:4]}…{me[-4:]}"
        assert st["delegation"]["delegate"] == me
        assert stack.engine.automation_on
        env.sim.user["delegate"] = Pubkey.default()  # the owner revoked it elsewhere
        env.sim.write_user()
        assert stack.async_venue is not None
        await stack.async_venue.refresh()
        assert not stack.engine.automation_on
        assert [e.data["stage"] for e in events if e.kind == "delegation"][-1] == "revoked"
        assert (await stack.status())["delegation"]["badge"] == "DELEGATE REVOKED"
    finally:
        await stack.aclose()
        stack.close()
        await env.close()


async def test_the_session_end_revokes_on_velocity_with_the_owner_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, stack, clock, events = await stack_env(tmp_path, monkeypatch, owner_key=True)
    try:
        assert stack.store is not None and stack.delegation is not None
        assert stack.store.get_json(SESSION_KEY)["set_at_ms"] == T0  # first seen: the session starts
        clock.advance(T0 + 24 * H)
        stack.delegation.check(str(env.delegate.pubkey()))
        assert not stack.engine.automation_on
        assert stack.delegation._revoking is not None
        await stack.delegation._revoking
        stages = [e.data["stage"] for e in events if e.kind == "delegation"]
        assert stages[-1] == "revoked_at_expiry", events[-3:]
        assert Pubkey.from_string(str(env.sim.user["delegate"])) == Pubkey.default(), "revoked on chain"
        ix = [n for t in env.rpc.sent for n, _, _ in env.sim.parse(t.raw)[1]]
        assert ix == ["update_user_delegate"], "through the Velocity program"
    finally:
        await stack.aclose()
        stack.close()
        await env.close()
