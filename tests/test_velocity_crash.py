"""Velocity: ``autotrader intent --manual`` SIGKILLed between sign and send, or between send and
confirm (the kill points of execution/solana_send/crash.py), then ``autotrader venue reconcile``:
the journal held the signed transaction; the restart follows the same bytes (never re-signed
before the chain proves they cannot land); one intended order, at most one landed; the journal
says what the chain holds."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from storage.journal import Journal
from tests.test_drift_crash import as_sets, run
from tests.test_velocity_faults import landed
from tests.velocity_harness import VelocityEnv, velocity_env

PASS = "correct horse battery staple"


def tree(env: VelocityEnv, keyfile: Path, state: Path) -> dict[str, object]:
    return {
        "engine": {"venue": "velocity", "retry_backoff_s": 0.0, "call_timeout_s": 5.0, "kill_backoff_s": 0.0},
        "venues": {
            "velocity": {
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


def keys(env: VelocityEnv, tmp: Path) -> Path:
    from execution.signers.keystore import EncryptedFileStore, passphrase_source

    keyfile = tmp / "keys.enc"
    store = EncryptedFileStore(keyfile, passphrase_source(environ={"AUTOTRADER_PASSPHRASE": PASS}),
                               scrypt_n=2**12)
    store.save("drift-delegate", env.delegate)
    store.save("drift-owner", env.owner)
    return keyfile


@pytest.mark.parametrize(
    ("point", "expired"), [("after_sign", False), ("after_sign", True), ("after_send", False)]
)
async def test_manual_crash_mid_send_on_velocity_then_reconcile(
    tmp_path: Path, point: str, expired: bool
) -> None:
    env = await velocity_env(start=False)
    try:
        state = tmp_path / "state.sqlite3"
        sets = as_sets(tree(env, keys(env, tmp_path), state))
        manual = [sys.executable, "-m", "autotrader", "intent", "buy", "--size", "2", "--price", "150",
                  "--sl", "147", "--tp", "153", "--manual", "--yes", *sets]
        code, out = await run(manual, killpoint=point)
        assert code == -signal.SIGKILL, out
        with Journal(state) as j:
            [send] = j.open_sends()
            assert send.venue == "velocity" and send.kind == "cancel_and_place" and len(send.refs) == 3
            orders = [j.find_order(client_tag=r) for r in send.refs]
            assert all(o is not None and o.state == "submitting" and o.user_order_id for o in orders)
        assert (len(env.rpc.landed) == 1) == (point == "after_send")
        if expired:
            env.rpc.advance(env.rpc.blockhash_valid_slots + 10)  # every blockhash signed so far is past
        code, out = await run([sys.executable, "-m", "autotrader", "venue", "reconcile", *sets])
        assert code == 0, out
        got = landed(env)
        assert all(n <= 1 for n in got.values()), got
        assert {t.signature for t in env.rpc.sent} <= {send.signature}, "the same bytes, never re-signed"
        with Journal(state) as j:
            assert j.open_sends() == []
            states = {o.state for o in (j.find_order(client_tag=r) for r in send.refs) if o is not None}
        if expired and point == "after_sign":
            assert got == {} and env.sim.open_orders() == []
            assert states == {"failed"} and "did not land" in out
        else:
            assert sorted(got) == [1, 2, 3] and len(env.sim.open_orders()) == 3
            assert states == {"open"} and "on chain, open" in out
        n = len(env.rpc.landed)  # the next manual intent: nothing of the first is sent again
        code, out = await run(manual)
        assert code == 0, out
        assert len(env.rpc.landed) == n + 1 and all(c <= 1 for c in landed(env).values())
    finally:
        await env.close()
