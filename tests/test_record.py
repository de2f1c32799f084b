"""The recorder: a recording made against local servers replays to the same book; hourly files;
SIGKILL leaves readable files whose loss is within the flush window."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.bus import Bus, Topics
from core.models import BookTop
from feeds.pipeline import MarketPipeline, drive
from feeds.record import HourlyRecorder
from feeds.replay.readers import open_recording
from tests.conftest import REPO_ROOT
from tests.transport_harness import BookCheck, Harness, start_fake


async def test_recording_replays_to_the_same_book(tmp_path: Path) -> None:
    fx = await start_fake()
    rec = HourlyRecorder(tmp_path, flush_interval_s=0.2)
    try:
        h = Harness(fx, tap=rec)
        live_tops: list[BookTop] = []
        h.bus.on(Topics.BOOK, live_tops.append)
        async with h:
            await h.wait_live()
            await h.wait_matches(10)
            fx.drop("binance.public")  # a reconnect + resync inside the recording
            await h.wait_live()
            await h.wait_matches(10)
        rec.close()
    finally:
        await fx.stop()
    assert len(rec.files) == 1 and rec.errors == 0
    recording = open_recording(rec.files[0])
    assert recording.format == "autotrader" and recording.compression == "zstd"
    bus = Bus()
    pipe = MarketPipeline(bus, binance_symbol=h.cfg.market.binance_symbol,
                          bybit_symbol=h.cfg.market.bybit_symbol, okx_usdc_inst=h.cfg.market.okx_usdc_inst)
    check = BookCheck()
    replay_tops: list[BookTop] = []
    bus.on(Topics.BOOK, replay_tops.append)
    bus.on(Topics.BOOK, check.on_top)
    bus.on(Topics.BOOK_TICKER, check.on_ticker)
    drive(pipe, recording.frames())
    assert recording.stats.bad_lines == 0 and not recording.stats.truncated
    assert replay_tops == live_tops and len(live_tops) > 100
    assert check.matches >= 20 and check.mismatches == []
    kinds = {f.kind for f in recording.frames()}
    assert kinds == {"recv", "http", "send", "connect", "disconnect"}
    for venue in ("binance", "bybit", "okx"):
        assert pipe.codecs[venue].stats.as_dict() == h.pipeline.codecs[venue].stats.as_dict()


def test_hourly_rotation_each_file_readable(tmp_path: Path) -> None:
    rotations: list[int] = []
    rec = HourlyRecorder(tmp_path, flush_interval_s=10)
    rec.on_rotate = lambda: rotations.append(1)
    h0 = 1_790_000_000 * 10**9 // (3600 * 10**9) * 3600 * 10**9
    rec.connect("binance.public.1", "ws://127.0.0.1/x", h0 + 1)
    rec.recv("binance.public.1", '{"stream":"a"}', h0 + 2)
    rec.recv("binance.public.1", '{"stream":"b"}', h0 + 3600 * 10**9 + 5)  # next UTC hour
    rec.http("binance.http.0", "http://127.0.0.1/fapi/v1/depth?symbol=X", b"{}", h0 + 3600 * 10**9 + 6)
    rec.close()
    assert len(rec.files) == 2 and rotations == [1]
    assert rec.files[0].name.endswith("Z.jsonl.zst") and rec.files[0].name != rec.files[1].name
    counts = [sum(1 for _ in open_recording(p).frames()) for p in rec.files]
    assert counts == [2, 2]
    again = HourlyRecorder(tmp_path)  # a restart within the hour never appends to an old file
    again.recv("c", "x", h0 + 7)
    again.close()
    assert again.files[0] not in rec.files


_CHILD = """
import asyncio, json, os, sys
from autotrader.config import validate
from feeds.record import run_record
cfg = validate(json.loads(os.environ["REC_CFG"]))
asyncio.run(run_record(cfg, sys.argv[1], flush_interval_s=float(sys.argv[2])))
"""


async def test_sigkill_during_recording_loses_at_most_the_flush_window(tmp_path: Path) -> None:
    fx = await start_fake(rate=2000.0)
    fx.sent_log = []
    window = 0.5
    env = dict(os.environ, REC_CFG=json.dumps(fx.config_tree()), PYTHONPATH=str(REPO_ROOT))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _CHILD, str(tmp_path), str(window),
                                                env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while fx.sent.get("binance.public", 0) < 3000 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        killed_ns = time.time_ns()
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
        await fx.stop()
    files = sorted(tmp_path.iterdir())
    assert files, "nothing recorded"
    recorded: set[str] = set()
    for p in files:
        r = open_recording(p)  # readable: header intact
        for f in r.frames():
            if f.kind == "recv":
                recorded.add(f.data.decode())
        assert r.stats.bad_lines == 0
    sent = fx.sent_log
    assert sent
    # allow the window, plus a little for the write path and kill delivery
    cutoff = killed_ns - int((window + 0.3) * 1e9)
    missing = [t for ns, stream, t in sent
               if ns < cutoff and stream.startswith("binance") and t not in recorded]
    assert missing == [], f"{len(missing)} frames sent before the loss window are missing"
    assert len(recorded) > 1000
