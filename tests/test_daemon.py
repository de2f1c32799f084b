"""A headless daemon driven by a recording, controlled from other processes, as a user would.

* ``run --no-ui --replay`` is halted by ``autotrader kill`` from another process; ``autotrader
  status`` shows HALTED and the reason; the activity log has the kill; SIGTERM exits 0.
* SIGKILL mid-lifecycle (a filled entry with its stop and TPs live), start again on the same state
  database: no duplicate order, the stop is still there, the activity log is intact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

CLI = [sys.executable, "-m", "autotrader"]


class Daemon:
    def __init__(self, tmp: Path, recording: Path, speed: str, *sets: str) -> None:
        self.tmp = tmp
        self.env = {
            **os.environ,
            "AUTOTRADER__CONTROL__SOCKET_PATH": str(tmp / "ctl.sock"),
            "AUTOTRADER__STORAGE__STATE_DB": str(tmp / "state.sqlite3"),
            "AUTOTRADER__LOGGING__STATUS_INTERVAL_S": "1",
        }
        self.args = [*CLI, "run", "--no-ui", "--replay", str(recording), "--speed", speed]
        for s in sets:
            self.args += ["--set", s]
        self.log = (tmp / "daemon.log").open("a")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.log, cwd=REPO_ROOT,
                                     env=self.env)

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=REPO_ROOT, env=self.env,
                              timeout=timeout)

    def status(self) -> dict[str, Any] | None:
        out = self.cli("status", "--json")
        return json.loads(out.stdout) if out.returncode == 0 else None

    def wait_for(
        self, what: str, pred: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"daemon exited: {self.tail()}"
            last = self.status()
            if last is not None and pred(last):
                return last
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; last status {last}; log {self.tail()}")

    def activity(self, *kinds: str) -> list[dict[str, Any]]:
        args = ["activity", "--json", "--limit", "1000", "--db", str(self.tmp / "state.sqlite3")]
        for k in kinds:
            args += ["--kind", k]
        out = self.cli(*args)
        assert out.returncode == 0, out.stderr
        return list(reversed(json.loads(out.stdout)))

    def tail(self) -> str:
        self.log.flush()
        return (self.tmp / "daemon.log").read_text()[-3000:]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.log.close()


@pytest.fixture
def short_tmp() -> Any:
    """A short directory: AF_UNIX socket paths are limited to 107 bytes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="at-") as d:
        yield Path(d)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kill_from_another_process_halts_the_daemon(btc_file: Path, short_tmp: Path) -> None:
    import urllib.request

    port = _free_port()
    d = Daemon(short_tmp, btc_file, "max", f"metrics.port={port}")
    try:
        st = d.wait_for("the daemon to answer", lambda s: s["engine"]["trading_state"] == "active")
        assert st["data_source"] == "replay"
        g = d.cli("guards", "--json")
        report = json.loads(g.stdout)
        assert report["data_source"] == "replay"
        assert g.returncode == (3 if report["blocks"] else 0)  # 3: the report blocks entries
        out = d.cli("kill", "--reason", "operator test from another shell")
        assert out.returncode == 0, out.stderr
        assert "HALTED" in out.stdout and "confirmed" in out.stdout
        st = d.wait_for("halted", lambda s: s["engine"]["trading_state"] == "halted", timeout=10)
        assert st["engine"]["kill"]["reason"] == "operator test from another shell"
        assert st["engine"]["automation_on"] is False
        text = d.cli("status")
        assert text.returncode == 0
        assert "HALTED" in text.stdout and "operator test from another shell" in text.stdout
        kills = d.activity("kill_switch")
        assert [k["data"]["stage"] for k in kills] == ["engaged", "confirmed"]
        again = d.cli("kill")  # no --reason: "manual"; a second kill says so and what it cancelled now
        assert again.returncode == 0, again.stderr
        said = again.stdout
        assert "trading was already HALTED" in said and "this kill cancelled" in said, said
        again = d.cli("kill", "--reason", "second", "--json")
        assert again.returncode == 0 and json.loads(again.stdout)["already"] is True
        refused = d.cli("intent", "buy", "--size", "1", "--sl", "1000")
        assert refused.returncode == 1 and "halted" in refused.stdout
        csv_out = d.cli("activity", "export", "--format", "csv", "--db", str(short_tmp / "state.sqlite3"))
        assert csv_out.returncode == 0 and csv_out.stdout.startswith("id,ts_ms,kind")
        assert "kill_switch" in csv_out.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert "kill_switch_total 1.0" in metrics
        assert "guard_status" in metrics and "feed_messages_total" in metrics
    finally:
        code = d.stop()
    assert code == 0, d.tail()
    assert any(r["kind"] == "shutdown" for r in d.activity())


def test_cli_without_daemon_says_so(short_tmp: Path) -> None:
    env = {**os.environ, "AUTOTRADER__CONTROL__SOCKET_PATH": str(short_tmp / "none.sock")}
    out = subprocess.run([*CLI, "status"], capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=30)
    assert out.returncode == 1
    assert "no running autotrader" in out.stderr


def _orders(st: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["tag"]: o for o in st["engine"]["open_orders"]}


def test_sigkill_mid_lifecycle_then_restart(demo_recording: Path, short_tmp: Path) -> None:
    sets = ("guards.atr_period=3", "engine.replace_timeout_s=2", "engine.entry_ttl_s=4",
            "engine.market_convert=true")
    d = Daemon(short_tmp, demo_recording, "20", *sets)
    try:
        st = d.wait_for("passing guards and a book", lambda s: s["guards"]["status"] == "passing"
                        and s["market"]["book"] is not None)
        d.cli("automation", "off")  # only the manual intent trades in this test
        bid = st["market"]["book"]["bid_px"]
        out = d.cli("intent", "buy", "--size", "2", "--sl", f"{bid - 4:.2f}", "--tp", f"{bid + 3:.2f}",
                    "--tp", f"{bid + 5:.2f}", "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        iid = json.loads(out.stdout)["id"]
        st = d.wait_for("the stop and TPs", lambda s: {f"{iid}:sl1", f"{iid}:tp1", f"{iid}:tp2"}
                        <= set(_orders(s)))
        before_orders = _orders(st)
        before_rows = d.activity()
    finally:
        d.stop(signal.SIGKILL)
    assert any(r["kind"] == "sl_placed" for r in before_rows)

    d2 = Daemon(short_tmp, demo_recording, "1", *sets)
    try:
        st = d2.wait_for("reconciliation", lambda s: s["engine"]["recovered"] is True)
        after_orders = _orders(st)
        assert after_orders[f"{iid}:sl1"]["order_id"] == before_orders[f"{iid}:sl1"]["order_id"], "the stop"
        assert set(after_orders) == set(before_orders), (before_orders, after_orders)
        assert st["engine"]["position"]["size"] == pytest.approx(2.0)
        assert [a["intent_id"] for a in st["engine"]["active"]] == [iid]
        rows = d2.activity()
        assert rows[: len(before_rows)] == before_rows, "the activity log is intact"
        new = rows[len(before_rows):]
        assert any(r["kind"] == "reconcile" and r["intent_id"] == iid for r in new)
        assert not [r for r in new if r["kind"] in ("order_submitted", "sl_placed", "tp_placed")], new
    finally:
        code = d2.stop()
    assert code == 0, d2.tail()
