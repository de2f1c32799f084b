"""``autotrader run --no-ui`` on live feeds (a fake exchange on 127.0.0.1 serving real frames):
structured status lines, feeds go live, Parquet storage written, SIGTERM → flush, close, exit 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from feeds.transport.fakes import FakeExchange
from tests.conftest import DATA_DIR, REPO_ROOT


def _env_for(tree: dict[str, Any], prefix: str = "AUTOTRADER") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}__{key.upper()}"
        if isinstance(value, dict):
            out.update(_env_for(value, name))
        else:
            out[name] = f'"{value}"' if isinstance(value, str) else str(value)
    return out


async def test_run_no_ui_live_then_sigterm(tmp_path: Path) -> None:
    fake = FakeExchange(DATA_DIR, rate=500.0)
    await fake.start()
    env = {
        **os.environ,
        **_env_for(fake.config_tree()),
        "AUTOTRADER__STORAGE__ROOT": str(tmp_path / "store"),
        "AUTOTRADER__STORAGE__FLUSH_INTERVAL_S": "1",
        "AUTOTRADER__LOGGING__STATUS_INTERVAL_S": "0.5",
        "AUTOTRADER__FEEDS__BINANCE_MAX_AGE_S": "5",
        "AUTOTRADER__LIQMAP__SCAN": '"off"',  # no Drift RPC here (the liq-map scanner is tested apart)
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "autotrader",
        "run",
        "--no-ui",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[dict[str, Any]] = []
    try:
        assert proc.stderr is not None

        async def wait_live() -> dict[str, Any]:
            while True:
                raw = await proc.stderr.readline()  # type: ignore[union-attr]
                assert raw, f"process ended early: {lines[-5:]}"
                rec = json.loads(raw)
                lines.append(rec)
                feeds = rec.get("feeds") if rec.get("msg") == "status" else None
                states = [f["state"] for f in feeds.values()] if feeds else []
                all_live = len(states) >= 4 and all(st == "live" for st in states)
                if all_live and rec["market"]["book"] is not None and rec["market"]["oi_notional"]:
                    return rec

        status = await asyncio.wait_for(wait_live(), timeout=60)
        assert status["data_source"] == "live"
        await asyncio.sleep(2.5)  # past one storage flush window
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), timeout=30)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        tail = [json.loads(x) for x in rest.splitlines() if x.strip()]
        assert any(r.get("msg") == "stopped" and r.get("exit_code") == 0 for r in tail)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await fake.stop()
    files = sorted((tmp_path / "store").rglob("*.parquet"))
    kinds = {f.parent.name for f in files}
    assert {"open_interest", "funding"} <= kinds, files
    for f in files:
        assert pq.read_table(f).num_rows > 0
