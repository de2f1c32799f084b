"""Issue 15 from the command line, as a user meets it: one writer per state database, only live data
drives a live venue, leaving on SIGTERM/SIGHUP. Every process is a real ``autotrader`` started here."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.fs_faults import fill, small_tmpfs

CLI = [sys.executable, "-m", "autotrader"]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: AF_UNIX socket paths are limited to 107 bytes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="at15-") as d:
        yield Path(d)


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    (tmp / "run").mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "XDG_DATA_HOME": str(tmp / "data"), "XDG_RUNTIME_DIR": str(tmp / "run"),
            "XDG_STATE_HOME": str(tmp / "state"), "XDG_CONFIG_HOME": str(tmp / "config"),
            "AUTOTRADER__LOGGING__STATUS_INTERVAL_S": "1", **extra}


class Proc:
    """One ``autotrader`` process; its stderr goes to a file read by :meth:`wait_log`."""

    def __init__(self, tmp: Path, name: str, args: list[str], env: dict[str, str]) -> None:
        self.env = env
        self.err_path = tmp / f"{name}.err"
        self.err = self.err_path.open("w")
        self.proc = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=self.err, cwd=REPO_ROOT,
                                     env=env)

    def log(self) -> str:
        if not self.err.closed:
            self.err.flush()
        return self.err_path.read_text()

    def wait_log(self, needle: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.log()[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {needle!r}: {self.log()[-3000:]}")

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=REPO_ROOT, env=self.env,
                              timeout=timeout)

    def status(self) -> dict[str, Any] | None:
        out = self.cli("status", "--json")
        return json.loads(out.stdout) if out.returncode == 0 else None

    def wait_status(self, what: str, pred: Callable[[dict[str, Any]], bool],
                    timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"exited: {self.log()[-3000:]}"
            last = self.status()
            if last is not None and pred(last):
                return last
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; last {last}; log {self.log()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.err.close()


def _snapshot(*dirs: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in dirs:
        for p in sorted(d.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _quiet_snapshot(*dirs: Path, timeout: float = 30) -> dict[str, str]:
    """The files once the running instance stopped writing them (two equal snapshots in a row)."""
    deadline = time.monotonic() + timeout
    last = _snapshot(*dirs)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _snapshot(*dirs)
        if now == last:
            return now
        last = now
    raise AssertionError("the first instance kept writing its files")


def test_a_second_instance_refuses_and_touches_nothing(short_tmp: Path, btc_file: Path) -> None:
    env = _env(short_tmp)
    first = Proc(short_tmp, "first", ["demo", "--no-ui", "--speed", "max"], env)
    try:
        first.wait_log('"msg":"replay finished"', timeout=180)
        data = short_tmp / "data" / "autotrader"
        state = data / "demo-state.sqlite3"
        assert state.exists()
        before = _quiet_snapshot(data, short_tmp / "run")
        # a second demo, and a daemon pointed at the same state database through another socket
        second = subprocess.run([*CLI, "demo", "--no-ui", "--speed", "max"], capture_output=True, text=True,
                                cwd=REPO_ROOT, env=env, timeout=120)
        other = subprocess.run(
            [*CLI, "run", "--no-ui", "--replay", str(btc_file), "--speed", "max"], capture_output=True,
            text=True, cwd=REPO_ROOT, timeout=120,
            env={**env, "AUTOTRADER__STORAGE__STATE_DB": str(state),
                 "AUTOTRADER__CONTROL__SOCKET_PATH": str(short_tmp / "other.sock")})
        # the UI on another state database but the same control socket: refused before any screen
        ui = subprocess.run([*CLI, "run", "--replay", str(btc_file), "--speed", "max"], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=120, stdin=subprocess.DEVNULL,
                            env={**env, "XDG_DATA_HOME": str(short_tmp / "other-data")})
        after = _snapshot(data, short_tmp / "run")
        assert first.proc.poll() is None, "the first instance still runs"
    finally:
        code = first.stop()
    for out in (second, other):
        assert out.returncode == 2, out.stderr
        line = [x for x in out.stderr.splitlines() if x.startswith("autotrader:")]
        assert len(line) == 1, out.stderr
        assert f"pid {first.proc.pid}" in line[0] and str(state) in line[0]
        assert "command 'autotrader demo" in line[0]
        assert "Traceback" not in out.stderr and "NoMatches" not in out.stderr
    assert ui.returncode == 2 and "cannot start: another autotrader instance" in ui.stderr, ui.stderr
    assert "Traceback" not in ui.stderr and "NoMatches" not in ui.stderr
    assert after == before, "the first instance's files are byte-for-byte unchanged"
    assert code == 0


class RpcListener:
    """A local TCP listener that counts connections (and answers nothing)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def rpc() -> Iterator[RpcListener]:
    r = RpcListener()
    try:
        yield r
    finally:
        r.close()


def _drift_env(tmp: Path, rpc: RpcListener) -> dict[str, str]:
    return _env(tmp, **{
        "AUTOTRADER__ENGINE__VENUE": "drift",
        "AUTOTRADER__VENUES__DRIFT__RPC_URL": f"http://127.0.0.1:{rpc.port}",
        "AUTOTRADER__VENUES__DRIFT__WS_URL": f"ws://127.0.0.1:{rpc.port}",
        "AUTOTRADER__VENUES__DRIFT__AUTHORITY": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
        "AUTOTRADER__CONTROL__SOCKET_PATH": str(tmp / "ctl.sock"),
    })


