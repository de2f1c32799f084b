"""Fitting text into a terminal that may be 80×24 (pure): lines made of parts that drop by priority,
table columns that drop by priority, and words never cut in the middle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

ELLIPSIS = "…"


def clip_words(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut at a word boundary with ``…`` (a single word longer
    than the width is the only thing ever cut inside)."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    if width == 1:
        return ELLIPSIS
    head = text[: width - 1]
    while cell_len(head) > width - 1:
        head = head[:-1]
    if text[len(head)] == " " or head.endswith(" "):
        cut = head.rstrip()  # the head ends on a word boundary
    else:
        space = head.rfind(" ")
        cut = head[:space].rstrip() if space > 0 else head  # one long word: the only inside cut
    return cut + ELLIPSIS


@dataclass(frozen=True)
class Part:
    """A piece of a one-line bar: ``priority`` 0 is never dropped; higher numbers go first."""

    text: str
    style: str = ""
    priority: int = 0


def fit_line(parts: Sequence[Part], width: int) -> Text:
    """The parts that fit in ``width`` cells, in order: the highest priority numbers are dropped
    first (the later part first among equals); what still does not fit is clipped at a word."""
    keep = list(parts)
    order = sorted(range(len(keep)), key=lambda i: (-keep[i].priority, -i))
    dropped: set[int] = set()
    total = sum(cell_len(p.text) for p in keep)
    for i in order:
        if total <= width or keep[i].priority == 0:
            break
        dropped.add(i)
        total -= cell_len(keep[i].text)
    t = Text(no_wrap=True, overflow="crop")
    room = width
    for i, p in enumerate(keep):
        if i in dropped or room <= 0:
            continue
        piece = p.text if cell_len(p.text) <= room else clip_words(p.text, room)
        t.append(piece, style=p.style)
        room -= cell_len(piece)
    return t


def fit_columns(widths: Sequence[int], priority: Sequence[int], width: int, pad: int = 2) -> list[int]:
    """Indexes of the columns to show, in table order: each takes its content width plus ``pad``;
    the highest ``priority`` numbers are dropped first until the rest fits (priority 0 always
    stays, its content clipped by the caller)."""
    idx = list(range(len(widths)))
    total = sum(w + pad for w in widths)
    for i in sorted(idx, key=lambda j: (-priority[j], -j)):
        if total <= width or priority[i] == 0:
            break
        idx.remove(i)
        total -= widths[i] + pad
    return idx
