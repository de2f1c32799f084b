"""The Drift account's delegation in plain lines: ``autotrader delegate status`` and the UI's
delegation panel say it the same way (the dict is :func:`autotrader.delegation_ops.delegate_action`'s)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def _when(ms: object) -> str:
    if not isinstance(ms, int) or ms <= 0:
        return "not recorded (set outside this app)"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def delegation_lines(st: Mapping[str, Any]) -> list[str]:
    delegate = st.get("delegate")
    lines = [f"delegate   {delegate or 'none (only the owner can trade)'}"]
    if delegate:
        lines += [f"set at     {_when(st.get('set_at_ms'))}", f"TTL        {st.get('ttl') or '-'}"]
    lines += [f"owner      {st.get('authority', '-')}", f"account    {st.get('user', '-')}"]
    return lines
