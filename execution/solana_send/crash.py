"""Kill points for the crash tests: ``AUTOTRADER_KILLPOINT=<name>`` makes the process SIGKILL itself
when it reaches the named point (``after_sign``: the signed transaction is journaled, not yet
broadcast; ``after_send``: the first broadcast was answered, nothing confirmed yet). Unset in
normal runs: one environment lookup per send."""

from __future__ import annotations

import os
import signal

ENV = "AUTOTRADER_KILLPOINT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
