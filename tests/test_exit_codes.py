"""The exit-code table (README): 0 ok, 1 error, 2 usage or refused, 3 unsafe or stale, 70 a bug,
130 interrupted; a closed stdout ends a command quietly; no traceback for a user error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import autotrader.logs
from autotrader import exit_codes
from autotrader.cli import app
from autotrader.exit_codes import run_app
from autotrader.guards_cmd import guards_exit_code
from core.secrets import Redactor
from storage.activity_log import ActivityLog
from tests.conftest import REPO_ROOT

DEAD = "http://127.0.0.1:9"  # nothing listens: every client fails at once, nothing leaves the machine


@pytest.fixture(autouse=True)
def _own_redactor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autotrader.logs, "_REDACTOR", Redactor())


def invoke(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The CLI in-process through the same entry point as the console script."""
    with CliRunner().isolation(env=env) as (out, err, _):
        code = run_app(app, list(argv))
        sys.stdout.flush()
        sys.stderr.flush()
        return code, out.getvalue().decode(), err.getvalue().decode()


def dead_endpoints(tmp: Path) -> dict[str, str]:
    ws = DEAD.replace("http", "ws")
    return {"AUTOTRADER__VENUES__BINANCE__REST_URL": DEAD, "AUTOTRADER__VENUES__BYBIT__REST_URL": DEAD,
            "AUTOTRADER__VENUES__OKX__REST_URL": DEAD, "AUTOTRADER__VENUES__BINANCE__WS_PUBLIC_URL": ws,
            "AUTOTRADER__VENUES__BINANCE__WS_MARKET_URL": ws, "AUTOTRADER__VENUES__BYBIT__WS_URL": ws,
            "AUTOTRADER__VENUES__OKX__WS_URL": ws, "AUTOTRADER__VENUES__DRIFT__RPC_URL": DEAD,
            "AUTOTRADER__CONTROL__SOCKET_PATH": str(tmp / "none.sock")}


def test_guard_report_that_blocks_exits_3() -> None:
    assert guards_exit_code({"status": "passing", "blocks": []}) == 0
    assert guards_exit_code({"status": "warning", "blocks": []}) == 0  # a warning that does not block
    assert guards_exit_code({"status": "warning", "blocks": ["spread 12 bps > 10"]}) == 3
    assert guards_exit_code({"status": "stale", "blocks": []}) == 3
    assert guards_exit_code({"status": "breach", "blocks": ["x"]}) == 3


def test_guards_with_no_live_input_is_stale_and_exits_3(tmp_path: Path) -> None:
    code, out, err = invoke("guards", "--live", "--timeout", "1", env=dead_endpoints(tmp_path))
    assert code == 3, err
    assert out.startswith("guards: STALE") and "Traceback" not in err


def test_record_with_nothing_recorded_exits_1(tmp_path: Path) -> None:
    out_dir = tmp_path / "rec"
    code, _, err = invoke("record", "--out", str(out_dir), "--duration", "1s", env=dead_endpoints(tmp_path))
    assert code == 1, err
    assert "nothing was recorded" in err and "Traceback" not in err
    assert out_dir.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["demo", "--seed", "99999999999999999999999"], 2, "--seed"),
        (["demo", "--seed", "-1"], 2, "--seed"),
        (["run", "--no-ui", "--set", "storage.state_db=/proc/nope/state.sqlite3"], 2, "storage.state_db"),
        (["config", "show", "--set", "feeds.okx_max_age_s=inf"], 2, "finite"),
        (["config", "show", "--set", "guards.max_age.book_s=1e400"], 2, "finite"),
        (["config", "show", "--set", "paper.maker_fee_bps=nan"], 2, "finite"),
        (["config", "show", "--set", "guards.max_leverage=100"], 2, "guards.max_leverage"),
        (["config", "show", "--set", "risk.risk_per_trade_pct=50"], 2, "risk.risk_per_trade_pct"),
        (["config", "show", "--set", "venues.helius.listen=0.0.0.0:8787", "--set",
          "venues.helius.auth_header=x"], 2, "bind_public"),
        (["replay", "/nonexistent.gz", "--emit", "bars"], 2, "/nonexistent.gz"),
        (["config", "show", "--set", "keys.delegate_name=007"], 0, ""),
        (["nosuchcommand"], 2, "No such command"),
        (["replay"], 2, "Missing"),
    ],
)
def test_user_errors_are_one_message_and_a_documented_code(
    tmp_path: Path, argv: list[str], code: int, says: str
) -> None:
    got, out, err = invoke(*argv, env=dead_endpoints(tmp_path))
    assert got == code, (out, err)
    assert says in err and "Traceback" not in err + out
    if code == 0:
        assert '"007"' in out  # an all-digit string stays a string


def test_config_file_errors(tmp_path: Path) -> None:
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe[market]\n")
    cases = {binary: "not a text file", tmp_path: "cannot read",
             tmp_path / "none.toml": "no such config file"}
    bad = tmp_path / "bad.toml"
    bad.write_text("[feeds]\nokx_max_age_s = inf\n")
    cases[bad] = "feeds.okx_max_age_s': must be a finite number"
    for path, says in cases.items():
        code, _, err = invoke("config", "show", "--config", str(path))
        assert code == 2 and says in err and err.count("\n") == 1, err


def test_an_unexpected_exception_is_one_line_and_70(monkeypatch: pytest.MonkeyPatch) -> None:
    import autotrader.config_cmd

    def boom(*a: object, **k: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(autotrader.config_cmd, "flatten", boom)
    code, _, err = invoke("config", "show")
    assert code == exit_codes.INTERNAL
    assert "internal error" in err and "RuntimeError: a bug" in err and "Traceback" not in err


def _closed_pipe(argv: list[str], tmp: Path) -> tuple[int, str, float]:
    env = {**os.environ, "AUTOTRADER__CONTROL__SOCKET_PATH": str(tmp / "none.sock")}
    proc = subprocess.Popen([sys.executable, "-m", "autotrader", *argv], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    assert first, proc.stderr.read()
    t0 = time.monotonic()
    proc.stdout.close()  # what `| head -1` does once it has its line
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, proc.stderr.read().decode(), time.monotonic() - t0


def test_activity_export_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    log = ActivityLog(db)
    for i in range(20_000):  # far more than a pipe buffer
        log.append("guard_block", ts_ms=1_700_000_000_000 + i, message=f"blocked {i} " + "x" * 40)
    log.close()
    code, err, _ = _closed_pipe(["activity", "export", "--db", str(db)], tmp_path)
    assert code == 0 and err == "", err


def test_replay_into_a_closed_pipe_ends_quietly(btc_file: Path, tmp_path: Path) -> None:
    code, err, _ = _closed_pipe(["replay", str(btc_file), "--emit", "book", "--no-progress"], tmp_path)
    assert code == 0 and "Traceback" not in err and "Broken pipe" not in err, err
