"""The minute signals feed: one row per closed minute on ``signals:minute`` with every venue's
funding and OI, liquidations, guard status and regime; stored as Parquet and JSON lines by a
daemon; ``autotrader signals`` prints it (table, ``--json``, ``--follow``)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from core.bus import Bus, Topics
from core.clock import EventClock
from core.guard_config import GuardsConfig, RiskConfig, SignalConfig
from core.guard_monitor import GuardMonitor, SignalRunner
from core.minute_signals import SIGNALS_MINUTE, MinuteSignal, MinuteSignals
from core.models import Bar, Basis, BookTop, FeedStatus, Funding, Liquidation, OpenInterest
from storage.signals_jsonl import SignalsJsonl
from tests.conftest import REPO_ROOT
from tests.test_restart_history import StoreDaemon

T = 1_741_566_000_000  # a minute boundary
CLI = [sys.executable, "-m", "autotrader"]


def bar(minute: int) -> Bar:
    return Bar("SOLUSDT", T + minute * 60_000, 150, 151, 149, 150.5, 3.0, 1.0, 2.0, 150.2, 9, True)


def test_a_row_per_closed_minute_with_every_venue() -> None:
    bus, clock = Bus(), EventClock()
    mon = GuardMonitor(bus, GuardsConfig(), clock, "replay")
    sig = SignalRunner(bus, mon, SignalConfig(), RiskConfig(), lambda: 10_000.0)
    feed = MinuteSignals(bus, mon, sig)
    rows: list[MinuteSignal] = []
    bus.on(SIGNALS_MINUTE, rows.append)
    clock.advance(T + 60_500)
    bus.publish(Topics.FUNDING, Funding("bybit", "SOLUSDT", T + 30_000, 0.0001, 8, 10.95))
    bus.publish(Topics.FUNDING, Funding("okx", "SOL-USDT-SWAP", T + 40_000, 0.0002, 4, 43.8))
    bus.publish(Topics.OPEN_INTEREST, OpenInterest("okx", "SOL-USDT-SWAP", T + 40_000, 2, 1, 3e8))
    bus.publish(Topics.OPEN_INTEREST, OpenInterest("bybit", "SOLUSDT", T - 400_000, 2, 1, 5e8))  # too old
    bus.publish(Topics.BASIS, Basis(T + 50_000, 150.0, 150.03, 2.0))
    for ts, venue in ((T - 5_000, "binance"), (T + 10_000, "okx"), (T + 59_999, "bybit")):
        bus.publish(Topics.LIQUIDATIONS, Liquidation(venue, "S", ts, "long", 150.0, 2.0, 300.0))
    bus.publish(Topics.BARS, Bar("SOLUSDT", T, 1, 1, 1, 1, 0, 0, 0, 1, 1, False))  # partial: no row
    bus.publish(Topics.BARS, bar(0))
    [row] = rows
    assert (row.ts, row.price, row.cvd, row.vwap, row.volume) == (T, 150.5, 2.0, 150.2, 4.0)
    assert (row.funding_apr_bybit, row.funding_apr_okx, row.funding_apr_binance) == (10.95, 43.8, None)
    assert row.funding_apr == pytest.approx((10.95 + 43.8) / 2)  # bybit's OI is stale: plain mean
    assert (row.oi_usd, row.oi_usd_okx, row.oi_usd_bybit, row.oi_usd_binance) == (3e8, 3e8, None, None)
    assert row.basis_bps == 2.0
    assert (row.liq_count, row.liq_notional, row.liq_count_window) == (2, 600.0, 3)
    assert row.guard_status == "stale" and "input.book" in row.failing_guards and row.guard_reason
    assert row.regime_on is False and row.regime_reason.startswith("guards stale")
    # the guards' view of that bar: with every input fresh the row says passing
    clock.advance(T + 120_300)
    bus.publish(Topics.BOOK, BookTop("binance", "SOLUSDT", T + 120_200, 1, 150, 5, 150.01, 5, 0.7, 1e6, 1e6))
    for venue in ("binance", "bybit", "okx"):
        bus.publish(Topics.FEED_STATUS, FeedStatus(venue, "live", T + 120_300, 0.1))
    bus.publish(Topics.OPEN_INTEREST, OpenInterest("bybit", "SOLUSDT", T + 120_000, 2, 1, 5e8))
    bus.publish(Topics.BARS, bar(1))
    assert rows[-1].guard_status == "passing" and rows[-1].failing_guards == []
    assert rows[-1].oi_usd == 8e8 and feed.rows == 2


def test_daemon_stores_the_feed_and_the_cli_prints_it(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from feeds.demo import generate_demo

    rec = generate_demo(tmp_path / "demo.jsonl.zst", minutes=8).path
    d = StoreDaemon(tmp_path / "run", rec)
    try:
        d.wait_for("the end of the replay", lambda s: s["replay_done"] is True, timeout=180)
    finally:
        assert d.stop() == 0, d.tail()
    kind_dir = tmp_path / "run" / "store" / "all" / "SOLUSDT" / "signals"
    parquet = pq.read_table(sorted(kind_dir.glob("*.parquet"))).to_pylist()
    env = {**os.environ, "AUTOTRADER__STORAGE__ROOT": str(tmp_path / "run" / "store")}
    out = subprocess.run([*CLI, "signals", "--json", "--limit", "1000"], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(rows) == len(parquet) == 7  # 8 minutes: the last bar is never closed
    assert [r["ts"] for r in rows] == [r["ts"] for r in parquet]
    assert rows[-1]["price"] == parquet[-1]["price"]
    assert rows[-1]["failing_guards"] == parquet[-1]["failing_guards"]
    assert all(r["funding_apr_binance"] is not None and r["oi_usd_okx"] is not None for r in rows[2:])
    table = subprocess.run([*CLI, "signals", "--limit", "3"], capture_output=True, text=True, cwd=REPO_ROOT,
                           env=env, timeout=60)
    assert table.returncode == 0 and len(table.stdout.splitlines()) == 4
    assert table.stdout.startswith("time (UTC)")
    none = subprocess.run([*CLI, "signals", "--symbol", "BTCUSDT"], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env, timeout=60)
    assert none.returncode == 1 and "stored symbols: SOLUSDT" in none.stderr


def _row(minute: int) -> MinuteSignal:
    return MinuteSignal(
        ts=T + minute * 60_000, symbol="SOLUSDT", price=150.0 + minute, cvd=1.0, vwap=150.0, volume=2.0,
        funding_apr=None, funding_apr_binance=None, funding_apr_bybit=None, funding_apr_okx=None,
        basis_bps=None,
        oi_usd=None, oi_usd_binance=None, oi_usd_bybit=None, oi_usd_okx=None, liq_count=0, liq_notional=0.0,
        liq_count_window=0, liq_notional_window=0.0, guard_status="stale", failing_guards=["input.book"],
        guard_reason="book missing", regime_on=False, regime_reason="no guard report")


def test_follow_prints_new_rows_then_exits_on_sigterm(tmp_path: Path) -> None:
    writer = SignalsJsonl(tmp_path)
    writer.write(_row(0))
    env = {**os.environ, "AUTOTRADER__STORAGE__ROOT": str(tmp_path)}
    proc = subprocess.Popen([*CLI, "signals", "--follow", "--json", "--limit", "1", "--poll", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    out = proc.stdout
    threading.Thread(target=lambda: [lines.put(x) for x in out], daemon=True).start()

    def row() -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(lines.get(timeout=60))  # never hangs the suite
        return parsed

    try:
        assert row()["ts"] == T
        for m in (1, 2, 24 * 60):  # the last one opens the next day's file
            writer.write(_row(m))
        got = [row()["ts"] for _ in range(3)]
        assert got == [T + 60_000, T + 120_000, T + 24 * 60 * 60_000]
    finally:
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_signals_is_a_light_command(tmp_path: Path) -> None:
    from tests.test_cli_imports import probe

    SignalsJsonl(tmp_path / "store").write(_row(0))
    env = {**os.environ, "AUTOTRADER__STORAGE__ROOT": str(tmp_path / "store")}
    proc, heavy = probe(tmp_path, "signals", "--json", env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["ts"] == T, proc.stderr
    assert not heavy, heavy


def test_a_torn_last_line_never_swallows_the_next_row(tmp_path: Path) -> None:
    """A crash mid-line leaves a torn tail: the next row starts on its own line, and the CLI prints
    every good row (the torn one skipped)."""
    SignalsJsonl(tmp_path).write(_row(0))
    [path] = list(tmp_path.rglob("*.jsonl"))
    with path.open("ab") as fh:
        fh.write(b'{"ts": 17415660')  # the crash
    writer = SignalsJsonl(tmp_path)  # the next process
    writer.write(_row(1))
    writer.write(_row(2))
    lines = path.read_bytes().split(b"\n")
    assert [json.loads(x)["ts"] for x in lines if x.startswith(b"{") and x.endswith(b"}")] == [
        T, T + 60_000, T + 120_000]
    env = {**os.environ, "AUTOTRADER__STORAGE__ROOT": str(tmp_path)}
    out = subprocess.run([*CLI, "signals", "--json"], capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert [json.loads(x)["ts"] for x in out.stdout.splitlines()] == [T, T + 60_000, T + 120_000]
