"""Acceptance of market-data sanity on recordings made from the shared data: bad frames injected
by the test (prices 0, -150, NaN, 1e9, inf, 50 % off, size 0; a crossed stretch; a garbage depth
frame; a garbage line; bad Bybit marks and OI), replayed through the product's path.

* the guard report blocks during the crossed stretch and names it ("book crossed"), and during the
  resync a garbage frame caused ("resyncing"); elsewhere it is the report of the clean recording;
* the bars (and Bybit's funding/OI) equal those of the same recording with the bad frames removed;
* the counters equal the number of bad frames, per venue and kind.

A crossed book or a lost diff resyncs the book: live, that fetches a snapshot; here the test
injects the snapshot a live recording would hold (the clean book's state at that point).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zstandard

from autotrader.emit import bar_json
from core.book import BinanceBookSync
from core.bus import Bus, Topics
from core.clock import EventClock
from core.guard_config import GuardsConfig
from core.guard_monitor import GuardMonitor
from core.guards import GuardReport, allows_entry
from core.models import Bar, Funding, OpenInterest
from feeds.binance.codec import BinanceCodec
from feeds.pipeline import MarketPipeline, drive
from feeds.replay import open_recording
from feeds.replay_health import ReplayHealth
from tests.conftest import REPO_ROOT

PREFIX = 40_000  # lines of the BTCUSDT recording: ~3 minutes, 4 bars


@dataclass
class Injected:
    """A recording with bad frames, and where they are (indices into ``lines``)."""

    lines: list[bytes] = field(default_factory=list)
    origin: list[int | None] = field(default_factory=list)  # the clean line each line comes from
    stretches: list[tuple[int, int, str]] = field(default_factory=list)  # [start, end), what is named
    bad_trades: int = 0

    def add(self, line: bytes, origin: int | None) -> None:
        self.lines.append(line)
        self.origin.append(origin)


def _split(line: bytes) -> tuple[bytes, dict[str, Any]]:
    ns, _, frame = line.partition(b" ")
    return ns, json.loads(frame)


def _join(ns: bytes, obj: dict[str, Any]) -> bytes:
    return ns + b" " + json.dumps(obj, separators=(",", ":")).encode()


def _book_after(lines: list[bytes]) -> BinanceBookSync:
    """The clean book after ``lines`` (what a snapshot fetched then would hold)."""
    codec = BinanceCodec()
    for line in lines:
        ns, _, frame = line.partition(b" ")
        if frame.startswith(b'{"lastUpdateId"'):
            codec.feed_http("", frame, int(ns))
        else:
            codec.feed_ws(frame, int(ns))
    return codec.books["BTCUSDT"]


def _snapshot_line(clean: list[bytes], at: int) -> bytes:
    """A REST snapshot received just before clean line ``at`` (a depth diff): the clean book's
    levels then, and a lastUpdateId inside that diff's [U, u], so the diff bridges it."""
    sync = _book_after(clean[:at])
    ns, diff = _split(clean[at])
    body = {"lastUpdateId": diff["data"]["U"], "E": diff["data"]["E"], "T": diff["data"]["T"],
            "bids": [[repr(p), repr(q)] for p, q in sync.book.bids()],
            "asks": [[repr(p), repr(q)] for p, q in sync.book.asks()]}
    return _join(ns, body)


