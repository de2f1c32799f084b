"""Engine vocabulary (pure data): the ``engine`` settings, the events it publishes, the actions a
lifecycle asks the engine to execute and the inputs it consumes. See :mod:`core.lifecycle`."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from core.bus import Topic
from core.guards import GuardReport
from core.venue import Fill, Order, OrderRequest


class TradingState(StrEnum):
    """The engine's trading state (``ACTIVE`` → ``REDUCING`` on a storage fault → ``HALTED`` on a kill)."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


# --------------------------------------------------------------------------- config


#: EngineConfig fields owned by other config sections (one source of truth): the composition
#: root copies them in (``core.config_schema.engine_config``) and ``[engine]`` refuses them.
OWNED_ELSEWHERE: dict[str, str] = {
    "max_leverage": "guards.max_leverage",
    "risk_per_trade_pct": "risk.risk_per_trade_pct",
    "daily_stop_pct": "guards.daily_stop.max_loss_pct",
    "atr_period": "guards.atr_period",
    "atr_bar_minutes": "guards.atr_bar_minutes",
    "equity_usd": "paper.equity_usd",
    "market": "signal.market",
    "cancel_on_exit": 'engine.on_exit = "cancel_all"',  # replaced by on_exit (issue 15)
}


# ranges the config enforces when it is read (and __post_init__ when built in code); see
# docs/CONFIGURATION.md
_Bps = Annotated[float, msgspec.Meta(gt=0, le=10_000)]
_Secs = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
_PosSecs = Annotated[float, msgspec.Meta(gt=0, le=3600)]
_Backoff = Annotated[float, msgspec.Meta(ge=0, le=3600)]
_Count = Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class EngineConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Execution engine settings (the ``engine`` config section; see :data:`OWNED_ELSEWHERE`)."""

    venue: Literal["paper", "drift", "velocity"] = "paper"
    #: automation (signal intents) at start: ``auto`` = on for the paper venue, off for Drift
    automation: Literal["on", "off", "auto"] = "auto"
    #: venue orders no journal entry explains, found at start: left alone (and reported) or cancelled
    orphans: Literal["adopt", "cancel"] = "cancel"
    #: leaving (quit, SIGTERM, SIGHUP): ``keep_protection`` cancels the resting entries and keeps the
    #: reduce-only stop and take-profits on the venue; ``cancel_all`` cancels every order (an open
    #: position is then left without a stop); ``flatten`` cancels everything and closes the position
    on_exit: Literal["keep_protection", "cancel_all", "flatten"] = "keep_protection"
    market: str = "SOL-PERP"
    equity_usd: float = 10_000.0  # start-of-day equity when the venue does not say otherwise
    drift_tolerance_bps: _Bps = 5.0  # entry re-placed only when the touch moved more than this
    replace_timeout_s: _Secs = 10.0  # an entry attempt rests at least this long before a replace
    entry_ttl_s: _Secs = 60.0  # total time an entry may rest before it is given up
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=2)] = 2  # entry orders per intent, replaces included
    market_convert: bool = False  # after the last attempt, take the rest at market (guards permitting)
    flatten_on_kill: bool = False
    guard_max_age_s: _Secs = 5.0
    max_leverage: float = 5.0
    risk_per_trade_pct: float = 0.5
    #: fraction over the risk budget accepted (rounding)
    risk_tolerance: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.05
    daily_stop_pct: float = 3.0
    #: micro-lamports per CU (0 = no cap): Drift transactions never bid more, and an entry is refused
    #: while the network's recent fees are above it (they would not land in time)
    priority_fee_cap: Annotated[float, msgspec.Meta(ge=0, le=1e9)] = 200_000.0
    taker_fee_bps: Annotated[float, msgspec.Meta(ge=0, le=100)] = 3.5  # exit fee assumed for breakeven
    breakeven_buffer_bps: Annotated[float, msgspec.Meta(ge=0, le=1000)] = 1.0
    trail_atr_mult: Annotated[float, msgspec.Meta(gt=0, le=100)] = 1.5
    atr_period: int = 14
    atr_bar_minutes: int = 5
    call_retries: _Count = 3  # attempts for a retryable venue error / timeout
    retry_backoff_s: _Backoff = 0.2
    call_timeout_s: _PosSecs = 5.0
    kill_max_tries: _Count = 50
    kill_backoff_s: _Backoff = 0.2
    kill_backoff_max_s: _PosSecs = 5.0
    poll_interval_s: _PosSecs = 0.25
    pnl_check_interval_s: _Backoff = 1.0  # daily-stop evaluation cadence

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 2:
            raise ValueError(f"max_attempts: must be 1 or 2, got {self.max_attempts}")
        for name in ("drift_tolerance_bps", "replace_timeout_s", "entry_ttl_s", "guard_max_age_s",
                     "max_leverage", "risk_per_trade_pct", "daily_stop_pct", "trail_atr_mult",
                     "equity_usd"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be a positive number, got {v}")
        for name in ("risk_tolerance", "priority_fee_cap", "taker_fee_bps", "breakeven_buffer_bps",
                     "retry_backoff_s", "kill_backoff_s", "pnl_check_interval_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name}: must be a number >= 0, got {v}")
        for name in ("call_timeout_s", "kill_backoff_max_s", "poll_interval_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be a positive number, got {v}")
        for name in ("call_retries", "kill_max_tries", "atr_period", "atr_bar_minutes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")


# --------------------------------------------------------------------------- events


class EngineEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One transition, published on ``engine:events`` and written to the activity log.

    ``kind`` is one of :data:`EVENT_KINDS`; ``intent_id`` is empty for engine-wide events."""

    kind: str
    intent_id: str
    ts: int
    data: dict[str, Any] = msgspec.field(default_factory=dict)


