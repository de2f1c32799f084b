"""Crash between sign and send, and between send and confirm (the process SIGKILLed at the kill
point), then a restart that reconciles — on the engine's path and on ``autotrader intent
--manual``: one intended order, at most one landed, the app's state equals the chain's."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from autotrader.config import validate
from autotrader.trading import TradingStack
from core.bus import Bus
from core.clock import WallClock
from core.venue import OrderStatus
from execution.signers.keystore import EncryptedFileStore, passphrase_source
from storage.journal import Journal
from tests.conftest import REPO_ROOT
from tests.drift_engine_proc import publish_market
from tests.drift_faults import landed_places
from tests.drift_harness import DriftEnv, communicate, drift_env

PASS = "correct horse battery staple"


async def run(args: list[str], killpoint: str | None = None, timeout: float = 120) -> tuple[int, str]:
    env = {**os.environ, "AUTOTRADER_PASSPHRASE": PASS}
    env.pop("AUTOTRADER_KILLPOINT", None)
    if killpoint:
        env["AUTOTRADER_KILLPOINT"] = killpoint
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await communicate(proc, timeout)
    return proc.returncode if proc.returncode is not None else 0, out.decode()


def tree(env: DriftEnv, keyfile: Path, state: Path) -> dict[str, object]:
    return {
        "engine": {"venue": "drift", "retry_backoff_s": 0.0, "call_timeout_s": 5.0, "kill_backoff_s": 0.0},
        "venues": {
            "drift": {
                "rpc_url": env.rpc.url,
                "program_id": str(env.program_id),
                "authority": str(env.owner.pubkey()),
                "confirm_poll_s": 0.02,
                "rebroadcast_s": 0.1,
                "account_poll_s": 0.05,
                "ack_wait_s": 1.0,
            }
        },
        "keys": {"backend": "file", "encrypted_file": str(keyfile)},
        "storage": {"state_db": str(state)},
    }


def as_sets(t: dict[str, object], prefix: str = "") -> list[str]:
    out: list[str] = []
    for k, v in t.items():
        if isinstance(v, dict):
            out += as_sets(v, f"{prefix}{k}.")
        else:
            out += ["--set", f"{prefix}{k}={json.dumps(v)}"]
    return out


async def keys(env: DriftEnv, tmp: Path) -> Path:
    keyfile = tmp / "keys.enc"
    store = EncryptedFileStore(
        keyfile, passphrase_source(environ={"AUTOTRADER_PASSPHRASE": PASS}), scrypt_n=2**12
    )
    store.save("drift-delegate", env.delegate)
    store.save("drift-owner", env.owner)
    return keyfile


def j_events(stack: TradingStack) -> list:  # type: ignore[type-arg]
    assert stack.activity is not None
    return [r for r in stack.activity.query()]


def expire(env: DriftEnv) -> None:
    env.rpc.advance(env.rpc.blockhash_valid_slots + 10)  # every blockhash signed so far is past


# ---------------------------------------------------------------------------- the engine's path
@pytest.mark.parametrize(
    ("point", "expired"), [("after_sign", False), ("after_sign", True), ("after_send", False)]
)
async def test_engine_crash_mid_send_then_restart_reconciles(
    tmp_path: Path, point: str, expired: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)
    env = await drift_env(start=False)
    try:
        state = tmp_path / "state.sqlite3"
        t = tree(env, await keys(env, tmp_path), state)
        (tmp_path / "cfg.json").write_text(json.dumps(t))
        code, out = await run(
            [sys.executable, "-m", "tests.drift_engine_proc", str(tmp_path / "cfg.json"), str(state)],
            killpoint=point,
        )
        assert code == -signal.SIGKILL, out
        with Journal(state) as j:
            [send] = j.open_sends()
            assert send.refs == ["c1:e1"] and send.state == ("signed" if point == "after_sign" else "sent")
            [o] = [o for o in j.open_orders() if o.client_tag == "c1:e1"]
            assert o.state == "submitting" and o.user_order_id == 1 and o.intent_id == "c1"
        assert (len(env.rpc.landed) == 1) == (point == "after_send")
        if expired:
            expire(env)
        # restart: the app's stack on the same state database reconciles before it trades
        stack = TradingStack(validate(t), (bus := Bus()), (clock := WallClock()), state_db=state)
        await stack.start()
        try:
            v = stack.async_venue
            assert v is not None
            for _ in range(1000):
                publish_market(bus, clock.now_ms())
                await stack.engine.step()
                lc = stack.engine.lifecycles.get("c1")
                if (
                    stack.engine.recovered
                    and not v.sender.pending()
                    and not stack.engine.unknown
                    and (lc is None or lc.terminal)
                ):
                    break
                await asyncio.sleep(0.02)
            publish_market(bus, clock.now_ms())
            await stack.engine.step()
            landed = landed_places(env)
            assert all(n <= 1 for n in landed.values()), landed
            lc = stack.engine.lifecycles.get("c1")
            chain_orders = {o.user_order_id for o in env.sim.open_orders()}
            with Journal(state) as j:
                assert j.open_sends() == [], "every transaction resolved"
                entry = j.find_order(client_tag="c1:e1")
                assert entry is not None
                if expired and point == "after_sign":
                    assert landed == {} and chain_orders == set()
                    assert entry.state in ("failed", "rejected")
                    assert lc is None or lc.terminal
                else:
                    # it landed exactly once; the restart then cancels the resting entry (priced on a
                    # market that is gone: core/recovery.py) — and the app says what the chain says
                    assert landed[1] == 1, "the order landed exactly once"
                    assert chain_orders == set() and entry.state == "cancelled"
                    assert lc is not None and lc.terminal and lc.slots["c1:e1"].state == "done"
                    assert v._by_tag["c1:e1"].snapshot().status == OrderStatus.CANCELLED
                    assert any(e.kind == "order_resolved" for e in j_events(stack)) or point == "after_send"
        finally:
            await stack.aclose()
            stack.close()
    finally:
        await env.close()


# ---------------------------------------------------------------------------- intent --manual
@pytest.mark.parametrize(
    ("point", "expired"), [("after_sign", False), ("after_sign", True), ("after_send", False)]
)
async def test_manual_crash_mid_send_then_restart_reconciles(
    tmp_path: Path, point: str, expired: bool
) -> None:
    env = await drift_env(start=False)
    try:
        state = tmp_path / "state.sqlite3"
        sets = as_sets(tree(env, await keys(env, tmp_path), state))
        manual = [
            sys.executable,
            "-m",
            "autotrader",
            "intent",
            "buy",
            "--size",
            "2",
            "--price",
            "100",
            "--sl",
            "97",
            "--tp",
            "103",
            "--manual",
            "--yes",
            *sets,
        ]
        code, out = await run(manual, killpoint=point)
        assert code == -signal.SIGKILL, out
        with Journal(state) as j:
            [send] = j.open_sends()
            assert len(send.refs) == 3 and send.kind == "cancel_and_place"
            orders = [j.find_order(client_tag=r) for r in send.refs]
            assert all(o is not None and o.state == "submitting" and o.user_order_id for o in orders)
        assert (len(env.rpc.landed) == 1) == (point == "after_send")
        if expired:
            expire(env)
        code, out = await run([sys.executable, "-m", "autotrader", "venue", "reconcile", *sets])
        assert code == 0, out
        landed = landed_places(env)
        assert all(n <= 1 for n in landed.values()), landed
        with Journal(state) as j:
            assert j.open_sends() == []
            states = {
                o.client_tag.rsplit(":", 1)[-1]: o.state
                for o in (j.find_order(client_tag=r) for r in send.refs)
                if o is not None
            }
        if expired and point == "after_sign":
            assert landed == {} and env.sim.open_orders() == []
            assert set(states.values()) == {"failed"} and "did not land" in out
        else:
            assert sorted(landed) == [1, 2, 3] and len(env.sim.open_orders()) == 3
            assert set(states.values()) == {"open"} and "on chain, open" in out
        # the next manual intent: nothing of the first is sent again
        n = len(env.rpc.landed)
        code, out = await run(manual)
        assert code == 0, out
        assert len(env.rpc.landed) == n + 1 and all(c <= 1 for c in landed_places(env).values())
    finally:
        await env.close()
