"""Feed liveness: a feed is live only while messages keep arriving within its max age."""

from __future__ import annotations

from core.models import FeedState


def feed_state(
    connected: bool, last_msg_ms: int | None, now_ms: int, max_age_s: float
) -> tuple[FeedState, float | None]:
    """State and age (seconds) of a feed. Connected but silent past ``max_age_s`` is ``stale``;
    connected with no message yet is ``connecting``; not connected is ``down``. Fails closed:
    anything uncertain is not ``live``."""
    if not connected:
        age = None if last_msg_ms is None else max(0.0, (now_ms - last_msg_ms) / 1000.0)
        return "down", age
    if last_msg_ms is None:
        return "connecting", None
    age = (now_ms - last_msg_ms) / 1000.0
    if age < 0:
        age = 0.0
    return ("live" if age <= max_age_s else "stale"), age
