"""``autotrader run`` / ``autotrader demo`` with the terminal UI: the runtime and the Textual app on
one asyncio loop. Logs go to a file (stderr belongs to the screen); quitting the app stops the
runtime the same way SIGTERM does, and a runtime that stops (or cannot start) closes the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from autotrader.config import default_data_dir
from autotrader.logs import JsonFormatter, log_event
from autotrader.runtime import Runtime
from autotrader.state_claim import StateLockError, claim_state
from autotrader.trading import VenueUnavailable
from autotrader.ui_bridge import open_settings, ui_info
from core.config_schema import Config
from core.exit_policy import exit_summary
from storage.private_files import open_private
from tui.app import TraderApp


def setup_file_logging(level: str, path: Path) -> logging.Logger:
    """JSON lines into ``path``, 0600 in a 0700 directory (secrets masked like every log line)."""
    root = logging.getLogger()
    root.handlers.clear()
    open_private(path, "a").close()  # 0600 in a 0700 directory before the handler appends to it
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.Formatter.converter = time.gmtime
    return logging.getLogger("autotrader")


def run_with_ui(
    cfg: Config,
    replay_path: Path | None,
    speed: float,
    store_root: Path | None,
    state_db: Path,
    control_path: Path | None,
    label: str = "",
    log_path: Path | None = None,
    fresh: bool = False,
    fast_forward: bool = False,
    chapters: Sequence[tuple[int, str]] = (),
) -> int:
    """``fresh``: wipe the state database first (the demo), once its lock is held; ``fast_forward``
    and ``chapters``: the demo's warm-up as fast as possible and its script, announced as it comes."""
    try:
        lock = claim_state(state_db, fresh=fresh)  # before anything reads, wipes or writes state
    except StateLockError as exc:
        print(f"autotrader: {exc}", file=sys.stderr)
        return 2
    try:
        return _run_with_ui(cfg, replay_path, speed, store_root, state_db, control_path, label, log_path,
                            fast_forward, chapters)
    finally:
        lock.release()


UI_EXIT_GRACE_S = 10.0


def _exit_if_the_ui_hangs(rt_task: asyncio.Task[int]) -> None:
    """The runtime has stopped (its leaving is done and recorded); if the UI cannot close — Textual's
    writer blocks for good once the terminal has hung up (SSH dropped, tmux pane killed) — end the
    process anyway, so it never lingers holding the state lock."""
    code = 1 if rt_task.cancelled() or rt_task.exception() is not None else (rt_task.result() or 0)

    def force() -> None:
        os._exit(code)  # no logging here: its lock may be held by the blocked thread ("stopped" is logged)

    timer = threading.Timer(UI_EXIT_GRACE_S, force)
    timer.daemon = True  # a normal exit never waits for it
    timer.start()


def _run_with_ui(cfg: Config, replay_path: Path | None, speed: float, store_root: Path | None,
                 state_db: Path, control_path: Path | None, label: str, log_path: Path | None,
                 fast_forward: bool = False, chapters: Sequence[tuple[int, str]] = ()) -> int:
    log_file = log_path or default_data_dir() / "autotrader-ui.log"
    logger = setup_file_logging(cfg.logging.level, log_file)
    cfg, store, note = open_settings(cfg, state_db)
    if note:
        log_event(logger, note, logging.WARNING)

    async def main() -> int:
        try:
            runtime = Runtime(cfg, replay_path, speed, logger, store_root, state_db=state_db,
                              control_path=control_path, settings_store=store, fast_forward=fast_forward)
        except VenueUnavailable as exc:
            print(f"cannot start: {exc}", file=sys.stderr)
            return 2
        app = TraderApp(runtime.bus, runtime.ui_commands, ui_info(cfg, label, chapters), cfg.guards,
                        keymap=dict(cfg.ui.keys), tick_s=1.0 / cfg.ui.max_fps)
        rt_task = asyncio.create_task(runtime.run(), name="runtime")
        started = asyncio.create_task(runtime.started.wait())
        await asyncio.wait({rt_task, started}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if rt_task.done():  # it could not start: say why on the terminal, never show a dead UI
            why = runtime.start_error or f"see {log_file}"
            print(f"autotrader: cannot start: {why}", file=sys.stderr)
            return rt_task.result() or 2
        ui_returned = False

        def runtime_done(_t: asyncio.Task[int]) -> None:
            app.exit()
            if not ui_returned:  # the runtime stopped first (SIGHUP, SIGTERM, an error)
                _exit_if_the_ui_hangs(_t)

        rt_task.add_done_callback(runtime_done)
        try:
            await app.run_async()
            ui_returned = True
        finally:
            runtime.stop_event.set()
            with contextlib.suppress(asyncio.CancelledError):
                code = await rt_task
        if code:
            print(f"autotrader stopped with exit code {code}; see {log_file}", file=sys.stderr)
        report = runtime.leave_report
        if report is not None:  # what stays on the venue, said on the terminal once the UI is gone
            print("autotrader: " + exit_summary(report.mode, report.cancelled, report.kept, report.position),
                  file=sys.stderr)
        return code

    try:
        return asyncio.run(main())
    finally:
        if store is not None:
            store.close()
