"""The Drift venue as the app composes it: keys from the key store, config from TOML keys, the
engine's journal, a manual intent through the bus, the kill switch; and ``autotrader venue status``
from the command line — all against the local JSON-RPC server with the simulated Drift program."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from autotrader.config import validate
from autotrader.trading import TradingStack, VenueUnavailable
from core.bus import Bus, Topics
from core.clock import EventClock
from core.engine_types import ENGINE_EVENTS, EngineEvent
from core.guards import GUARDS
from core.intents import INTENTS
from core.manual import build_manual_intent
from core.models import BookTop
from execution.drift.venue import DriftVenue
from execution.signers.keystore import EncryptedFileStore, passphrase_source
from storage.journal import Journal
from tests.conftest import REPO_ROOT
from tests.drift_harness import T0, DriftEnv, communicate, drift_env
from tests.test_engine import report

PASS = "correct horse battery staple"


def _tree(env_url: str, pid: str, owner: str, keyfile: Path) -> dict[str, object]:
    return {
        "engine": {"venue": "drift", "retry_backoff_s": 0.0, "call_timeout_s": 2.0,
                   "kill_backoff_s": 0.0},
        "venues": {"drift": {"rpc_url": env_url, "program_id": pid, "authority": owner,
                             "rebroadcast_s": 0.05, "confirm_poll_s": 0.01, "ack_wait_s": 0.5,
                             "account_poll_s": 0.05}},
        "keys": {"backend": "file", "encrypted_file": str(keyfile)},
    }


async def test_trading_stack_on_drift_places_and_kills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = await drift_env(start=False)
    try:
        keyfile = tmp_path / "keys.enc"
        monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)
        store = EncryptedFileStore(keyfile, passphrase_source(None), scrypt_n=2**12)
        store.save("drift-delegate", env.delegate)
        cfg = validate(_tree(env.rpc.url, str(env.program_id), str(env.owner.pubkey()), keyfile))
        clock = EventClock(T0)
        bus = Bus()
        events: list[EngineEvent] = []
        bus.on(ENGINE_EVENTS, events.append)
        stack = TradingStack(cfg, bus, clock, state_db=tmp_path / "state.sqlite3")
        await stack.start()
        assert stack.venue.name and (await stack.venue.status()).state == "active"
        engine = stack.engine
        bus.publish(Topics.BOOK, BookTop(venue="binance", symbol="SOLUSDT", timestamp=T0, update_id=1,
                                         bid_px=100.0, bid_qty=10, ask_px=100.1, ask_qty=10, spread_bps=10,
                                         bid_usd=1e6, ask_usd=1e6))
        bus.publish(GUARDS, report(T0))
        it = build_manual_intent(intent_id="m1", ts=T0, market="SOL-PERP", side="buy", size=1.0, sl=98.0,
                                 price=None, bid=100.0, ask=100.1, tps=[(103.0, None)], equity_usd=10_000.0)
        bus.publish(INTENTS, it)
        await engine.step()
        assert "intent_accepted" in [e.kind for e in events], [e.data for e in events]
        assert env.rpc.sent, "the entry went out as a transaction"
        assert stack.priority_fee() is not None  # the preflight sees the network's fee
        jo = stack.journal.find_order(client_tag="m1:e1") if stack.journal is not None else None
        assert jo is not None and 1 <= jo.user_order_id <= 255
        await stack.venue.wait_idle()  # type: ignore[attr-defined]
        r = await engine.kill("drift wiring test")
        assert r.confirmed, r
        assert not await stack.venue.open_orders()
        # equity from the venue, with its source: what the engine sizes with and status --json shows
        assert engine.equity_from_venue and engine.equity_now == pytest.approx(10_000.0, abs=1.0)
        st = await stack.status()
        assert st["equity"] == pytest.approx(10_000.0, abs=1.0)
        assert str(st["equity_source"]).startswith("drift: total collateral")
        await stack.aclose()
        stack.close()
    finally:
        await env.close()


def test_missing_keys_are_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)
    cfg = validate(_tree("http://127.0.0.1:9", "dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH",
                         "11111111111111111111111111111111", tmp_path / "none.enc"))
    with pytest.raises(VenueUnavailable, match="drift-delegate"):
        TradingStack(cfg, Bus(), EventClock(T0), state_db=None)


async def test_venue_status_command_against_the_local_rpc() -> None:
    env = await drift_env(start=False)
    try:
        cmd = [sys.executable, "-m", "autotrader", "venue", "status", "--json",
               "--set", f'venues.drift.rpc_url="{env.rpc.url}"',
               "--set", f'venues.drift.program_id="{env.program_id}"',
               "--set", f'venues.drift.authority="{env.owner.pubkey()}"']

        async def status() -> dict[str, object]:
            proc = await asyncio.create_subprocess_exec(*cmd, cwd=REPO_ROOT, env=dict(os.environ),
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            out, err = await communicate(proc, 60)
            assert proc.returncode == 0, err.decode()
            result: dict[str, object] = json.loads(out)
            return result

        assert (await status())["state"] == "active"
        env.sim.set_status(exchange=0xFF)  # the April 2026 pause: everything refused
        st = await status()
        assert st["state"] == "paused" and st["exchange_status"] == 0xFF, st
        assert "paused" in str(st["reason"]).lower()
    finally:
        await env.close()


async def test_intent_manual_signs_entry_stop_and_tps_in_one_transaction(tmp_path: Path) -> None:
    env = await drift_env(start=False)
    try:
        keyfile = tmp_path / "keys.enc"
        pw = tmp_path / "pw"
        pw.write_text(PASS)
        store = EncryptedFileStore(keyfile, passphrase_source(pw), scrypt_n=2**12)
        store.save("drift-owner", env.owner)
        cmd = [sys.executable, "-m", "autotrader", "intent", "buy", "--size", "2", "--price", "100",
               "--sl", "97", "--tp", "103", "--tp", "106", "--manual", "--yes", "--passphrase-file", str(pw),
               "--set", f'venues.drift.rpc_url="{env.rpc.url}"',
               "--set", f'venues.drift.program_id="{env.program_id}"',
               "--set", f'venues.drift.authority="{env.owner.pubkey()}"',
               "--set", 'keys.backend="file"', "--set", f'keys.encrypted_file="{keyfile}"',
               "--set", "venues.drift.confirm_poll_s=0.02",
               "--set", f'storage.state_db="{tmp_path / "state.sqlite3"}"']
        proc = await asyncio.create_subprocess_exec(*cmd, cwd=REPO_ROOT, env=dict(os.environ),
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 90)
        text = out.decode()
        assert proc.returncode == 0, text + err.decode()
        assert "reduce-only" in text and "trigger" in text
        assert len(env.rpc.sent) == 1, "one transaction, one signature (one Ledger confirmation)"
        tx, ixs = env.sim.parse(env.rpc.sent[0].raw)
        assert tx.message.account_keys[0] == env.owner.pubkey(), "signed by the owner (delegation off)"
        assert [name for name, _, _ in ixs] == ["place_orders"]
        params = ixs[0][1].params
        assert len(params) == 4  # entry, stop, TP1, TP2
        entry, stop, tp1, tp2 = params
        assert not entry.reduce_only and entry.price == 100_000_000
        assert entry.base_asset_amount == 2_000_000_000
        assert stop.reduce_only and stop.trigger_price == 97_000_000
        assert tp1.reduce_only and tp2.reduce_only and tp1.price == 103_000_000 and tp2.price == 106_000_000
        assert tp1.base_asset_amount + tp2.base_asset_amount == 2_000_000_000
    finally:
        await env.close()


async def test_keys_and_delegation_from_the_command_line(tmp_path: Path) -> None:
    """keys generate (no secret printed) → delegate set (owner signs) → status → revoke."""
    env = await drift_env(start=False)
    try:
        keyfile, pw = tmp_path / "keys.enc", tmp_path / "pw"
        pw.write_text(PASS)
        EncryptedFileStore(keyfile, passphrase_source(pw), scrypt_n=2**12).save("drift-owner", env.owner)
        sets = ["--set", f'venues.drift.rpc_url="{env.rpc.url}"',
                "--set", f'venues.drift.program_id="{env.program_id}"',
                "--set", f'venues.drift.authority="{env.owner.pubkey()}"',
                "--set", 'keys.backend="file"', "--set", f'keys.encrypted_file="{keyfile}"',
                "--set", "venues.drift.confirm_poll_s=0.02"]

        async def cli(*args: str) -> tuple[int, str]:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "autotrader", *args, *sets,
                                                        cwd=REPO_ROOT, env=dict(os.environ),
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 90)
            return proc.returncode or 0, out.decode() + err.decode()

        code, out = await cli("keys", "generate", "--passphrase-file", str(pw))
        assert code == 0, out
        delegate_pk = out.split(":", 1)[1].split()[0]
        kp = EncryptedFileStore(keyfile, passphrase_source(pw), scrypt_n=2**12).load("drift-delegate")
        assert str(kp.pubkey()) == delegate_pk
        assert str(kp) not in out and bytes(kp).hex() not in out, "never prints a secret"
        code, out = await cli("delegate", "set", "--json", "--passphrase-file", str(pw))
        assert code == 0, out
        tx, ixs = env.sim.parse(env.rpc.sent[-1].raw)
        assert [n for n, _, _ in ixs] == ["update_user_delegate"]
        assert tx.message.account_keys[0] == env.owner.pubkey(), "the owner signs delegation"
        code, out = await cli("delegate", "status", "--json")
        assert code == 0 and json.loads(out)["delegate"] == delegate_pk, out
        assert isinstance(json.loads(out)["set_at_ms"], int), "this app remembers when it set the delegate"
        code, out = await cli("delegate", "status")
        assert code == 0 and f"delegate   {delegate_pk}" in out and "set at     20" in out, out
        code, out = await cli("delegate", "revoke", "--json", "--passphrase-file", str(pw))
        assert code == 0, out
        code, out = await cli("delegate", "status", "--json")
        assert json.loads(out)["delegate"] != delegate_pk
    finally:
        await env.close()


async def stack_with_stop_and_tp(
    env: DriftEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[TradingStack, DriftVenue]:
    """The app's stack on Drift (delegate key from the key store) with a long of 1 on the account,
    its stop ``k:sl1`` and a take-profit ``k:tp1`` on chain."""
    from core.venue import OrderRequest, OrderType, TriggerCondition

    keyfile = tmp_path / "keys.enc"
    monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)
    store = EncryptedFileStore(keyfile, passphrase_source(None), scrypt_n=2**12)
    store.save("drift-delegate", env.delegate)
    cfg = validate(_tree(env.rpc.url, str(env.program_id), str(env.owner.pubkey()), keyfile))
    stack = TradingStack(cfg, Bus(), EventClock(T0), state_db=tmp_path / "state.sqlite3")
    await stack.start()
    v = stack.async_venue
    assert v is not None
    env.sim.set_position(0, 1.0, 150.0)
    await v.place(OrderRequest(market="SOL-PERP", side="sell", type=OrderType.TRIGGER_MARKET, size=1.0,
                               trigger_price=140.0, trigger_condition=TriggerCondition.BELOW,
                               reduce_only=True, client_tag="k:sl1"))
    await v.place(OrderRequest(market="SOL-PERP", side="sell", type=OrderType.LIMIT, size=1.0,
                               price=160.0, reduce_only=True, client_tag="k:tp1"))
    await v.wait_idle()
    return stack, v


async def test_a_full_disk_never_holds_a_kill_on_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write of the state database fails: the kill's cancels still go out on chain (their
    send rows wait in memory and are written once the disk takes writes again)."""
    import sqlite3

    from storage.faults import set_write_hook

    env = await drift_env(start=False)
    try:
        stack, v = await stack_with_stop_and_tp(env, tmp_path, monkeypatch)

        def disk_full(store: str, op: str) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        prev = set_write_hook(disk_full)
        try:
            r = await stack.engine.kill("disk full test")
            assert r.confirmed and r.cancelled == 1
            assert [o.user_order_id for o in env.sim.open_orders()] == [1], "the TP went, the stop stays"
            j = stack.journal
            assert j is not None and getattr(j, "pending", 0) > 0, "the writes wait in memory"
            await v.wait_idle()  # the cancel's transaction is followed to its end, disk or not
        finally:
            set_write_hook(prev)
        assert stack.flush_storage()
        sig = v.cancel_signature("k:tp1")
        assert sig is not None
        with Journal(tmp_path / "state.sqlite3") as jr:
            row = jr.get_send(sig)
            assert row is not None and row.state == "landed" and row.kind == "cancel", "written later"
        await stack.aclose()
        stack.close()
    finally:
        await env.close()