def inject(clean: list[bytes]) -> Injected:
    depth = [i for i, ln in enumerate(clean) if b'@depth' in ln[:70] and i > 54]  # after the snapshot
    trades = [i for i, ln in enumerate(clean) if b'@trade"' in ln[:70]]
    cross_at, cross_end = depth[1000], depth[1200]
    junk_at, junk_end = depth[2500], depth[2650]
    # minutes apart (a burst each, logged once), but the first two come together (one burst)
    at = [trades[len(trades) * k // 8] for k in range(1, 8)] + [trades[len(trades) // 8 + 1]]
    what = ("0", "-150", "NaN", "1e9", "Infinity", "x1.5", "qty0", "-0.0")
    bad_trade_after = dict(zip(at, what, strict=True))
    out = Injected()
    start: dict[str, int] = {}
    for i, line in enumerate(clean):
        if i == cross_end:
            out.add(_snapshot_line(clean, i), None)  # the stretch ends with the diff bridging it
            out.stretches.append((start["cross"], len(out.lines), "book crossed"))
        if i == junk_end:
            out.add(_snapshot_line(clean, i), None)
            out.stretches.append((start["junk"], len(out.lines), "resyncing (undecodable frame)"))
        if i == cross_at:  # a bid above every ask: the book crosses
            ns, obj = _split(line)
            best_ask = _book_after(clean[:i]).book.best_ask()
            assert best_ask is not None
            obj["data"]["b"].append([f"{best_ask[0] + 50.0:.1f}", "0.500"])
            start["cross"] = len(out.lines)
            out.add(_join(ns, obj), i)
            continue
        if i == junk_at:  # the diff arrives cut short: undecodable
            start["junk"] = len(out.lines)
            out.add(line[:90], i)
            continue
        out.add(line, i)
        if i == 20_000:
            out.add(b"garbage line without a receive time", None)
        if i in bad_trade_after:
            ns, obj = _split(line)
            what = bad_trade_after[i]
            if what == "qty0":
                obj["data"]["q"] = "0"
            elif what == "x1.5":
                obj["data"]["p"] = f"{float(obj['data']['p']) * 1.5:.2f}"
            else:
                obj["data"]["p"] = what
            out.add(_join(ns, obj), None)
            out.bad_trades += 1
    assert len(out.stretches) == 2 and out.bad_trades == 8
    return out


@pytest.fixture(scope="module")
def clean_lines(btc_file: Path) -> list[bytes]:
    with gzip.open(btc_file, "rb") as fh:
        return fh.read().split(b"\n")[:PREFIX]


@pytest.fixture(scope="module")
def recordings(clean_lines: list[bytes], tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[Path, Path, Injected]:
    d = tmp_path_factory.mktemp("bad-data")
    bad = inject(clean_lines)
    (d / "clean.txt").write_bytes(b"\n".join(clean_lines) + b"\n")
    (d / "bad.txt").write_bytes(b"\n".join(bad.lines) + b"\n")
    return d / "clean.txt", d / "bad.txt", bad


@dataclass
class Run:
    bars: list[dict[str, Any]]
    reports: dict[int, GuardReport]  # by line index of the recording
    pipeline: MarketPipeline
    bad_lines: int
    health: ReplayHealth


def replay(path: Path, report_at: set[int] | None = None) -> Run:
    """The replay path (as ``replay --emit guards`` and ``run --replay`` drive it), with the guard
    report the engine would read taken after the frames of the lines in ``report_at``."""
    bus = Bus()
    clock = EventClock()
    pipeline = MarketPipeline(bus, binance_symbol=None, clock=clock)
    bars: list[Bar] = []
    bus.on(Topics.BARS, bars.append)
    monitor = GuardMonitor(bus, GuardsConfig(), clock, "replay")
    health = ReplayHealth(pipeline, {"binance": 5.0, "bybit": 30.0, "okx": 60.0})
    reports: dict[int, GuardReport] = {}
    recording = open_recording(path)
    for frame in recording.frames():
        drive(pipeline, (frame,))
        health.maybe_publish(bus, clock.now_ms())
        if report_at is None or frame.line - 1 in report_at:
            report = monitor.latest
            if report is not None:
                reports[frame.line - 1] = report
    pipeline.flush()
    return Run([bar_json(b) for b in bars], reports, pipeline, recording.stats.bad_lines, health)


def _book_blocks(report: GuardReport) -> list[str]:
    return [b for b in report.blocks if "book crossed" in b or "resyncing" in b]


def test_bars_counters_and_guard_reports(recordings: tuple[Path, Path, Injected]) -> None:
    clean_path, bad_path, bad = recordings
    watch = set()
    for start, end, _ in bad.stretches:
        watch.update(range(start - 50, end + 50))
    watch.update(range(0, len(bad.lines), 97))
    got = replay(bad_path, watch)
    clean_watch = {o for i in watch if i < len(bad.origin) and (o := bad.origin[i]) is not None}
    want = replay(clean_path, clean_watch)

    # the bars equal the bars of the recording without the bad frames
    assert len(want.bars) >= 3
    assert got.bars == want.bars

    # the counters equal the number of bad frames, by venue and kind
    assert got.pipeline.dropped("binance") == {"trade": bad.bad_trades, "book": 1, "frame": 1}
    assert want.pipeline.dropped("binance") == {}
    assert got.bad_lines == 1 and want.bad_lines == 0
    status = next(s for s in got.health.statuses(0) if s.feed == "binance")
    assert status.dropped == {"trade": 8, "book": 1, "frame": 1}

    # the guard report blocks during each stretch and names it; elsewhere it is the clean one's
    inside = compared = 0
    for i, report in got.reports.items():
        stretch = next((s for s in bad.stretches if s[0] <= i < s[1]), None)
        if stretch is not None:
            inside += 1
            assert not allows_entry(report)
            assert any(stretch[2] in b for b in report.blocks), (i, report.blocks)
            continue
        assert _book_blocks(report) == [], (i, report.blocks)
        o = bad.origin[i]
        if o is not None and o in want.reports and o > 100:  # after the first book
            compared += 1
            a, b = report, want.reports[o]
            assert (a.status, [(c.name, c.level) for c in a.checks]) == (
                b.status, [(c.name, c.level) for c in b.checks]), i
    assert inside >= 200 and compared >= 300
    crossed = [r for i, r in got.reports.items() if bad.stretches[0][0] <= i < bad.stretches[0][1]]
    assert any(b.startswith("book crossed: best bid ") for b in crossed[0].blocks)  # named at once
    assert any(c.name == "input.book" and c.level == "stale" for c in crossed[-1].checks)


def test_replay_cli_bars_and_summary(recordings: tuple[Path, Path, Injected]) -> None:
    """End to end from the command line: the same bars on stdout, the drops in the summary."""
    clean_path, bad_path, bad = recordings
    env = {**os.environ, "AUTOTRADER__LOGGING__LEVEL": "INFO"}

    def run(path: Path) -> tuple[list[str], dict[str, Any], str]:
        out = subprocess.run([sys.executable, "-m", "autotrader", "replay", str(path), "--emit", "bars"],
                             capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines(), json.loads(out.stderr.strip().splitlines()[-1])["summary"], out.stderr

    clean_bars, clean_summary, _ = run(clean_path)
    bars, summary, stderr = run(bad_path)
    assert bars == clean_bars and len(bars) >= 3
    assert summary["dropped"] == {"binance": {"trade": bad.bad_trades, "book": 1, "frame": 1}}
    assert clean_summary["dropped"] == {}
    assert summary["recording"]["bad_lines"] == 1
    # logged once per burst: 8 bad trades in 7 bursts, one crossed top
    assert stderr.count("dropped a trade from binance") == 7
    assert stderr.count("dropped a book from binance") == 1


# ------------------------------------------------------------------ Bybit: marks and open interest
def test_bybit_funding_and_oi_equal_the_clean_recording(data_dir: Path, tmp_path: Path) -> None:
    raw = zstandard.ZstdDecompressor().stream_reader((data_dir / "cryptofeed" / "BYBIT.jsonl.zst").open("rb"))
    clean = raw.read().split(b"\n")
    deltas = [{"markPrice": "0"}, {"markPrice": "-5"}, {"markPrice": "250.000"}, {"indexPrice": "NaN0"},
              {"openInterest": "0"}, {"markPrice": "7.731"}]  # the last two: 0 OI; a tenth of the price
    bad: list[bytes] = []
    n = 0
    for line in clean:
        bad.append(line)
        if n < len(deltas) and b"tickers.SOLUSDT" in line and b'"t":"recv"' in line:
            rec = json.loads(line)
            frame = json.loads(rec["data"])
            if frame.get("type") != "delta":
                continue
            frame["data"] = {"symbol": "SOLUSDT", **deltas[n]}
            rec["data"] = json.dumps(frame)
            bad.append(json.dumps(rec).encode())
            n += 1
    assert n == len(deltas)
    (tmp_path / "clean.jsonl").write_bytes(b"\n".join(clean))
    (tmp_path / "bad.jsonl").write_bytes(b"\n".join(bad))

    def run(path: Path) -> tuple[list[Funding | OpenInterest], MarketPipeline]:
        bus = Bus()
        p = MarketPipeline(bus, binance_symbol=None, bybit_symbol="SOLUSDT")
        out: list[Funding | OpenInterest] = []
        bus.on(Topics.FUNDING, out.append)
        bus.on(Topics.OPEN_INTEREST, out.append)
        drive(p, open_recording(path).frames())
        return out, p

    want, clean_pipe = run(tmp_path / "clean.jsonl")
    got, pipe = run(tmp_path / "bad.jsonl")
    assert len(want) > 50 and got == want
    # "NaN0" does not parse: a malformed frame (as Bybit frames always were), the rest by kind
    assert pipe.dropped("bybit") == {"mark": 4, "oi": 1, "frame": 1}
    assert clean_pipe.dropped("bybit") == {}


def test_status_of_a_daemon_shows_the_drops(recordings: tuple[Path, Path, Injected]) -> None:
    """``autotrader status`` (--json and text) of a ``run --no-ui --replay`` daemon names them."""
    import tempfile

    from tests.test_daemon import Daemon

    _, bad_path, bad = recordings
    with tempfile.TemporaryDirectory(prefix="at-") as tmp:  # short: AF_UNIX paths are limited
        d = Daemon(Path(tmp), bad_path, "max")
        try:
            st = d.wait_for("the replay to end", lambda s: bool(s.get("replay_done")), timeout=120)
            assert st["feeds"]["binance"]["dropped"] == {"trade": bad.bad_trades, "book": 1, "frame": 1}
            text = d.cli("status")
            assert text.returncode == 0, text.stderr
            assert "  dropped    binance book 1, frame 1, trade 8" in text.stdout
        finally:
            assert d.stop() == 0
