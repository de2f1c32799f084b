"""The command line as a user runs it: real processes, real recordings."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CLI = [sys.executable, "-m", "autotrader"]


def run_cli(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTOTRADER__LOGGING__LEVEL": "INFO"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=env, **kw
    )  # type: ignore[call-overload,no-any-return]


def test_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.startswith("autotrader ")


def test_replay_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gz"
    out = run_cli("replay", str(missing), "--emit", "bars")
    assert out.returncode != 0
    assert str(missing) in out.stderr


def test_replay_garbage_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.jsonl"
    bad.write_bytes(b"\x00\x01 this is not a recording\n")
    out = run_cli("replay", str(bad), "--emit", "book")
    assert out.returncode != 0
    assert f"{bad}:1:" in out.stderr  # file:line, as compilers print it


def test_replay_bad_emit_kind(btc_file: Path) -> None:
    out = run_cli("replay", str(btc_file), "--emit", "nonsense")
    assert out.returncode != 0


def test_replay_truncated_gzip_reports_and_exits_cleanly(btc_file: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gz"
    cut.write_bytes(btc_file.read_bytes()[:400_000])
    out = run_cli("replay", str(cut), "--emit", "bars")
    assert out.returncode == 0
    assert "truncated" in out.stderr
    bars = [json.loads(line) for line in out.stdout.splitlines()]
    assert bars, "bars from the readable part are still printed"


def test_replay_bars_contract_keys(btc_file: Path) -> None:
    out = run_cli("replay", str(btc_file), "--emit", "bars")
    assert out.returncode == 0, out.stderr
    bars = [json.loads(line) for line in out.stdout.splitlines()]
    # Trades run 23:54:16-23:59:59.643 by trade time (depth events cross midnight, no trade does).
    assert len(bars) == 6
    assert set(bars[0]) == {
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "buy_vol",
        "sell_vol",
        "cvd",
        "vwap",
        "trades",
    }
    assert all(isinstance(bars[0][k], (int, float)) for k in bars[0])
    summary = json.loads(out.stderr.strip().splitlines()[-1])["summary"]
    assert summary["codecs"]["binance"]["malformed"] == 0


def test_replay_book_contract(btc_file: Path) -> None:
    out = run_cli("replay", str(btc_file), "--emit", "book")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    first = json.loads(lines[0])
    assert set(first) == {
        "timestamp",
        "update_id",
        "bid_px",
        "bid_qty",
        "ask_px",
        "ask_qty",
        "spread_bps",
        "depth_10bps",
    }
    assert set(first["depth_10bps"]) == {"bid_usd", "ask_usd"}
    mid = (first["bid_px"] + first["ask_px"]) / 2
    assert first["spread_bps"] == pytest.approx((first["ask_px"] - first["bid_px"]) / mid * 1e4)
    summary = json.loads(out.stderr.strip().splitlines()[-1])["summary"]
    assert summary["codecs"]["binance"]["gaps"] == 0


def test_replay_funding_from_bybit_sample(data_dir: Path) -> None:
    out = run_cli("replay", str(data_dir / "cryptofeed" / "BYBIT.jsonl.zst"), "--emit", "funding")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    funding = [r for r in rows if r["kind"] == "funding" and r["symbol"] == "SOLUSDT"]
    oi = [r for r in rows if r["kind"] == "open_interest" and r["symbol"] == "SOLUSDT"]
    assert funding and oi
    assert all(r["interval_hours"] == 8 for r in funding)
    f = funding[-1]
    assert f["apr_pct"] == pytest.approx(f["rate"] * 3 * 365 * 100)


def test_run_no_ui_replay_logs_and_stops_on_sigterm(btc_file: Path) -> None:
    env = {**os.environ, "AUTOTRADER__LOGGING__STATUS_INTERVAL_S": "0.5"}
    proc = subprocess.Popen(
        [*CLI, "run", "--no-ui", "--replay", str(btc_file), "--speed", "max"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        lines: list[dict[str, object]] = []
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            rec = json.loads(line)
            lines.append(rec)
            if rec.get("msg") == "status" and rec.get("replay_done"):
                break
        status = [r for r in lines if r.get("msg") == "status"]
        assert status, lines
        last = status[-1]
        assert last["feeds"]["binance"]["state"] == "down"  # type: ignore[index]
        assert last["market"]["book"] is not None  # type: ignore[index]
        assert proc.poll() is None, "keeps running after the data ends"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_rejects_bad_speed(btc_file: Path) -> None:
    out = run_cli("run", "--no-ui", "--replay", str(btc_file), "--speed", "fast")
    assert out.returncode != 0
    assert "--speed" in out.stderr


def test_bad_config_key_is_named(tmp_path: Path, btc_file: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[feeds]\nbinance_max_age_s = -3\n")
    out = run_cli("replay", str(btc_file), "--emit", "bars", "--config", str(cfg))
    assert out.returncode != 0
    assert "feeds.binance_max_age_s" in out.stderr


def test_gzip_helper_sanity(btc_file: Path) -> None:
    with gzip.open(btc_file, "rb") as fh:
        assert fh.readline().split(b" ", 1)[0].isdigit()


def test_demo_no_ui_runs_the_synthetic_session(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "AUTOTRADER__LOGGING__STATUS_INTERVAL_S": "0.5"}
    proc = subprocess.Popen(
        [*CLI, "demo", "--no-ui", "--speed", "max"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        assert proc.stderr is not None
        done = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and done is None:
            line = proc.stderr.readline()
            if not line:
                break
            if line.startswith("{"):
                rec = json.loads(line)
                if rec.get("msg") == "status" and rec.get("replay_done"):
                    done = rec
        assert done is not None
        assert done["label"] == "synthetic demo"
        assert done["market"]["liquidations"] > 10 and done["market"]["funding_apr"] is not None
        assert all(f["errors"] == 0 for f in done["feeds"].values())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    from feeds.demo import DEMO_VERSION

    assert list((tmp_path / "autotrader" / "demo").glob(f"demo-v{DEMO_VERSION}-seed7*.zst"))


def test_the_readme_command_table_names_every_command() -> None:
    """Every visible command (and sub-command) has a row in the README's command table."""
    from typer.main import get_command

    from autotrader.cli import app

    rows = [line for line in (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| `autotrader ")]
    missing: list[str] = []

    def walk(group: object, path: list[str]) -> None:
        for name, sub in getattr(group, "commands", {}).items():
            if getattr(sub, "hidden", False):
                continue
            if hasattr(sub, "commands"):
                walk(sub, [*path, name])
                continue
            head = " ".join(["autotrader", *path])
            # a row names the command itself, or lists it among its group's alternatives (a|b|c)
            listed = (f"\\|{name}", f"{name}\\|")
            if not any(f"`{head} {name}" in r or (f"`{head} " in r and any(x in r for x in listed))
                       for r in rows):
                missing.append(f"{head} {name}")

    walk(get_command(app), [])
    assert rows and not missing, f"commands without a row in the README's command table: {missing}"
