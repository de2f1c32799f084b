"""The Velocity venue as the app composes it (config, keys, journal, engine, kill switch) and from
the command line (venue status, intent --dry-run / --manual, delegation), against the local
JSON-RPC server with the simulated Velocity program; and Drift's ``venue status`` when the Drift
program no longer accepts orders."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from autotrader.config import validate
from autotrader.trading import TradingStack
from core.bus import Bus, Topics
from core.clock import EventClock
from core.engine_types import ENGINE_EVENTS, EngineEvent
from core.guards import GUARDS
from core.intents import INTENTS
from core.manual import build_manual_intent
from core.models import BookTop
from execution.signers.keystore import EncryptedFileStore, passphrase_source
from execution.velocity.program import load_idl
from tests.conftest import REPO_ROOT
from tests.drift_harness import drift_env
from tests.test_engine import report
from tests.velocity_harness import T0, velocity_env

PASS = "correct horse battery staple"


def _sets(env: Any, keyfile: Path | None = None) -> list[str]:
    out = [
        "--set",
        'engine.venue="velocity"',
        "--set",
        f'venues.velocity.rpc_url="{env.rpc.url}"',
        "--set",
        f'venues.velocity.program_id="{env.program_id}"',
        "--set",
        f'venues.velocity.authority="{env.owner.pubkey()}"',
        "--set",
        "venues.velocity.ack_wait_s=0.5",
        "--set",
        "venues.velocity.rebroadcast_s=0.05",
        "--set",
        "venues.velocity.confirm_poll_s=0.02",
    ]
    if keyfile is not None:
        out += ["--set", 'keys.backend="file"', "--set", f'keys.encrypted_file="{keyfile}"']
    return out


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "autotrader",
        *args,
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_trading_stack_on_velocity_places_and_kills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = await velocity_env(start=False)
    try:
        env.sim.deposit(5000)
        keyfile = tmp_path / "keys.enc"
        monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)
        EncryptedFileStore(keyfile, passphrase_source(None), scrypt_n=2**12).save(
            "drift-delegate", env.delegate
        )
        cfg = validate(
            {
                "engine": {
                    "venue": "velocity",
                    "retry_backoff_s": 0.0,
                    "call_timeout_s": 2.0,
                    "kill_backoff_s": 0.0,
                },
                "venues": {
                    "velocity": {
                        "rpc_url": env.rpc.url,
                        "program_id": str(env.program_id),
                        "authority": str(env.owner.pubkey()),
                        "confirm_poll_s": 0.01,
                        "rebroadcast_s": 0.02,
                        "ack_wait_s": 0.5,
                        "account_poll_s": 0.05,
                    }
                },
                "keys": {"backend": "file", "encrypted_file": str(keyfile)},
            }
        )
        bus = Bus()
        events: list[EngineEvent] = []
        bus.on(ENGINE_EVENTS, events.append)
        stack = TradingStack(cfg, bus, EventClock(T0), state_db=tmp_path / "state.sqlite3")
        await stack.start()
        assert (await stack.venue.status()).state == "active"
        assert stack.equity() == pytest.approx(5000.0)  # from the User account, in USDT
        bus.publish(
            Topics.BOOK,
            BookTop(
                venue="binance",
                symbol="SOLUSDT",
                timestamp=T0,
                update_id=1,
                bid_px=149.99,
                bid_qty=10,
                ask_px=150.01,
                ask_qty=10,
                spread_bps=1.3,
                bid_usd=1e6,
                ask_usd=1e6,
            ),
        )
        bus.publish(GUARDS, report(T0))
        intent = build_manual_intent(
            intent_id="m1",
            ts=T0,
            market="SOL-PERP",
            side="buy",
            size=1.0,
            sl=147.0,
            price=150.0,
            bid=None,
            ask=None,
            tps=[(153.0, None)],
            equity_usd=5000.0,
        )
        bus.publish(INTENTS, intent)
        await stack.engine.step()
        assert "intent_accepted" in [e.kind for e in events], [e.data for e in events]
        assert stack.priority_fee() is not None  # the preflight sees the network's fee
        jo = stack.journal.find_order(client_tag="m1:e1") if stack.journal is not None else None
        assert jo is not None and jo.user_order_id == 1
        await stack.venue.wait_idle()  # type: ignore[attr-defined]
        assert [o["user_order_id"] for o in env.sim.open_orders()] == [1]
        r = await stack.engine.kill("velocity wiring test")
        assert r.confirmed, r
        assert env.sim.open_orders() == [] and not await stack.venue.open_orders()
        assert any(e.kind == "kill_switch" for e in events)
        st = await stack.status()
        assert st["venue"]["name"] == "velocity" and st["venue"]["cancels_allowed"] is True
        assert st["equity"] == pytest.approx(5000.0) and st["equity_source"].startswith("velocity")
        await stack.aclose()
        stack.close()
    finally:
        await env.close()


async def test_venue_status_command_names_the_difference_of_a_changed_program() -> None:
    env = await velocity_env(start=False)
    try:
        code, out, err = await cli("venue", "status", "--json", *_sets(env))
        assert code == 0, err
        st = json.loads(out)
        assert (st["state"], st["perp_market_name"], st["perp_market_index"]) == ("active", "SOL-PERP", 1)
        assert st["program"]["verdict"] == "match" and st["equity_usdt"] == 0.0
        idl = copy.deepcopy(load_idl())
        ix = next(i for i in idl["instructions"] if i["name"] == "place_perp_order")
        ix["accounts"].insert(2, {"name": "user_stats", "writable": True})
        env.sim.publish_idl(idl)
        env.sim.set_status(market="ReduceOnly")
        code, out, err = await cli("venue", "status", *_sets(env))
        assert code == 0, err
        assert "state: paused" in out and "program check: differs: instruction place_perp_order" in out
        assert "user_stats" in out and "status ReduceOnly" in out
    finally:
        await env.close()


async def test_intent_dry_run_prints_what_would_be_signed_and_sends_nothing() -> None:
    env = await velocity_env(start=False)
    try:
        code, out, err = await cli(
            "intent",
            "buy",
            "--size",
            "2",
            "--price",
            "150",
            "--sl",
            "147",
            "--tp",
            "153",
            "--dry-run",
            "--json",
            *_sets(env),
        )
        assert code == 0, err
        d = json.loads(out)
        assert d["dry_run"] and not d["sent"] and env.rpc.sent == []
        [tx] = d["transactions"]
        [ix] = tx["instructions"]
        assert ix["program_id"] == str(env.program_id) and ix["instruction"] == "place_orders"
        assert [a["name"] for a in ix["accounts"][:3]] == ["state", "user", "authority"]
        assert ix["accounts"][2] == {
            "name": "authority",
            "pubkey": str(env.owner.pubkey()),
            "writable": False,
            "signer": True,
        }
        assert bytes.fromhex(ix["data_hex"])[:8] == bytes([60, 63, 50, 123, 12, 197, 60, 190])
        entry, stop, tp = ix["args"]["params"]
        assert (entry["price"], entry["base_asset_amount"], entry["post_only"]) == (
            150_000_000,
            2_000_000_000,
            "MustPostOnly",
        )
        assert stop["reduce_only"] and stop["trigger_price"] == 147_000_000 and tp["price"] == 153_000_000
        code, out, err = await cli(
            "intent",
            "sell",
            "--size",
            "1",
            "--price",
            "150",
            "--sl",
            "152",
            "--dry-run",
            "--json",
            "--set",
            'engine.venue="paper"',
        )
        assert code == 0, err
        d = json.loads(out)
        assert (
            d["venue"] == "paper" and not d["sent"] and [r["side"] for r in d["requests"]] == ["sell", "buy"]
        )
        env.sim.set_status(exchange=0xFF)
        code, out, err = await cli(
            "intent", "buy", "--size", "2", "--price", "150", "--sl", "147", "--dry-run", *_sets(env)
        )
        assert code == 1 and "REFUSED" in out and "paused" in out, out + err
    finally:
        await env.close()


async def test_drift_dry_run_and_status_when_the_program_no_longer_accepts_orders() -> None:
    env = await drift_env(start=False)
    try:
        sets = [
            "--set",
            f'venues.drift.rpc_url="{env.rpc.url}"',
            "--set",
            f'venues.drift.program_id="{env.program_id}"',
            "--set",
            f'venues.drift.authority="{env.owner.pubkey()}"',
            "--set",
            'engine.venue="drift"',
        ]
        code, out, err = await cli(
            "intent", "buy", "--size", "2", "--price", "100", "--sl", "97", "--dry-run", "--json", *sets
        )
        assert code == 0, err
        [ix] = json.loads(out)["transactions"][0]["instructions"]
        assert ix["instruction"] == "place_orders" and ix["program_id"] == str(env.program_id)
        assert env.rpc.sent == []
        code, out, err = await cli("venue", "status", "--json", *sets)
        assert code == 0 and json.loads(out)["accepts_orders"] is True, out + err
        # protocol-v2 >= v2.162.0: every instruction removed -> Anchor error 101 on dispatch
        env.rpc.methods["simulateTransaction"] = lambda p: {
            "context": {"slot": 1},
            "value": {
                "err": {"InstructionError": [0, {"Custom": 101}]},
                "logs": ["Program log: Fallback functions are not supported"],
            },
        }
        code, out, err = await cli("venue", "status", "--json", *sets)
        st = json.loads(out)
        assert code == 0 and st["accepts_orders"] is False and st["state"] == "paused", out + err
        assert "no longer accepts orders" in st["reason"]
    finally:
        await env.close()


async def test_manual_orders_and_delegation_on_velocity(tmp_path: Path) -> None:
    env = await velocity_env(start=False)
    try:
        keyfile, pw = tmp_path / "keys.enc", tmp_path / "pw"
        pw.write_text(PASS)
        EncryptedFileStore(keyfile, passphrase_source(pw), scrypt_n=2**12).save("drift-owner", env.owner)
        sets = _sets(env, keyfile)
        code, out, err = await cli(
            "intent",
            "buy",
            "--size",
            "2",
            "--price",
            "150",
            "--sl",
            "147",
            "--tp",
            "153",
            "--manual",
            "--yes",
            "--passphrase-file",
            str(pw),
            *sets,
        )
        assert code == 0, out + err
        assert "reduce-only" in out and "match" in out
        [sent] = env.rpc.sent
        tx, ixs = env.sim.parse(sent.raw)
        assert tx.message.account_keys[0] == env.owner.pubkey() and [n for n, _, _ in ixs] == ["place_orders"]
        assert len(env.sim.open_orders()) == 3
        code, out, err = await cli("keys", "generate", "--passphrase-file", str(pw), *sets)
        assert code == 0, err
        delegate_pk = out.split(":", 1)[1].split()[0]
        code, out, err = await cli("delegate", "set", "--json", "--passphrase-file", str(pw), *sets)
        assert code == 0, out + err
        assert json.loads(out)["delegate"] == delegate_pk == str(env.sim.user["delegate"])
        code, out, err = await cli("delegate", "revoke", "--json", "--passphrase-file", str(pw), *sets)
        assert code == 0 and json.loads(out)["delegate"] == "", out + err
    finally:
        await env.close()


async def test_a_velocity_config_on_the_wrong_cluster_is_refused_before_any_read() -> None:
    env = await velocity_env(start=False)
    try:
        env.rpc.methods["getGenesisHash"] = lambda p: (
            "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d"
        )  # mainnet
        code, out, err = await cli("venue", "status", *_sets(env))
        assert code == 2 and "mainnet" in err, out + err
        assert env.rpc.method_calls("getMultipleAccounts") == []
    finally:
        await env.close()


async def test_kill_without_a_daemon_on_velocity_cancels_entries_and_tps_and_keeps_the_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``autotrader kill`` with no running instance, ``engine.venue = "velocity"``: the delegate
    cancels the entry and the take-profit on chain through the shared send path (each cancellation's
    signature printed, as the chain has it), the stop of the open position stays, HALTED recorded."""
    from core.venue import OrderRequest, OrderType, PostOnly, TriggerCondition
    from storage.journal import Journal

    env = await velocity_env()
    try:
        v = env.venue
        await v.place(OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=3.0,
                                   price=148.0, post_only=PostOnly.MUST, client_tag="i0:e1"))
        await v.wait_idle()
        env.sim.fill(1)  # a +3 position
        reqs = [
            OrderRequest(market="SOL-PERP", side="sell", type=OrderType.TRIGGER_MARKET, size=3.0,
                         trigger_price=140.0, trigger_condition=TriggerCondition.BELOW, reduce_only=True,
                         client_tag="i1:sl1"),
            OrderRequest(market="SOL-PERP", side="sell", type=OrderType.LIMIT, size=3.0, price=160.0,
                         reduce_only=True, client_tag="i1:tp1"),
            OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1.0, price=145.0,
                         post_only=PostOnly.MUST, client_tag="i2:e1"),
        ]
        for r in reqs:
            await v.place(r)
        await v.wait_idle()
        assert len(env.sim.open_orders()) == 3
        db = tmp_path / "state.sqlite3"
        with Journal(db) as j:  # what the instance that placed them journaled
            for b in env.bindings[1:]:
                iid, role = b.client_tag.split(":")
                j.begin_intent(iid, {"id": iid})
                j.record_order(iid, role.rstrip("0123456789"), b.client_tag, b.order_id, "open",
                               user_order_id=b.user_order_id)
        keyfile = tmp_path / "keys.enc"
        EncryptedFileStore(
            keyfile, passphrase_source(environ={"AUTOTRADER_PASSPHRASE": PASS}), scrypt_n=2**12
        ).save("drift-delegate", env.delegate)
        extra = []
        for kv in ("engine.kill_backoff_s=0.05", "engine.kill_backoff_max_s=0.2", f'storage.state_db="{db}"',
                   f'control.socket_path="{tmp_path / "none.sock"}"', "venues.velocity.account_poll_s=0.05"):
            extra += ["--set", kv]
        monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)
        code, out, err = await cli("kill", *_sets(env, keyfile), *extra)
        assert code == 0, out + err
        assert [o["user_order_id"] for o in env.sim.open_orders()] == [2], "only the stop stays"
        assert "HALTED" in out and "2 order(s) cancelled, confirmed" in out, out
        cancels = {t.signature for t in env.rpc.sent if env.sim.parse(t.raw)[1][0][0] == "cancel_order"}
        assert len(cancels) == 2
        for sig in cancels:
            assert sig in out and sig in env.rpc.landed
        with Journal(db) as j:
            sends = [j.get_send(s) for s in cancels]
        assert all(s is not None and s.venue == "velocity" and s.state == "landed" for s in sends)
    finally:
        await env.close()


