"""Trade intents: what a signal (or a manual order) asks the engine to do (published on
``engine:intents``), and the signal's regime flag."""

from __future__ import annotations

from typing import Literal

import msgspec

from core.bus import Topic

IntentSide = Literal["buy", "sell"]


class Intent(msgspec.Struct, frozen=True, kw_only=True):
    """A post-only entry with its stop and take-profit ladder.

    ``id`` is deterministic (same bar and side → same id) so a restart never submits an intent
    twice. ``price`` is the touch (best bid for a buy, best ask for a sell). ``size`` is in base
    units. ``tps`` holds ``(price, fraction of size)`` pairs whose fractions sum to 1.
    """

    id: str
    ts: int
    symbol: str
    side: IntentSide
    price: float
    size: float
    sl: float
    tps: tuple[tuple[float, float], ...]
    leverage: float
    reason: str
    source: Literal["signal", "manual"] = "signal"
    post_only: bool = True
    atr: float = 0.0
    risk_usd: float = 0.0


class Veto(msgspec.Struct, frozen=True, kw_only=True):
    """One reason a detected setup produced no intent: a guard check (``guard`` is the check's
    name, e.g. ``funding``, ``input.book``) with its value and threshold, or the signal's own
    condition (``warm-up``, ``report age``, ``book``, ``equity``, ``size``, ``disabled``)."""

    guard: str
    value: float | None = None
    threshold: float | None = None
    level: str = ""
    reason: str = ""


class SignalVeto(msgspec.Struct, frozen=True, kw_only=True):
    """A setup the signal detected on a closed bar and did not turn into an intent, and why."""

    id: str  # the intent id it would have had
    ts: int  # the bar's end (event time)
    side: IntentSide
    bar_ts: int
    vetoes: tuple[Veto, ...]

    @property
    def guard_vetoed(self) -> bool:
        """Vetoed by the guards (not by the signal's own warm-up or book checks)."""
        return any(v.level in ("warning", "breach", "stale") for v in self.vetoes)

    def summary(self) -> str:
        return "; ".join(v.reason or v.guard for v in self.vetoes)


class Regime(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the signal is armed (``on``) and why not when it is off."""

    ts: int
    on: bool
    reason: str


INTENTS = Topic("engine:intents", Intent)
REGIME = Topic("engine:regime", Regime)
