"""Mainnet is recognised by the cluster's genesis hash, not its label: a devnet config pointed at a
mainnet RPC (or the reverse) refuses to start the Drift venue, ``venue status`` and the liq-map
scan, with one line and exit code 2; nothing is read or signed first."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from solders.pubkey import Pubkey

from autotrader.config import validate
from autotrader.trading import TradingStack, VenueUnavailable
from core.bus import Bus
from core.clock import EventClock
from core.cluster import GENESIS_HASHES, ClusterMismatch, check_cluster, cluster_of
from execution.drift.genesis import verify_cluster
from execution.drift.rpc import RpcClient
from execution.signers.keystore import EncryptedFileStore, passphrase_source
from tests.conftest import REPO_ROOT
from tests.drift_harness import T0, DriftEnv, drift_env
from tests.liqmap_sim import Markets, install
from tests.solana_rpc import LocalSolanaRpc
from tests.test_drift_wiring import PASS, _tree
from tests.test_liqmap_scanner import _users

MAINNET, DEVNET, TESTNET = GENESIS_HASHES["mainnet"], GENESIS_HASHES["devnet"], GENESIS_HASHES["testnet"]
LOCAL = "4sGjMW1sUnHzSxGspuhpqLDx6wiyjNtZAMdL4VZHirAn"  # a local validator's own genesis


@pytest.mark.parametrize(
    ("label", "genesis", "ok"),
    [("mainnet", MAINNET, True), ("devnet", DEVNET, True), ("devnet", MAINNET, False),
     ("mainnet", DEVNET, False), ("mainnet", TESTNET, False), ("devnet", TESTNET, False),
     ("devnet", LOCAL, False), ("mainnet", "", False), ("devnet", None, False), ("devnet", 42, False)],
)
def test_label_and_hash_must_agree(label: str, genesis: object, ok: bool) -> None:
    if ok:
        assert check_cluster(label, genesis, "rpc") == label
    else:
        with pytest.raises(ClusterMismatch) as err:
            check_cluster(label, genesis, "the RPC at https://x/?api-key=***")
        assert "\n" not in str(err.value) and label in str(err.value)
    assert cluster_of(MAINNET) == "mainnet" and cluster_of(LOCAL) is None


async def test_verify_cluster_against_the_local_rpc() -> None:
    async with LocalSolanaRpc() as rpc:
        client = RpcClient(rpc.url, timeout_s=5)
        try:
            assert await verify_cluster(client, "devnet") == "devnet"
            with pytest.raises(ClusterMismatch, match="serves devnet"):
                await verify_cluster(client, "mainnet")
            rpc.methods["getGenesisHash"] = lambda p: MAINNET
            with pytest.raises(ClusterMismatch, match=r"'devnet' but .* serves mainnet"):
                await verify_cluster(client, "devnet")
            del rpc.methods["getGenesisHash"]  # an RPC that cannot say is refused too
            with pytest.raises(ClusterMismatch, match="did not answer getGenesisHash"):
                await verify_cluster(client, "devnet")
        finally:
            await client.close()


async def _drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[DriftEnv, dict[str, Any]]:
    """A simulated Drift deployment, its delegate key in a key file, and a config tree for it."""
    env = await drift_env(start=False)
    keyfile = tmp_path / "keys.enc"
    monkeypatch.setenv("AUTOTRADER_PASSPHRASE", PASS)
    EncryptedFileStore(keyfile, passphrase_source(None), scrypt_n=2**12).save("drift-delegate", env.delegate)
    return env, dict(_tree(env.rpc.url, str(env.program_id), str(env.owner.pubkey()), keyfile))


async def test_drift_venue_refuses_a_mainnet_rpc_under_a_devnet_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, tree = await _drift(tmp_path, monkeypatch)
    try:
        cfg = validate(tree)
        assert cfg.venues.drift.cluster == "devnet"
        env.rpc.methods["getGenesisHash"] = lambda p: MAINNET
        stack = TradingStack(cfg, Bus(), EventClock(T0), state_db=None)
        with pytest.raises(VenueUnavailable, match="serves mainnet"):
            await stack.start()
        assert stack.async_venue is not None
        assert stack.async_venue.chain.view.fetched_at == 0.0  # nothing was read
        assert env.rpc.sent == []
        await stack.aclose()
        stack.close()
    finally:
        await env.close()


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "autotrader", *args, cwd=REPO_ROOT,
                                                env=dict(os.environ), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_venue_status_and_liqmap_scan_refuse_with_exit_2(tmp_path: Path) -> None:
    env = await drift_env(start=False)
    try:
        env.rpc.methods["getGenesisHash"] = lambda p: MAINNET
        code, out, err = await _cli("venue", "status", "--set", f'venues.drift.rpc_url="{env.rpc.url}"',
                                    "--set", f'venues.drift.program_id="{env.program_id}"',
                                    "--set", f'venues.drift.authority="{env.owner.pubkey()}"')
        assert code == 2 and out == "", err
        assert err.count("\n") == 1 and "serves mainnet" in err and "Traceback" not in err
    finally:
        await env.close()
    mk, pid = Markets(), Pubkey.new_unique()
    async with LocalSolanaRpc() as rpc:
        install(rpc, mk, pid, _users(mk, 5, seed=3))
        rpc.methods["getGenesisHash"] = lambda p: MAINNET
        code, out, err = await _cli("liqmap", "--scan", "--set", f'venues.drift.rpc_url="{rpc.url}"',
                                    "--set", f'venues.drift.program_id="{pid}"',
                                    "--set", f'liqmap.output_dir="{tmp_path / "liq"}"',
                                    "--set", 'liqmap.source="drift"')  # the engine is paper: ask for Drift
    assert code == 2 and "liqmap scan refused" in err and "serves mainnet" in err, err
    assert not (tmp_path / "liq").exists() or not any((tmp_path / "liq").iterdir())


async def test_drift_venue_refuses_a_max_leverage_above_the_market_maximum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, tree = await _drift(tmp_path, monkeypatch)
    try:
        env.sim.margin_ratio_initial = 2500  # 25 % initial margin: at most 4x
        env.sim.write_all()
        stack = TradingStack(validate(tree), Bus(), EventClock(T0), state_db=None)  # max_leverage 5
        with pytest.raises(VenueUnavailable, match=r"guards.max_leverage 5 is above the market's maximum 4x"):
            await stack.start()
        await stack.aclose()
        stack.close()
        tree["guards"] = {"max_leverage": 4.0}
        tree["risk"] = {"leverage": 3.0}
        stack = TradingStack(validate(tree), Bus(), EventClock(T0), state_db=None)
        await stack.start()  # within the market's maximum
        await stack.aclose()
        stack.close()
    finally:
        await env.close()
