"""The terminal hangs up under the in-process UI (SSH dropped, tmux pane killed): the instance
leaves as on SIGHUP (what it leaves on the venue is recorded) and the process ends — it never
lingers holding the state lock. Textual's writer blocks for good once the terminal is gone, so
``autotrader.ui_main`` ends the process a grace period after the runtime has stopped."""

from __future__ import annotations

import fcntl
import os
import pty
import sqlite3
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from autotrader.ui_main import UI_EXIT_GRACE_S
from tests.conftest import REPO_ROOT


def _drain(fd: int) -> None:
    with_data = True
    while with_data:
        try:
            with_data = bool(os.read(fd, 65536))
        except (BlockingIOError, OSError):
            return


def _own_terminal() -> None:
    """In the child: a new session whose controlling terminal is the pty (as a login shell has)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.skipif(not hasattr(pty, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.xfail(sys.version_info >= (3, 12), strict=False, reason=(
    "known open: in one loaded CI run on Python 3.12.1 (both suites in parallel) the UI process was "
    "still running 55 s after the hangup; alone on 3.12 it ends in time, on 3.11 always: not understood"))
def test_the_ui_process_ends_when_its_terminal_hangs_up(tmp_path: Path, demo_recording: Path) -> None:
    state = tmp_path / "state.sqlite3"
    env = {**os.environ, "AUTOTRADER__CONTROL__SOCKET_PATH": str(tmp_path / "ctl.sock"),
           "AUTOTRADER__STORAGE__STATE_DB": str(state), "TERM": "xterm-256color",
           "COLUMNS": "120", "LINES": "40"}
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "autotrader", "run", "--replay", str(demo_recording), "--speed", "10"],
        stdin=slave, stdout=slave, stderr=slave, cwd=REPO_ROOT, env=env, preexec_fn=_own_terminal)
    os.close(slave)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (tmp_path / "ctl.sock").exists():
            assert proc.poll() is None, "the UI instance exited before it started"
            _drain(master)  # keep the terminal's output flowing, as a real terminal does
            time.sleep(0.2)
        assert (tmp_path / "ctl.sock").exists(), "the instance never started"
        for _ in range(10):  # a few seconds of a live UI
            _drain(master)
            time.sleep(0.3)
        os.close(master)  # the terminal hangs up: the kernel sends SIGHUP to the session
        master = -1
        proc.wait(timeout=UI_EXIT_GRACE_S + 45)
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    with sqlite3.connect(state) as db:  # the leaving was recorded before the process ended
        kinds = [k for (k,) in db.execute("SELECT kind FROM activity ORDER BY id")]
    assert "shutdown" in kinds, kinds[-5:]
