"""``autotrader ui``: the main screen over a running instance, attached through its control socket.

Same widgets, same bindings, same dialogs as the UI started with the instance; the differences
are what leaving means (``q`` detaches at once: nothing changes in the instance, so there is
nothing to confirm) and the link's state in the top bar (``LINK LOST`` while it reconnects).
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from tui.app import TraderApp


def _bindings() -> list[BindingType]:
    out: list[BindingType] = []
    for b in TraderApp.BINDINGS:
        if isinstance(b, Binding) and b.id == "quit":
            out.append(Binding(b.key, "quit", "detach", id="quit"))
        else:
            out.append(b)
    return out


class AttachedApp(TraderApp):
    BINDINGS: ClassVar[list[BindingType]] = _bindings()
    KILL_HINT = " — `autotrader kill` in a shell works without the instance"

    async def action_quit(self) -> None:
        """Detach: the instance keeps trading; the terminal says so once the screen is gone."""
        self.exit()
