"""Day PnL for the daily stop: realized (net of fees, plus funding) since 00:00 UTC plus unrealized at
the book mid, as % of start-of-day equity. Unknown (venue unreachable) is ``None``: preflight then
fails closed."""

from __future__ import annotations

from collections.abc import Callable

from core.preflight import day_pnl_pct, realized_net
from core.venue import Position

DAY_MS = 86_400_000


class DayPnl:
    def __init__(self, start_equity: float, equity: Callable[[], float] | None = None) -> None:
        self.start_equity = start_equity
        self.equity_fn = equity
        self.pct: float | None = None
        self._day: int | None = None
        self._baseline_net = 0.0

    def update(self, now_ms: int, pos: Position | None, mark: float | None) -> float | None:
        """A new reading (``pos=None``: the venue could not say). Rolls the day at 00:00 UTC."""
        if pos is None:
            self.pct = None
            return None
        day = now_ms // DAY_MS
        if self._day is None or day != self._day:
            if self.equity_fn is not None:
                self.start_equity = self.equity_fn()
            elif self._day is not None:
                self.start_equity *= 1 + (self.pct or 0.0) / 100
            self._day = day
            self._baseline_net = realized_net(pos)
        self.pct = day_pnl_pct(pos, mark, self._baseline_net, self.start_equity)
        return self.pct
