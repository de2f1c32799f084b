"""A progress bar on stderr for long passes over recordings (replay, backtest)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def frame_progress(label: str, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """Yield ``update(frames_done)`` drawing a transient bar on stderr, or None when disabled."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=sys.stderr, force_terminal=True)  # asked for (a tty, or --progress)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} frames"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(n: int) -> None:
            bar.update(task, completed=n)

        yield update
