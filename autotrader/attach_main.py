"""``autotrader ui``: attach the terminal UI to the instance at the control socket, and detach.

Exit codes: 0 after detaching (the instance keeps running), 1 when no instance answers at start
(unless ``--wait``: then it waits for one). Logs go to ``<data dir>/autotrader-attach.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from autotrader.attach import RemoteSession
from autotrader.config import default_data_dir
from autotrader.control import ControlError, StreamConnection
from core.bus import Bus
from core.config_schema import Config
from core.ui_port import UiInfo
from tui.attached import AttachedApp
from tui.sync import QueueFeed


def run_attached(cfg: Config, path: Path, wait: bool = False, log_path: Path | None = None) -> int:
    from autotrader.ui_main import setup_file_logging

    setup_file_logging(cfg.logging.level, log_path or default_data_dir() / "autotrader-attach.log")

    async def main() -> int:
        feed = QueueFeed()
        session = RemoteSession(path, feed)
        conn: StreamConnection | None = None
        try:
            conn = await session.connect()
        except ControlError as exc:
            if not wait:
                print(f"autotrader ui: {exc}\n  start one with `autotrader run --no-ui` "
                      f"(or `autotrader ui --wait` to wait for it)", file=sys.stderr)
                return 1
            print(f"autotrader ui: {exc}; waiting for an instance…", file=sys.stderr)
        info = session.info or UiInfo(venue="?", cluster="?", label="waiting for the instance")
        app = AttachedApp(Bus(), session, info, session.guards or cfg.guards, keymap=dict(cfg.ui.keys),
                          tick_s=1.0 / cfg.ui.max_fps, feed=feed)
        link = asyncio.create_task(session.run(conn), name="ui-link")
        try:
            await app.run_async()
        finally:
            link.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await link
        who = f"pid {session.pid}" if session.pid else f"at {path}"
        print(f"autotrader ui: detached; the instance ({who}) keeps running — `autotrader ui` attaches "
              f"again, `autotrader kill` stops its trading", file=sys.stderr)
        return 0

    return asyncio.run(main())
