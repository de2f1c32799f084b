"""``autotrader backtest`` over several files, a directory, a time range, with a progress bar and a
parameter sweep; the backtest streams (frame by frame, file after file)."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from autotrader.backtest import Backtest
from autotrader.config import validate
from tests.conftest import REPO_ROOT

CLI = [sys.executable, "-m", "autotrader"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)


@pytest.fixture(scope="module")
def btc_lines(btc_file: Path) -> list[bytes]:
    with gzip.open(btc_file, "rb") as fh:
        return fh.read().splitlines(keepends=True)


@pytest.fixture(scope="module")
def halves(btc_lines: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("halves")
    mid = len(btc_lines) // 2
    out = []
    for i, part in enumerate((btc_lines[:mid], btc_lines[mid:])):
        p = d / f"btc-{i}.gz"
        with gzip.open(p, "wb", compresslevel=1) as fh:
            fh.writelines(part)
        out.append(p)
    return out


def _report(paths: Any, **kw: Any) -> dict[str, Any]:
    r = asyncio.run(Backtest(validate({}), paths, **kw).run())
    d: dict[str, Any] = msgspec.to_builtins(r)
    for k in ("wall_s", "events_per_s", "path"):
        d.pop(k)
    return d


def test_two_files_replay_as_one_stream(btc_file: Path, halves: list[Path]) -> None:
    whole, split = _report(btc_file), _report(halves)
    assert split == whole  # the same frames, the same report, the recording counters added up
    assert whole["frames"] == 93_954


def test_directory_and_cli(halves: list[Path]) -> None:
    out = run("backtest", str(halves[0].parent), "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["frames"] == 93_954 and r["path"] == f"{halves[0]}, {halves[1]}"
    assert out.stderr == ""  # no progress bar with --json


def test_time_range(btc_file: Path, btc_lines: list[bytes]) -> None:
    start_ms, end_ms = 1_723_161_360_000, 1_723_161_480_000  # 23:56:00 to 23:58:00 UTC
    inside = sum(1 for ln in btc_lines if start_ms * 10**6 <= int(ln.split(b" ", 1)[0]) < end_ms * 10**6)
    r = _report(btc_file, start_ms=start_ms, end_ms=end_ms)
    assert r["frames"] == inside > 10_000
    assert r["event_span_s"] <= 121
    out = run("backtest", str(btc_file), "--json", "--from", "2024-08-08T23:56", "--to", "1723161480000")
    assert json.loads(out.stdout)["frames"] == inside


def test_bad_range_and_paths_are_one_line_errors(btc_file: Path, tmp_path: Path) -> None:
    for args in (["--from", "yesterday"], ["--from", "2024-08-09", "--to", "2024-08-08"]):
        out = run("backtest", str(btc_file), *args)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    out = run("backtest", str(tmp_path))
    assert out.returncode == 2 and "no recordings" in out.stderr


def test_progress_bar_on_stderr(btc_file: Path) -> None:
    out = run("backtest", str(btc_file), "--progress")
    assert out.returncode == 0 and "net PnL" in out.stdout
    assert "frames" in out.stderr


@pytest.fixture(scope="module")
def small(btc_lines: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("small") / "btc-small.gz"
    with gzip.open(p, "wb", compresslevel=1) as fh:
        fh.writelines(btc_lines[:6000])
    return p


def test_sweep_runs_every_combination(small: Path) -> None:
    out = run("backtest", str(small), "--json", "--sweep", "guards.atr_period=3,5",
              "--sweep", "risk.risk_per_trade_pct=0.5,1,2")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["set"] for r in rows] == [{"guards.atr_period": a, "risk.risk_per_trade_pct": b}
                                        for a in ("3", "5") for b in ("0.5", "1", "2")]
    assert all(r["frames"] == rows[0]["frames"] > 0 for r in rows)
    text = run("backtest", str(small), "--sweep", "guards.atr_period=3,5", "--jobs", "2")
    assert text.returncode == 0 and "guards.atr_period" in text.stdout
    assert len(text.stdout.strip().splitlines()) == 4  # title, header, two rows


def test_sweep_errors(small: Path) -> None:
    for spec in ("guards.atr_period", "guards.atr_period=3,", "nope.key=1,2", "guards.atr_period=x"):
        out = run("backtest", str(small), "--sweep", spec)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, spec


def test_range_and_files_identical_on_both_paths(halves: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled scanner's range and file handling equals the pure-Python path's."""
    from feeds.binance import fast

    if fast.compiled is None:
        pytest.skip("compiled hot path not built")
    kw = {"start_ms": 1_723_161_300_000, "end_ms": 1_723_161_555_000}  # across the two files
    compiled = _report(halves, **kw)
    monkeypatch.setattr(fast, "compiled", None)
    assert _report(halves, **kw) == compiled and compiled["frames"] > 0
