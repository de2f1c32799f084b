"""The liq-map follows the engine's venue and cluster; without one the guard report says
"liq-map unavailable" and why, and ``guards.liq_gap.when_unavailable`` decides whether it blocks."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from autotrader.config import load_config
from autotrader.guards_cmd import render_json_text
from autotrader.liqmap_cmd import scan_target
from core.bus import Bus
from core.clock import EventClock
from core.guard_config import GuardsConfig, LiqGapConfig
from core.guard_monitor import GuardMonitor
from core.guards import GuardReport, to_json
from tests.conftest import REPO_ROOT


def test_the_scanner_follows_the_engine() -> None:
    paper = load_config(None, environ={})
    target, why = scan_target(paper)
    assert target is None and "paper venue trades on no chain" in why and 'liqmap.source = "drift"' in why
    drift = load_config(None, environ={}, overrides={
        "engine.venue": "drift", "venues.drift.rpc_url": "http://127.0.0.1:8899"})
    target, why = scan_target(drift)
    assert target is not None and target.rpc_url == "http://127.0.0.1:8899" and why == ""
    explicit = load_config(None, environ={}, overrides={"liqmap.source": "drift",
                                                        "liqmap.rpc_url": "http://127.0.0.1:9000"})
    target, _ = scan_target(explicit)
    assert target is not None and target.rpc_url == "http://127.0.0.1:9000"


def _liq_gap(r: GuardReport) -> tuple[str, str, bool]:
    (c,) = [c for c in r.checks if c.name == "liq_gap"]
    return c.level, c.reason, c.blocking


def test_unavailable_is_said_and_blocks_only_when_configured() -> None:
    clock = EventClock()
    clock.advance(1_700_000_000_000)
    skip = GuardMonitor(Bus(), GuardsConfig(), clock, "live")
    skip.set_liq_map_status("the paper venue trades on no chain")
    r = skip.check()
    level, reason, blocking = _liq_gap(r)
    assert (level, blocking) == ("skipped", False)
    assert reason == "liq_gap: liq-map unavailable (the paper venue trades on no chain)"
    assert r.notes == [reason] and reason not in r.blocks
    assert "not checked:" in render_json_text(to_json(r)) and reason in render_json_text(to_json(r))
    block = GuardMonitor(Bus(), GuardsConfig(liq_gap=LiqGapConfig(when_unavailable="block")), clock, "live")
    block.set_liq_map_status("last scan failed: timeout")
    r = block.check()
    assert _liq_gap(r) == ("stale", "liq_gap: liq-map unavailable (last scan failed: timeout)", True)
    assert r.status == "stale" and "liq_gap: liq-map unavailable (last scan failed: timeout)" in r.blocks


def test_liqmap_scan_with_nothing_to_scan_says_why() -> None:
    out = subprocess.run([sys.executable, "-m", "autotrader", "liqmap", "--scan"], capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 2 and "nothing to scan: the paper venue trades on no chain" in out.stderr


async def test_the_scan_status_never_shows_the_rpc_key(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime's scanner says what it scans and why a scan failed in the guard report (status,
    screen, logs): an API key in the RPC URL (query or path) is masked there."""
    import asyncio
    import dataclasses
    import logging

    import autotrader.liqmap_cmd
    from autotrader.liqmap_cmd import periodic_scans

    scan_config = autotrader.liqmap_cmd.scan_config
    monkeypatch.setattr(autotrader.liqmap_cmd, "scan_config",  # fail at once: no retries
                        lambda c: dataclasses.replace(scan_config(c), retries=0))

    key, token = "k3yQueryS3cret0000", "abcdEFGH1234ijklMNOP5678"
    cfg = load_config(None, environ={}, overrides={
        "liqmap.source": "drift", "liqmap.output_dir": str(tmp_path / "liq"),
        "liqmap.rpc_url": f"http://127.0.0.1:1/v2/{token}?api-key={key}"})
    said: list[str] = []
    failed = asyncio.Event()

    def status(why: str) -> None:
        said.append(why)
        if why.startswith("last scan failed"):
            failed.set()

    task = asyncio.create_task(periodic_scans(cfg, Bus(), logging.getLogger("test.liqmap"), status))
    try:
        await asyncio.wait_for(failed.wait(), 30)  # nothing listens on port 1: refused at once
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert said[0].startswith("scanning devnet (http://127.0.0.1:1/v2/***")
    assert not [s for s in said if key in s or token in s], said