EVENT_KINDS = (
    "intent_accepted", "intent_rejected", "intent_done",
    "order_submitted", "order_rejected", "order_partially_filled", "order_filled",
    "order_cancelled", "order_replaced", "market_convert", "entry_abandoned",
    "sl_placed", "tp_placed", "sl_moved", "trail_moved", "tp_hit", "sl_hit",
    "guard_block", "flatten", "halt", "kill_switch", "automation", "trading_state", "error",
    "reconcile", "orphan_adopted", "orphan_cancelled", "order_missing", "venue_status",
    "signal_vetoed", "order_unknown", "order_resolved", "delegation",
)
ENGINE_EVENTS = Topic("engine:events", EngineEvent)


# --------------------------------------------------------------------------- actions


class Place(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    req: OrderRequest


class Cancel(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    order_id: str
    tag_: str = ""


class Modify(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    order_id: str
    tag_: str
    size: float | None = None
    trigger_price: float | None = None
    price: float | None = None


class CancelAndPlace(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    cancel_ids: tuple[str, ...]
    reqs: tuple[OrderRequest, ...]


class Flatten(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Cancel ``cancel_ids`` and close the position at market (reduce-only); answer with
    :class:`Flattened`."""

    intent_id: str
    reason: str
    cancel_ids: tuple[str, ...] = ()


class Halt(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Stop automation (the engine runs its kill switch with this reason)."""

    reason: str


Action = Place | Cancel | Modify | CancelAndPlace | Flatten | Halt


# --------------------------------------------------------------------------- inputs


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """Time passes. ``guard`` is the latest guard report (None = none yet); ``atr`` with
    ``new_bar=True`` marks a newly closed ATR bar (5m)."""

    ts: int
    bid: float | None = None
    ask: float | None = None
    guard: GuardReport | None = None
    atr: float | None = None
    new_bar: bool = False


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    tag: str
    order: Order


class PlaceFailed(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    tag: str
    reason: str


class Modified(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    tag: str
    order: Order


class ModifyFailed(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    tag: str
    reason: str


class CancelFailed(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    tag: str
    reason: str


class OrderChanged(msgspec.Struct, frozen=True, kw_only=True):
    """A venue :class:`~core.venue.OrderUpdate`."""

    ts: int
    order: Order
    reason: str = ""


class Filled(msgspec.Struct, frozen=True, kw_only=True):
    """A venue :class:`~core.venue.FillEvent`."""

    fill: Fill


class Flattened(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    ok: bool
    reason: str = ""


class Kill(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    reason: str


Input = Tick | Accepted | PlaceFailed | Modified | ModifyFailed | CancelFailed | OrderChanged | Filled \
    | Flattened | Kill


class Step(msgspec.Struct, kw_only=True):
    actions: list[Action] = msgspec.field(default_factory=list)
    events: list[EngineEvent] = msgspec.field(default_factory=list)