async def test_venue_reconcile_on_velocity_follows_a_journaled_send_to_its_landing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process stopped mid-send left a signed Velocity transaction unresolved in the journal:
    ``autotrader venue reconcile`` follows the same bytes until the chain decides, and says so."""
    import msgspec

    from core.venue import OrderRequest, OrderType, PostOnly
    from execution.solana_send.sender import TxSender
    from execution.velocity.venue import VelocityVenue
    from storage.journal import Journal
    from tests.velocity_harness import FAST

    env = await velocity_env()
    db = tmp_path / "state.sqlite3"
    try:
        req = OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1.0, price=149.0,
                           post_only=PostOnly.MUST, client_tag="i1:e1", user_order_id=7)
        env.sim.land = False  # the first process never sees it land
        with Journal(db) as j:
            j.begin_intent("i1", {"id": "i1"})
            j.record_order("i1", "e", "i1:e1", None, "submitting", user_order_id=7,
                           request=msgspec.to_builtins(req))
            v = env.venue
            sender = TxSender(env.client, FAST, journal=j, venue="velocity")
            first = VelocityVenue(v.chain, sender, v.signer, v.clock, check_program=False)
            await first.refresh()
            await first.place(req)
            await first.sender.close()  # stopped: the send stays open in the journal
            [rec] = j.open_sends()
        env.sim.land = True
        keyfile = tmp_path / "keys.enc"
        EncryptedFileStore(keyfile, passphrase_source(environ={"AUTOTRADER_PASSPHRASE": PASS}),
                           scrypt_n=2**12).save("drift-delegate", env.delegate)
        monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)
        state = ["--set", f'storage.state_db="{db}"']
        code, out, err = await cli("venue", "reconcile", *_sets(env, keyfile), *state)
        assert code == 0, out + err
        assert f"i1:e1: on chain, open (signature {rec.signature})" in out, out + err
        assert [o["user_order_id"] for o in env.sim.open_orders()] == [7]
        assert {t.signature for t in env.rpc.sent} == {rec.signature}, "the same bytes, never re-signed"
        with Journal(db) as j:
            landed = j.get_send(rec.signature)
            assert j.open_sends() == [] and landed is not None and landed.state == "landed"
    finally:
        await env.close()


async def test_manual_orders_on_velocity_signed_on_a_ledger(tmp_path: Path) -> None:
    """``keys.owner_signer = "ledger"``: the owner's Ledger (Speculos' APDU protocol, a fake device
    holding the owner key) signs the one Velocity transaction of ``intent --manual``; it lands once."""
    from tests.test_keys_ledger import FakeSpeculos

    env = await velocity_env(start=False)
    sp = FakeSpeculos(env.owner)
    try:
        sets = [*_sets(env), "--set", 'keys.owner_signer="ledger"', "--set", 'keys.ledger_transport="tcp"',
                "--set", f'keys.speculos="127.0.0.1:{sp.port}"', "--set", 'keys.backend="file"',
                "--set", f'keys.encrypted_file="{tmp_path / "keys.enc"}"',
                "--set", f'storage.state_db="{tmp_path / "state.sqlite3"}"']
        order = ["--size", "2", "--price", "150", "--sl", "147", "--tp", "153"]
        code, out, err = await cli("intent", "buy", *order, "--manual", "--yes", *sets)
        assert code == 0, out + err
        assert len(env.rpc.sent) >= 1 and len({t.signature for t in env.rpc.sent}) == 1, "signed once"
        tx, parsed = env.sim.parse(env.rpc.sent[0].raw)
        assert tx.message.account_keys[0] == env.owner.pubkey()
        assert [n for n, _, _ in parsed] == ["place_orders"]
        assert any(a[1] == 0x06 for a in sp.apdus), "the signature came from the device"
        assert sorted(o["user_order_id"] for o in env.sim.open_orders()) == [1, 2, 3]
    finally:
        sp.srv.close()
        await env.close()
