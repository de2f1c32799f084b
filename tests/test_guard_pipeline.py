"""Guards and the signal wired to the bus, on real recordings and on the demo session."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from autotrader.config import load_config
from autotrader.emit import book_json
from core.bus import Bus, Topics
from core.clock import EventClock
from core.guard_monitor import GuardMonitor, SignalRunner
from core.guards import GUARDS, GuardReport
from core.intents import INTENTS, Intent
from core.models import BookTop
from feeds.demo import generate_demo
from feeds.pipeline import MarketPipeline, drive
from feeds.replay import open_recording
from feeds.replay_health import ReplayHealth
from tests.conftest import REPO_ROOT


def _replay_with_guards(
    path: Path, **overrides: Any
) -> tuple[list[tuple[GuardReport, BookTop | None]], list[tuple[Intent, GuardReport]], int]:
    cfg = load_config(None, environ={}, overrides=overrides)
    bus = Bus()
    clock = EventClock()
    pipeline = MarketPipeline(
        bus,
        binance_symbol=None,
        bybit_symbol=cfg.market.bybit_symbol,
        okx_usdc_inst=cfg.market.okx_usdc_inst,
        clock=clock,
    )
    last_book: list[BookTop] = []
    bus.on(Topics.BOOK, last_book.append)  # registered first: runs before the monitor
    monitor = GuardMonitor(bus, cfg.guards, clock, "replay")
    SignalRunner(bus, monitor, cfg.signal, cfg.risk, lambda: cfg.paper.equity_usd)
    reports: list[tuple[GuardReport, BookTop | None]] = []
    intents: list[tuple[Intent, GuardReport]] = []
    bus.on(GUARDS, lambda r: reports.append((r, last_book[-1] if last_book else None)))
    bus.on(INTENTS, lambda i: intents.append((i, monitor.latest)))  # type: ignore[arg-type]
    health = ReplayHealth(pipeline, {"binance": 5.0, "bybit": 30.0, "okx": 60.0})
    for frame in open_recording(path).frames():
        drive(pipeline, (frame,))
        health.maybe_publish(bus, clock.now_ms())
    return reports, intents, monitor.evaluations


def _assert_book_equal(reports: list[tuple[GuardReport, BookTop | None]]) -> int:
    checked = 0
    for report, book in reports:
        if book is None:
            assert report.spread_bps is None
            continue
        b = book_json(book)
        assert report.spread_bps == b["spread_bps"]
        assert report.depth_10bps.bid_usd == b["depth_10bps"]["bid_usd"]
        assert report.depth_10bps.ask_usd == b["depth_10bps"]["ask_usd"]
        checked += 1
    return checked


def test_guard_reports_carry_the_books_numbers_on_the_real_recording(btc_file: Path) -> None:
    reports, intents, evaluations = _replay_with_guards(btc_file)
    assert _assert_book_equal(reports) >= 5  # one per minute of event time at least
    assert evaluations > 6000  # evaluated after every input, published on change / each minute
    # no funding, OI, basis or Bybit liquidations in a Binance-only file: stale, never passing
    assert {r.status for r, _ in reports} == {"stale"}
    assert any("funding" in b for b in reports[-1][0].blocks)
    assert intents == []
    ts = [r.ts for r, _ in reports]
    # at least once per minute of event time: the first evaluation at or past 60 s publishes
    assert all(b - a <= 61_000 for a, b in itertools.pairwise(ts))


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.jsonl.zst"
    generate_demo(path)
    return path


def test_demo_signal_fires_only_on_passing_reports_with_exact_ladder(demo_file: Path) -> None:
    reports, intents, _ = _replay_with_guards(demo_file, **{"guards.atr_period": 3})
    _assert_book_equal(reports)
    statuses = {r.status for r, _ in reports}
    assert {"passing", "breach"} <= statuses  # calm phases pass, the cascade breaches
    assert intents, "the demo's reclaims fire the signal"
    for intent, report in intents:
        assert report.status == "passing" and not report.blocks
        atr = intent.atr
        sign = 1 if intent.side == "buy" else -1
        assert intent.sl == pytest.approx(intent.price - sign * 1.5 * atr)
        assert [p for p, _ in intent.tps] == pytest.approx([intent.price + sign * k * atr for k in (2, 3, 4)])
        assert [f for _, f in intent.tps] == pytest.approx([0.5, 0.3, 0.2])
        risk_usd = 10_000 * 0.5 / 100
        assert intent.risk_usd == pytest.approx(risk_usd)
        # size from risk and stop distance, unless capped by leverage
        assert (
            intent.size == pytest.approx(risk_usd / (1.5 * atr))
            or intent.size * intent.price <= 3 * 10_000 + 1e-6
        )


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("risk.tp_split=[50,30,30]", "risk.tp_split"),
        ("guards.spread_bps_max=-1", "guards.spread_bps_max"),
        ('guards.blocking=["spread","vibes"]', "guards.blocking[1]"),
        ("guards.max_age.book_s=0", "guards.max_age.book_s"),
    ],
)
def test_bad_guard_config_refused_at_start_naming_the_key(setting: str, key: str, btc_file: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "autotrader", "replay", str(btc_file), "--emit", "guards", "--set", setting],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert out.returncode == 2
    assert f"'{key}'" in out.stderr
    assert out.stdout == ""


def test_replay_emit_guards_and_intents_cli(demo_file: Path) -> None:
    base = [sys.executable, "-m", "autotrader", "replay", str(demo_file), "--set", "guards.atr_period=3"]
    out = subprocess.run(
        [*base, "--emit", "guards"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout.splitlines()[0])
    assert set(first) == {
        "ts",
        "spread_bps",
        "depth_10bps",
        "funding_apr",
        "basis_bps",
        "oi_notional",
        "liq_events_5m",
        "status",
        "warnings",
        "blocks",
        "ages_s",
        "data_source",
        "notes",
    }
    assert first["data_source"] == "replay"
    assert first["notes"] == ["liq_gap: liq-map unavailable (no liq-map received)"]
    out = subprocess.run(
        [*base, "--emit", "intents"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    intents = [json.loads(x) for x in out.stdout.splitlines()]
    assert intents and all(i["post_only"] and len(i["tps"]) == 3 for i in intents)


async def test_guards_one_shot_from_live_feeds(tmp_path: Path) -> None:
    from feeds.transport.fakes import FakeExchange
    from tests.conftest import DATA_DIR
    from tests.test_run_live import _env_for

    fake = FakeExchange(DATA_DIR, rate=500.0)
    await fake.start()
    try:
        env = {**os.environ, **_env_for(fake.config_tree())}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "autotrader",
            "guards",
            "--json",
            "--timeout",
            "4",
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        await fake.stop()
    assert proc.returncode == 3, err.decode()  # unsafe or stale: the report blocks entries
    report = json.loads(out)
    assert report["data_source"] == "live"
    assert report["spread_bps"] is not None and report["depth_10bps"]["bid_usd"] > 0
    # no closed 1m bar within 4 s: the report says so and blocks (fail closed), nothing invented
    assert report["status"] == "stale"
    assert any("bars" in b for b in report["blocks"])