async def test_kill_through_the_running_instance_answers_with_each_cancel_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``autotrader kill`` against a running instance: the instance's control handler waits for the
    chain, answers with each cancellation's signature (as landed) and the stop that stays."""
    from autotrader.control_handlers import ControlHandlers
    from autotrader.kill_cmd import kill_text

    env = await drift_env(start=False)
    try:
        stack, _v = await stack_with_stop_and_tp(env, tmp_path, monkeypatch)
        tasks: list[asyncio.Task[object]] = []

        def spawn(coro, name):  # type: ignore[no-untyped-def]
            tasks.append(asyncio.ensure_future(coro))
            return tasks[-1]

        handlers = ControlHandlers(stack, None, None, dict, spawn, wait_s=30.0)  # type: ignore[arg-type]
        out = await handlers.kill({"reason": "manual", "flatten": False, "cancel_all": False})
        assert out["confirmed"] and out["by"] == "the running instance" and out["cancelled"] == 1, out
        [cancelled] = out["cancelled_orders"]
        sig = cancelled["cancel_signature"]
        assert cancelled["tag"] == "k:tp1" and sig in env.rpc.landed
        assert [o["tag"] for o in out["kept"]] == ["k:sl1"]
        text = kill_text(out)
        assert f"signature {sig}" in text and "stays on the venue: k:sl1" in text
        assert [o.user_order_id for o in env.sim.open_orders()] == [1]
        await asyncio.gather(*tasks)
        await stack.aclose()
        stack.close()
    finally:
        await env.close()
