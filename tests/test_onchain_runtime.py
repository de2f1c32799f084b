"""``autotrader run`` with the on-chain services: the liq-map scanner against the local RPC feeds
the liq_gap guard, the Helius receiver answers and its transactions land in Parquet."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from solders.pubkey import Pubkey

from autotrader.control import ControlError, request_sync
from storage import liqmap_store
from storage.helius_store import read_all
from tests.conftest import REPO_ROOT
from tests.liqmap_sim import Markets, install
from tests.solana_rpc import LocalSolanaRpc
from tests.test_helius import AUTH, enhanced
from tests.test_liqmap_scanner import _users


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_scans_feeds_liq_gap_and_receives_helius(btc_file: Path) -> None:
    mk, pid = Markets(), Pubkey.new_unique()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="at-") as d:
        tmp = Path(d)
        async with LocalSolanaRpc() as rpc:
            install(rpc, mk, pid, _users(mk, 20, seed=4))
            sets = {
                "liqmap.scan": '"always"',
                "liqmap.output_dir": f'"{tmp / "liq"}"',
                "venues.drift.rpc_url": f'"{rpc.url}"',
                "liqmap.source": '"drift"',  # the paper engine trades no chain
                "venues.drift.program_id": f'"{pid}"',
                "venues.helius.listen": f'"127.0.0.1:{port}"',
                "venues.helius.auth_header": f'"{AUTH}"',
                "venues.helius.output_dir": f'"{tmp / "helius"}"',
                "venues.helius.max_body_bytes": "4096",
            }
            args = [
                sys.executable,
                "-m",
                "autotrader",
                "run",
                "--no-ui",
                "--replay",
                str(btc_file),
                "--speed",
                "max",
            ]
            for k, v in sets.items():
                args += ["--set", f"{k}={v}"]
            env = {
                **os.environ,
                "AUTOTRADER__CONTROL__SOCKET_PATH": str(tmp / "c.sock"),
                "AUTOTRADER__STORAGE__STATE_DB": str(tmp / "s.sqlite3"),
                "AUTOTRADER__GUARDS__ATR_PERIOD": "2",
                "AUTOTRADER__GUARDS__ATR_BAR_MINUTES": "1",
            }
            log = (tmp / "log").open("w")
            proc = await asyncio.create_subprocess_exec(*args, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
            try:
                deadline = time.monotonic() + 60
                level = "skipped"
                while time.monotonic() < deadline and proc.returncode is None:
                    await asyncio.sleep(0.3)
                    try:
                        rep = await asyncio.to_thread(
                            request_sync, tmp / "c.sock", "guards", {"detailed": True}, 3.0
                        )
                    except ControlError:
                        continue
                    (chk,) = [c for c in rep["checks"] if c["name"] == "liq_gap"]
                    level = chk["level"]
                    if level != "skipped":
                        break
                assert level in ("passing", "warning"), (tmp / "log").read_text()[-3000:]
                stored = liqmap_store.load(tmp / "liq")
                assert stored is not None and len(stored.entries) == 20
                body = json.dumps([enhanced("sigX", str(pid)), enhanced("sigX", str(pid))]).encode()
                async with aiohttp.ClientSession() as s:
                    url = f"http://127.0.0.1:{port}/webhooks/helius"
                    async with s.post(url, data=body, headers={"Authorization": AUTH}) as r:
                        assert r.status == 200 and (await r.json())["kept"] == 1
                    async with s.post(url, data=body, headers={"Authorization": "no"}) as r:
                        assert r.status == 401
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(proc.wait(), 30)
                log.close()
            assert code == 0, (tmp / "log").read_text()[-3000:]
            assert read_all(tmp / "helius").column("signature").to_pylist() == ["sigX"]
