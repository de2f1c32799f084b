"""The demo says what it is about to show, fast-forwards its warm-up so the first intent comes
within a minute of wall time at speed 1, and declares the settings every run on it applies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from autotrader.backtest import Backtest
from autotrader.config import load_config
from autotrader.session import recording_header, session_defaults
from feeds.demo.script import LEAD_MS, chapters, fast_forward_until, script_text


def test_first_intent_within_a_minute_of_the_fast_forward(demo_recording: Path) -> None:
    header = recording_header(demo_recording)
    ff = fast_forward_until(header)
    assert ff is not None and ff > int(header["start_ms"])
    bt = Backtest(load_config(None, overrides=session_defaults(demo_recording, [])[0]), demo_recording)
    asyncio.run(bt.run())
    first = bt.signal.intents[0].ts
    # at speed 1 the event time after the fast-forward is wall time: the first intent ~40 s later
    assert 0 < first - ff <= 60_000 and first - ff == LEAD_MS


def test_the_script_names_every_part_of_the_session(demo_recording: Path) -> None:
    header = recording_header(demo_recording)
    cs = chapters(header)
    assert [c.name for c in cs] == [p["name"] for p in header["phases"]]
    text = script_text(header, 1.0, fast_forward_until(header))
    assert "fast-forwarded" in text and "guards.atr_period = 3" in text
    assert all(c.line() in text for c in cs)
    assert "liquidation cascade" in text and "00:22" in text  # the first bar set up, UTC


def test_session_settings_apply_to_the_demo_only_and_set_wins(demo_recording: Path, btc_file: Path) -> None:
    overrides, note = session_defaults(demo_recording, [])
    assert overrides == {"guards.atr_period": 3} and "guards.atr_period = 3" in note
    assert session_defaults(demo_recording, ["guards.atr_period=5"])[1] == ""  # --set wins: nothing said
    assert session_defaults(btc_file, []) == ({}, "")
    other = recording_header(btc_file)
    assert chapters(other) == [] and fast_forward_until(other) is None
