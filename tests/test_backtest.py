"""``autotrader backtest`` and ``autotrader intent --replay`` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

CLI = [sys.executable, "-m", "autotrader"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)


def test_backtest_btc_recording_runs_and_reports(btc_file: Path) -> None:
    out = run("backtest", str(btc_file), "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["frames"] == 93_954
    assert r["event_span_s"] == pytest.approx(344.7, abs=1.0)
    assert r["trades"] == [] and r["net_pnl"] == 0.0 and r["kills"] == []
    assert r["recording"]["truncated"] is False and r["recording"]["bad_lines"] == 0
    text = run("backtest", str(btc_file))
    assert text.returncode == 0
    assert "93,954 events" in text.stdout and "net PnL" in text.stdout and "max drawdown" in text.stdout


@pytest.fixture(scope="module")
def demo_report(demo_recording: Path) -> dict[str, Any]:
    out = run("backtest", str(demo_recording), "--json", "--set", "guards.atr_period=3")
    assert out.returncode == 0, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def test_backtest_demo_trades_and_accounting(demo_report: dict[str, Any]) -> None:
    r = demo_report
    assert r["intents"] >= 1 and r["accepted"] >= 1
    closed = [t for t in r["trades"] if t["outcome"] in ("target", "stopped", "closed")]
    assert closed, r["trades"]
    for t in closed:
        assert t["avg_exit"] is not None and t["exit_ts"] >= t["entry_ts"]
    assert r["net_pnl"] == pytest.approx(r["end_equity"] - r["start_equity"])
    assert r["net_pnl"] == pytest.approx(r["realized_pnl"] + r["unrealized_pnl"] - r["fees"] + r["funding"])
    assert r["fees"] == pytest.approx(sum(t["fees"] for t in r["trades"]))
    assert r["max_drawdown_usd"] >= 0 and 0 <= r["max_drawdown_pct"] < 100


def test_backtest_is_deterministic(demo_recording: Path, demo_report: dict[str, Any]) -> None:
    again = json.loads(run("backtest", str(demo_recording), "--json", "--set", "guards.atr_period=3").stdout)
    strip = ("wall_s", "events_per_s")
    assert {k: v for k, v in again.items() if k not in strip} == {
        k: v for k, v in demo_report.items() if k not in strip
    }


def test_manual_intent_into_a_backtest(demo_recording: Path) -> None:
    out = run("intent", "sell", "--size", "3", "--sl", "160", "--tp", "140", "--replay", str(demo_recording),
              "--at", "5m", "--set", "guards.atr_period=3", "--set", "signal.enabled=false", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert [t["intent_id"] for t in r["trades"]] == ["manual-1"]
    assert r["trades"][0]["side"] == "sell" and r["trades"][0]["size"] == pytest.approx(3.0)


def test_manual_intent_rejected_by_guards_is_reported(btc_file: Path) -> None:
    out = run("intent", "buy", "--size", "0.001", "--sl", "1000", "--replay", str(btc_file), "--at", "30s")
    assert out.returncode == 0, out.stderr
    assert "intent_rejected" in out.stdout and "guards block" in out.stdout


def test_bad_inputs_are_clear(btc_file: Path, tmp_path: Path) -> None:
    missing = run("backtest", str(tmp_path / "nope.gz"))
    assert missing.returncode == 2 and "no such recording" in missing.stderr
    wrong_sl = run("intent", "buy", "--size", "1", "--sl", "1e9", "--replay", str(btc_file), "--at", "10s")
    assert wrong_sl.returncode == 2 and "sl" in wrong_sl.stderr
    bad_at = run("intent", "buy", "--size", "1", "--sl", "1", "--replay", str(btc_file), "--at", "soon")
    assert bad_at.returncode == 2 and "--at" in bad_at.stderr
