"""Widgets of the main screen. They render what the app hands them and never subscribe or poll:
the app owns the state and calls :meth:`set` at most 4 times a second."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import Static

LEVEL_WORD = {"passing": "ok", "warning": "WARN", "breach": "BREACH", "stale": "STALE", "skipped": ""}


class Panel(Static):
    """A Static that only repaints when its content changed (``updates`` counts repaints)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._last: str | None = None
        self.updates = 0

    def set(self, content: Text | str) -> bool:
        key = content.plain + str(content.spans) if isinstance(content, Text) else content
        if key == self._last:
            return False
        self._last = key
        self.updates += 1
        self.update(content)
        return True


class Card(Panel):
    """One telemetry value with its guard level (the level is also written out, for NO_COLOR)."""

    def __init__(self, title: str, card_id: str) -> None:
        super().__init__("-", id=card_id, classes="card")
        self.border_title = title
        self.level = ""

    def show(self, value: str, level: str) -> None:
        if level != self.level:
            for lv in LEVEL_WORD:
                self.remove_class(f"-{lv}")
            if level:
                self.add_class(f"-{level}")
            self.level = level
        word = LEVEL_WORD.get(level, "")
        self.border_subtitle = word if word != "ok" else ""  # on the border: the value keeps its line
        self.set(value)


class Chart(Panel):
    """A chart drawn by ``draw(width, height)`` to fit the widget's content size."""

    def __init__(self, draw: Callable[[int, int], Text], **kwargs: object) -> None:
        super().__init__("", **kwargs)
        self.draw = draw

    def redraw(self) -> bool:
        w, h = self.content_size.width, self.content_size.height
        if w <= 0 or h <= 0:
            return False
        return self.set(self.draw(w, h))

    def on_resize(self) -> None:
        self.redraw()