@pytest.mark.parametrize("command", ["demo", "replay"])
def test_demo_and_replay_with_a_drift_config_never_reach_the_rpc(short_tmp: Path, btc_file: Path,
                                                                  rpc: RpcListener, command: str) -> None:
    env = _drift_env(short_tmp, rpc)
    args = (["demo", "--no-ui", "--speed", "max"] if command == "demo" else
            ["run", "--no-ui", "--replay", str(btc_file), "--speed", "max"])
    p = Proc(short_tmp, command, args, env)
    try:
        p.wait_log('"msg":"replay finished"', timeout=180)
        st = p.wait_status("the engine", lambda s: s["engine"]["recovered"] is True)
        assert st["engine"]["venue"]["name"] == "paper"
    finally:
        code = p.stop()
    log = p.log()
    notes = [x for x in log.splitlines() if "runs on the paper venue" in x]
    assert len(notes) == 1 and "engine.venue = 'drift' is ignored" in notes[0], log[-2000:]
    assert code == 0, log[-2000:]
    assert rpc.connections == 0, "a replayed or synthetic market must never reach the configured RPC"


def test_backtest_with_a_drift_config_runs_on_paper(short_tmp: Path, btc_file: Path,
                                                    rpc: RpcListener) -> None:
    out = subprocess.run([*CLI, "backtest", str(btc_file), "--json"], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=_drift_env(short_tmp, rpc), timeout=300)
    assert out.returncode == 0, out.stderr
    assert "a backtest runs on the paper venue" in out.stderr
    assert json.loads(out.stdout)["frames"] > 0
    assert rpc.connections == 0


def test_a_dropped_ssh_session_cancels_the_resting_entry_and_says_so(short_tmp: Path,
                                                                     demo_recording: Path) -> None:
    """SIGHUP (the terminal went away): the same leaving as SIGTERM or quitting the UI."""
    env = _env(short_tmp, AUTOTRADER__CONTROL__SOCKET_PATH=str(short_tmp / "ctl.sock"),
               AUTOTRADER__STORAGE__STATE_DB=str(short_tmp / "state.sqlite3"))
    sets = ["--set", "guards.atr_period=3", "--set", "engine.entry_ttl_s=600",
            "--set", "engine.replace_timeout_s=600"]
    args = ["run", "--no-ui", "--replay", str(demo_recording), "--speed", "20", *sets]
    p = Proc(short_tmp, "daemon", args, env)
    try:
        st = p.wait_status("passing guards and a book", lambda s: s["guards"]["status"] == "passing"
                           and s["market"]["book"] is not None)
        p.cli("automation", "off")
        bid = st["market"]["book"]["bid_px"]
        out = p.cli("intent", "buy", "--size", "1", "--price", f"{bid - 2:.2f}", "--sl", f"{bid - 5:.2f}",
                    "--tp", f"{bid + 3:.2f}", "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        iid = json.loads(out.stdout)["id"]
        p.wait_status("the resting entry", lambda s: any(o["tag"] == f"{iid}:e1"
                                                         for o in s["engine"]["open_orders"]))
    finally:
        code = p.stop(signal.SIGHUP)
    assert code == 0, p.log()[-2000:]
    leaving = [json.loads(x) for x in p.log().splitlines() if '"msg":"leaving"' in x]
    assert leaving and [o["tag"] for o in leaving[0]["cancelled"]] == [f"{iid}:e1"], p.log()[-2000:]
    assert "1 order(s) cancelled" in leaving[0]["summary"]
    rows = p.cli("activity", "--json", "--kind", "shutdown", "--db", str(short_tmp / "state.sqlite3"))
    shutdown = json.loads(rows.stdout)[0]
    assert shutdown["data"]["cancelled"][0]["tag"] == f"{iid}:e1" and shutdown["data"]["kept"] == []


@pytest.fixture
def small_fs(short_tmp: Path) -> Iterator[Path]:
    with small_tmpfs(short_tmp / "fs") as fs:
        yield fs


def test_a_full_disk_shows_everywhere_and_needs_a_resume(short_tmp: Path, btc_file: Path,
                                                         small_fs: Path) -> None:
    """Storage fails closed, as the operator sees it: status (JSON and text), metrics, stderr."""
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(short_tmp, AUTOTRADER__CONTROL__SOCKET_PATH=str(short_tmp / "ctl.sock"),
               AUTOTRADER__STORAGE__STATE_DB=str(small_fs / "state.sqlite3"),
               AUTOTRADER__METRICS__PORT=str(port))
    p = Proc(short_tmp, "daemon", ["run", "--no-ui", "--replay", str(btc_file), "--speed", "max"], env)
    try:
        p.wait_status("the engine", lambda s: s["engine"]["recovered"] is True)
        filler = fill(small_fs)  # the disk fills up
        assert p.cli("automation", "off").returncode == 0  # a write the disk refuses
        st = p.wait_status("reducing", lambda s: s["engine"]["trading_state"] == "reducing")
        assert st["engine"]["storage"]["ok"] is False and "full" in st["engine"]["trading_reason"]
        text = p.cli("status").stdout
        assert "REDUCING" in text and "STORAGE" in text and "full" in text
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "storage_ok 0.0" in metrics and 'storage_failing{store="state"} 1.0' in metrics
        assert '"msg":"storage failing"' in p.log()
        out = p.cli("resume")  # not ACTIVE while the writes fail: says why
        assert "trading reducing" in out.stdout and "storage" in out.stdout, out.stdout + out.stderr
        assert p.status()["engine"]["trading_state"] == "reducing"  # type: ignore[index]
        filler.unlink()  # space returns: the waiting writes go out, the engine stays REDUCING
        st = p.wait_status("storage ok", lambda s: s["engine"]["storage"]["ok"] is True)
        assert st["engine"]["trading_state"] == "reducing"
        out = p.cli("resume")
        assert out.returncode == 0 and "trading active" in out.stdout
    finally:
        code = p.stop()
    assert code == 0, p.log()[-2000:]
    assert '"msg":"storage writes again"' in p.log()
