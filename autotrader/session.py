"""Settings a recording's session declares (the demo: ATR over 3 five-minute bars), applied the same
way by every command that replays it — ``demo``, ``run --replay``, ``backtest``, ``intent
--replay`` — so the backtest and the runtime on that data share one configuration. ``--set`` wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feeds.demo.script import session_settings
from feeds.replay import RecordingError, open_recording


def recording_header(path: Path) -> dict[str, Any]:
    """The recording's header ({} when it has none or cannot be read: the replay says why)."""
    try:
        return dict(open_recording(path).header or {})
    except (RecordingError, OSError):
        return {}


def session_defaults(path: Path, sets: list[str] | None) -> tuple[dict[str, Any], str]:
    """(config overrides, the note to print) for a run on ``path``."""
    wanted = session_settings(recording_header(path))
    overridden = {s.split("=", 1)[0].strip() for s in sets or []}
    shown = {k: v for k, v in wanted.items() if k not in overridden}
    if not shown:
        return wanted, ""
    what = ", ".join(f"{k} = {v}" for k, v in shown.items())
    return wanted, (f"the {path.name} session sets {what} (it is too short for the defaults); "
                    f"--set to change")
