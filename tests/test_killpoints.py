"""Kill the process at every journal step of a full lifecycle on the paper venue over the demo
session, restart it, and check (harness: :mod:`tests.killpoints`): never a position without a stop,
no order twice, breakeven after TP1, the activity log intact, the lifecycle completed."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.killpoints import KILLED, Tape, activity_rows, record_tape, run_once, violations

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork") or sys.platform != "linux",
                                reason="the harness forks a child per run (Linux)")

LIFECYCLE = ["intent_accepted", "order_submitted", "sl_placed", "order_filled", "tp_placed", "tp_hit",
             "sl_moved", "trail_moved", "intent_done"]


@pytest.fixture(scope="module")
def tape(demo_recording: Path) -> Tape:
    return record_tape(demo_recording)


def _summary(work: Path) -> dict[str, object]:
    return dict(json.loads((work / "summary.json").read_text()))


def _crash_detail(work: Path) -> str:
    p = work / "crash.txt"
    return p.read_text() if p.exists() else ""


@pytest.fixture
def work_root(tmp_path: Path) -> Iterator[Path]:
    """The runs' state directories, on tmpfs where there is one: the harness kills processes, it does
    not cut the power, so an fsync that costs milliseconds on a shared disk buys nothing here."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(prefix="autotrader-killpoints-", dir=shm) as d:
            yield Path(d)
    else:
        yield tmp_path


def test_kill_at_every_journal_step_then_restart(tape: Tape, work_root: Path) -> None:
    tmp_path = work_root
    ref = tmp_path / "reference"
    assert run_once(tape, ref, None) == 0, _crash_detail(ref)
    summary = _summary(ref)
    kinds = summary["kinds"]
    assert isinstance(kinds, list) and all(k in kinds for k in LIFECYCLE), kinds  # a full lifecycle
    assert violations(ref) == []
    steps = summary["writes"]
    assert isinstance(steps, int) and steps > 20
    failures: list[str] = []
    for n in range(1, steps + 1):
        work = tmp_path / f"kill-{n:03d}"
        code = run_once(tape, work, n)
        assert code == KILLED, f"kill point {n}: exit {code} {_crash_detail(work)}"
        before = activity_rows(work)
        code = run_once(tape, work, None)
        assert code == 0, f"restart after kill point {n}: exit {code} {_crash_detail(work)}"
        after = activity_rows(work)
        found = violations(work)
        s = _summary(work)
        if found:
            failures.append(f"kill point {n}: {found[:3]}")
        if after[: len(before)] != before:
            failures.append(f"kill point {n}: the activity log lost or changed rows written before the kill")
        if s["position"] != 0 or s["open_orders"] != 0:
            failures.append(f"kill point {n}: ended with position {s['position']}, {s['open_orders']} orders")
        shutil.rmtree(work)
    assert not failures, "\n".join(failures)
