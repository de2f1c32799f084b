"""``autotrader kill`` with no running instance, against the local RPC: the app's key cancels on
chain the entries and take-profits of the app's market, keeps the stop on the open position, prints
each cancellation's signature and what stays, records the kill and the HALTED state; exit 0 only
once the chain confirms."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

import pytest

from core.venue import OrderRequest, OrderType, PostOnly, TriggerCondition
from execution.signers.keystore import EncryptedFileStore, passphrase_source
from storage.activity_log import ActivityLog
from storage.journal import Journal
from storage.state_store import StateStore
from tests.conftest import REPO_ROOT
from tests.drift_harness import DriftEnv, communicate, drift_env

PASS = "correct horse battery staple"


def sets(env: DriftEnv, tmp: Path, keyfile: Path) -> list[str]:
    out: list[str] = []
    for k, v in {
        "engine.venue": '"drift"',
        "engine.kill_backoff_s": "0.05",
        "engine.kill_backoff_max_s": "0.2",
        "venues.drift.rpc_url": f'"{env.rpc.url}"',
        "venues.drift.program_id": f'"{env.program_id}"',
        "venues.drift.authority": f'"{env.owner.pubkey()}"',
        "venues.drift.confirm_poll_s": "0.02",
        "venues.drift.rebroadcast_s": "0.1",
        "venues.drift.account_poll_s": "0.05",
        "keys.backend": '"file"',
        "keys.encrypted_file": f'"{keyfile}"',
        "storage.state_db": f'"{tmp / "state.sqlite3"}"',
        "control.socket_path": f'"{tmp / "none.sock"}"',
    }.items():
        out += ["--set", f"{k}={v}"]
    return out


async def cli(args: list[str]) -> tuple[int, str, str]:
    env = {**os.environ, "AUTOTRADER_PASSPHRASE": PASS}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "autotrader",
        *args,
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await communicate(proc, 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def setup(tmp_path: Path) -> tuple[DriftEnv, list[str]]:
    env = await drift_env()
    keyfile = tmp_path / "keys.enc"
    EncryptedFileStore(
        keyfile, passphrase_source(environ={"AUTOTRADER_PASSPHRASE": PASS}), scrypt_n=2**12
    ).save("drift-delegate", env.delegate)
    env.sim.set_position(0, 3.0, 148.0)  # a position the stop protects
    v = env.venue
    await v.place(
        OrderRequest(
            market="SOL-PERP",
            side="sell",
            type=OrderType.TRIGGER_MARKET,
            size=3.0,
            trigger_price=140.0,
            trigger_condition=TriggerCondition.BELOW,
            reduce_only=True,
            client_tag="i1:sl1",
        )
    )
    await v.place(
        OrderRequest(
            market="SOL-PERP",
            side="sell",
            type=OrderType.LIMIT,
            size=3.0,
            price=160.0,
            reduce_only=True,
            client_tag="i1:tp1",
        )
    )
    await v.place(
        OrderRequest(
            market="SOL-PERP",
            side="buy",
            type=OrderType.LIMIT,
            size=1.0,
            price=145.0,
            post_only=PostOnly.MUST,
            client_tag="i2:e1",
        )
    )
    await v.wait_idle()
    assert len(env.sim.open_orders()) == 3
    with Journal(tmp_path / "state.sqlite3") as j:  # what the instance that placed them journaled
        for b in env.bindings:
            iid = b.client_tag.split(":")[0]
            j.begin_intent(iid, {"id": iid})
            j.record_order(
                iid,
                b.client_tag.split(":")[1].rstrip("0123456789"),
                b.client_tag,
                b.order_id,
                "open",
                user_order_id=b.user_order_id,
            )
    return env, sets(env, tmp_path, keyfile)


async def test_kill_without_a_daemon_cancels_on_chain_and_keeps_the_stop(tmp_path: Path) -> None:
    env, args = await setup(tmp_path)
    try:
        code, out, err = await cli(["kill", *args])
        assert code == 0, out + err
        assert "no running instance" in err
        left = env.sim.open_orders()
        assert [o.user_order_id for o in left] == [1], "only the stop stays"
        assert "HALTED: manual" in out and "2 order(s) cancelled, confirmed" in out
        cancels = [t.signature for t in env.rpc.sent if env.sim.parse(t.raw)[1][0][0] == "cancel_order"]
        assert len(set(cancels)) == 2
        for sig in set(cancels):
            assert sig in out and sig in env.rpc.landed, "each cancellation's signature, as the chain has it"
        assert "stays on the venue: i1:sl1" in out and "+3 position" in out
        db = tmp_path / "state.sqlite3"
        rows = [r for r in ActivityLog(db).query() if r.kind == "kill_switch"]
        assert [r.data.get("stage") for r in reversed(rows)] == ["engaged", "confirmed"]  # newest first
        control = StateStore(db).get_json("engine.control")
        assert (
            isinstance(control, dict)
            and control["trading_state"] == "halted"
            and not control["automation_on"]
        )
        # again: already halted, nothing to cancel this time
        code, out, err = await cli(["kill", "--json", *args])
        d = json.loads(out)
        assert code == 0 and d["already"] is True and d["cancelled"] == 0 and d["confirmed"] is True
        assert [o["tag"] for o in d["kept"]] == ["i1:sl1"]
        code, out, _ = await cli(["kill", "--reason", "remove the stop too", "--cancel-all", *args])
        assert code == 0 and "already HALTED" in out and "WITHOUT a stop" in out, out
        assert env.sim.open_orders() == []
    finally:
        await env.close()


async def test_kill_without_a_daemon_fails_clearly_when_the_chain_cannot_be_read(tmp_path: Path) -> None:
    env, args = await setup(tmp_path)
    try:
        await env.rpc.close()  # the RPC is gone
        code, _out, err = await cli(["kill", *args])
        assert code == 1 and "Traceback" not in err and "Drift venue" in err and "127.0.0.1" in err, err
    finally:
        await env.close()


@pytest.mark.parametrize("flag", ["--flatten"])
async def test_paper_flatten_without_a_daemon_is_refused_clearly(tmp_path: Path, flag: str) -> None:
    code, _out, err = await cli(
        [
            "kill",
            flag,
            "--set",
            f'storage.state_db="{tmp_path / "s.db"}"',
            "--set",
            f'control.socket_path="{tmp_path / "none.sock"}"',
        ]
    )
    assert code == 1 and "no market data" in err and "Traceback" not in err


async def test_kill_flatten_without_a_daemon_closes_the_position_on_chain(tmp_path: Path) -> None:
    """``--flatten``: a reduce-only market close as well; once flat the stop goes too (nothing left
    to protect) and the exit is 0 only once the chain shows the position flat."""
    env, args = await setup(tmp_path)

    async def taker() -> None:  # the market: fills a reduce-only market order once it is on chain
        while True:
            for o in env.sim.open_orders():
                if type(o.order_type).__name__ == "Market" and o.reduce_only:
                    env.sim.fill(o.user_order_id, price=147_000_000)
            await asyncio.sleep(0.02)

    market = asyncio.ensure_future(taker())
    try:
        code, out, err = await cli(["kill", "--flatten", "--json", *args])
        d = json.loads(out)
        assert code == 0 and d["confirmed"] and d["flattened"] and d["position"] == 0.0, out + err
        assert env.sim.open_orders() == [], "flat: the entry, the TP and the stop are gone"
        closes = {
            t.signature: ixs[0][1].params
            for t in env.rpc.sent
            if (ixs := env.sim.parse(t.raw)[1])
            and ixs[0][0] == "place_perp_order"
            and type(ixs[0][1].params.order_type).__name__ == "Market"
        }
        assert len(closes) == 1, "one close, never a second while the first is on its way"
        [close] = closes.values()
        assert close.reduce_only and type(close.order_type).__name__ == "Market"
        assert type(close.direction).__name__ == "Short" and close.base_asset_amount == 3_000_000_000
        pos = [p for p in env.sim.user.perp_positions if p.market_index == 0]
        assert sum(p.base_asset_amount for p in pos) == 0
    finally:
        market.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await market
        await env.close()
