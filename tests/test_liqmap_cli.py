"""``autotrader liqmap`` as a user runs it: a subprocess against the local JSON-RPC server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from solders.pubkey import Pubkey

from core.liqmap import scan
from tests.conftest import REPO_ROOT
from tests.liqmap_sim import Markets, install
from tests.solana_rpc import LocalSolanaRpc
from tests.test_liqmap_scanner import _users

KEYS = [
    "account",
    "market_index",
    "position_size",
    "avg_entry_price",
    "est_liq_px",
    "collateral_usd",
    "leverage",
    "health",
    "distance_bps",
    "approximate",
    "updated_at",
]


async def _cli(
    tmp: Path, *args: str, rpc_url: str = "http://127.0.0.1:9", pid: str = ""
) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "AUTOTRADER__LIQMAP__OUTPUT_DIR": f'"{tmp / "liq"}"',
        "AUTOTRADER__VENUES__DRIFT__RPC_URL": f'"{rpc_url}"',
        "AUTOTRADER__LIQMAP__SOURCE": '"drift"',  # the paper engine trades no chain
        "AUTOTRADER__LIQMAP__TIMEOUT_S": "10",
    }
    if pid:
        env["AUTOTRADER__VENUES__DRIFT__PROGRAM_ID"] = f'"{pid}"'
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "autotrader",
        "liqmap",
        *args,
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_liqmap_without_a_stored_map_says_so(tmp_path: Path) -> None:
    code, out, err = await _cli(tmp_path, "--json")
    assert code != 0 and out == ""
    assert "no liquidation map stored yet" in err and "--scan" in err


async def test_liqmap_scan_then_read_back(tmp_path: Path) -> None:
    mk, pid = Markets(), Pubkey.new_unique()
    users = _users(mk, 25, seed=11)
    async with LocalSolanaRpc() as rpc:
        install(rpc, mk, pid, users)
        code, out, err = await _cli(tmp_path, "--scan", "--json", rpc_url=rpc.url, pid=str(pid))
    assert code == 0, err
    rows = json.loads(out)
    want, _ = scan(users, mk.params(), 0)
    assert [r["account"] for r in rows] == [e.account for e in want]
    assert all(list(r) == KEYS for r in rows)
    assert [r["est_liq_px"] for r in rows] == pytest.approx([e.est_liq_px for e in want], rel=1e-9)
    dist = [abs(r["distance_bps"]) if r["distance_bps"] is not None else float("inf") for r in rows]
    assert dist == sorted(dist)
    assert "decoded 26/26 accounts" not in err and "decoded 25/25 accounts" in err  # progress on stderr
    # the stored map, no RPC (the server is gone)
    code, out2, err2 = await _cli(tmp_path, "--json", "--limit", "5")
    assert code == 0, err2
    assert json.loads(out2) == rows[:5]
    code, table, _ = await _cli(tmp_path, "--limit", "3")
    assert code == 0
    lines = table.splitlines()
    assert lines[0].startswith("liq map: 25 positions") and "dist bps" in lines[1]
    assert [ln.split()[0] for ln in lines[2:5]] == [r["account"] for r in rows[:3]]


async def test_liqmap_scan_against_a_dead_rpc_fails_cleanly(tmp_path: Path) -> None:
    code, _out, err = await _cli(tmp_path, "--scan", "--set", "liqmap.retries=0")
    assert code != 0 and "liqmap scan failed" in err
