"""What the demo session shows, read from its recording's header (``phases``, ``planned_signals``,
``start_ms``): the chapters to announce, where the warm-up ends, and the settings the session
needs.

The settings: the session is 45 minutes long, so ATR(5m) runs over 3 bars instead of 14 (the
signal arms after 15 minutes instead of 70). Every run on the session — ``demo``, ``run --replay``,
``backtest``, ``intent --replay`` — applies them the same way (one configuration; ``--set`` wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from feeds.demo.generator import LABEL

#: what the session needs besides the defaults (dotted config keys)
SESSION_SETTINGS: dict[str, Any] = {"guards.atr_period": 3}
#: how long before the first planned setup the fast-forwarded warm-up ends (event time)
LEAD_MS = 40_000

PHASE_TEXT = {
    "trend": "calm up-trend: VWAP, CVD and ATR(5m) warm up; nothing to trade yet",
    "chop": "chop around the VWAP: reclaims are set up; on one the signal emits an intent: a post-only "
            "entry, then its stop and take-profit ladder",
    "cascade": "liquidation cascade: the liqs card and the heatmap light up, the liquidation guard "
               "breaches and blocks entries until the window clears",
    "recovery": "recovery: the book refills; another reclaim is set up",
}
@dataclass(frozen=True)
class Chapter:
    start_ms: int
    name: str
    text: str
    setups: tuple[str, ...]  # "00:47" for each bar the script sets a reclaim up on (the signal decides)

    def line(self) -> str:
        when = datetime.fromtimestamp(self.start_ms / 1000, UTC).strftime("%H:%M")
        extra = f" (bars set up: {', '.join(self.setups)})" if self.setups else ""
        return f"{when} {self.text}{extra}"


def is_demo(header: Mapping[str, Any]) -> bool:
    return (bool(header.get("synthetic")) and header.get("label") == LABEL
            and header.get("generator") == "feeds.demo")


def session_settings(header: Mapping[str, Any]) -> dict[str, Any]:
    """The config overrides the recording's session needs ({} for any other recording)."""
    return dict(SESSION_SETTINGS) if is_demo(header) else {}


def chapters(header: Mapping[str, Any]) -> list[Chapter]:
    if not is_demo(header):
        return []
    start = int(header.get("start_ms") or 0)
    planned = [(int(s["minute"]), str(s["side"])) for s in header.get("planned_signals") or []]
    out: list[Chapter] = []
    for p in header.get("phases") or []:
        a, b, name = int(p["start_minute"]), int(p["end_minute"]), str(p["name"])
        setups = tuple(f"{side} {_hm(start + (m + 1) * 60_000)}" for m, side in planned if a <= m < b)
        out.append(Chapter(start + a * 60_000, name, PHASE_TEXT.get(name, name), setups))
    return out


def fast_forward_until(header: Mapping[str, Any]) -> int | None:
    """Event time up to which the demo replays as fast as it can (the warm-up): shortly before
    the first planned setup's bar closes. None for any other recording."""
    if not is_demo(header):
        return None
    planned = [int(s["minute"]) for s in header.get("planned_signals") or []]
    if not planned:
        return None
    return int(header.get("start_ms") or 0) + (min(planned) + 1) * 60_000 - LEAD_MS


def script_text(header: Mapping[str, Any], speed: float, fast_until: int | None) -> str:
    """What the session is about to show, for the terminal and the UI."""
    cs = chapters(header)
    if not cs:
        return ""
    minutes = int(header.get("minutes") or 0)
    lines = [f"synthetic demo: {minutes} minutes of a made-up SOL market, paper venue, automation on; "
             f"the session's settings: " + ", ".join(f"{k} = {v}" for k, v in SESSION_SETTINGS.items())]
    if fast_until is not None:
        lines.append(f"the warm-up until {_hm(fast_until)} is fast-forwarded; then {speed:g}× real time")
    lines += [f"  {c.line()}" for c in cs]
    return "\n".join(lines)


def _hm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M")
