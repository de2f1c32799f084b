"""The state of one intent's lifecycle: its phase and its orders (slots). Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from core.venue import OrderRequest


class Phase(StrEnum):
    NEW = "new"
    ENTRY = "entry"
    OPEN = "open"
    CLOSING = "closing"
    DONE = "done"
    KILLED = "killed"


Role = Literal["entry", "convert", "sl", "tp", "flat"]
SlotState = Literal["pending", "live", "done"]
After = Literal["replace", "convert", "giveup"]
TERMINAL = (Phase.DONE, Phase.KILLED)
MAX_CANCEL_TRIES = 3
MAX_MODIFY_FAILURES = 3


@dataclass
class Slot:
    """One order of this lifecycle, keyed by its client tag."""

    tag: str
    role: Role
    req: OrderRequest
    ts: int
    index: int = 0  # TP index / entry attempt
    order_id: str | None = None
    state: SlotState = "pending"
    status: str = "pending"
    filled_upd: float = 0.0
    fill_qty: float = 0.0
    fill_cost: float = 0.0
    fees: float = 0.0
    avg_upd: float = 0.0
    cancel_sent: bool = False
    cancel_tries: int = 0
    want_cancel: bool = False  # we asked for a cancel; retried until the venue confirms
    cancel_ts: int = 0
    modifying: bool = False
    pending_mod: tuple[float | None, float | None] = (None, None)  # (size, trigger) asked for
    modify_failures: int = 0

    @property
    def filled(self) -> float:
        return max(self.filled_upd, self.fill_qty)

    @property
    def cost(self) -> float:
        if self.fill_qty >= self.filled_upd:
            return self.fill_cost
        return self.fill_cost + (self.filled_upd - self.fill_qty) * self.avg_upd

    @property
    def active(self) -> bool:
        return self.state != "done"
