"""Day PnL for the daily stop, as % of start-of-day equity. Unknown (venue unreachable, equity
unreadable) is ``None``: preflight then fails closed.

Two sources:

* the position (paper): realized (net of fees, plus funding) since 00:00 UTC plus unrealized at the
  book mid;
* the venue's equity (``from_equity``, Drift): the account's value now against its value at the
  start of the UTC day — every market's PnL, funding and fees included.

The start-of-day equity is taken at the first reading of each UTC day and handed to ``on_roll``
(persisted per UTC day by the composition root; :meth:`DayPnl.restore` puts it back on restart).
"""

from __future__ import annotations

from collections.abc import Callable

from core.preflight import day_pnl_pct, realized_net
from core.venue import Position

DAY_MS = 86_400_000


class DayPnl:
    def __init__(
        self,
        start_equity: float,
        equity: Callable[[], float | None] | None = None,
        *,
        from_equity: bool = False,
        on_roll: Callable[[int, float], None] | None = None,
    ) -> None:
        self.start_equity = start_equity
        self.equity_fn = equity
        self.from_equity = from_equity and equity is not None
        self.on_roll = on_roll
        self.pct: float | None = None
        self._day: int | None = None
        self._baseline_net = 0.0

    def restore(self, day: int, start_equity: float) -> None:
        """The start-of-day equity recorded earlier today (a restart keeps the day's baseline)."""
        if start_equity > 0:
            self._day, self.start_equity = day, start_equity

    def update(self, now_ms: int, pos: Position | None, mark: float | None) -> float | None:
        """A new reading (``pos=None``: the venue could not say). Rolls the day at 00:00 UTC."""
        if pos is None:
            self.pct = None
            return None
        day = now_ms // DAY_MS
        eq = self.equity_fn() if self.equity_fn is not None else None
        if self._day is None or day != self._day:
            if self.from_equity and (eq is None or eq <= 0):
                self.pct = None  # cannot take the day's baseline: unknown until it can
                return None
            if eq is not None:
                self.start_equity = eq
            elif self._day is not None:
                self.start_equity *= 1 + (self.pct or 0.0) / 100
            self._day = day
            self._baseline_net = realized_net(pos)
            if self.on_roll is not None:
                self.on_roll(day, self.start_equity)
        if self.from_equity:
            self.pct = None if eq is None or self.start_equity <= 0 else (
                (eq - self.start_equity) / self.start_equity * 100.0)
            return self.pct
        self.pct = day_pnl_pct(pos, mark, self._baseline_net, self.start_equity)
        return self.pct
