"""What the terminal UI needs from the rest of the app (pure: types, validation, a Protocol).

The UI (``tui/``) receives market and engine state on the bus and sends its commands through
:class:`UiCommands`, which the composition root implements over the runtime (reusing the control
socket's code paths). Operator settings edited in the UI are validated here, so the UI shows the
same errors the runtime would raise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import msgspec

from core.engine_types import EngineEvent
from core.guard_config import MAX_RISK_PER_TRADE_PCT, GuardsConfig
from core.guards import GuardReport
from core.liqmap_map import LIQ_MAP, LiqMap

__all__ = ["LIQ_MAP", "LiqMap"]  # re-exported for tui/ (the topic the heatmap's clusters come from)

Cluster = tuple[float, float]  # (price USD, notional USD)


def clusters_from(m: LiqMap) -> list[Cluster]:
    """(price, notional) per 25 bps cluster of a liq map (mid of the bucket, USD at liquidation)."""
    return [
        (c.price_mid, c.notional_usd)
        for c in m.clusters
        if math.isfinite(c.price_mid) and c.price_mid > 0 and math.isfinite(c.notional_usd)
    ]


# --------------------------------------------------------------------------- settings


class UiSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Operator settings editable in the UI (persisted by the composition root).

    ``leverage`` is the sizing cap of the signal (``risk.leverage``), at most
    ``guards.max_leverage``; ``risk_per_trade_pct`` is ``risk.risk_per_trade_pct``;
    ``priority_fee_cap`` is ``engine.priority_fee_cap`` (micro-lamports per CU, 0 = no cap);
    ``daily_stop_pct`` is ``guards.daily_stop.max_loss_pct``."""

    leverage: float
    risk_per_trade_pct: float
    priority_fee_cap: float
    daily_stop_pct: float


SETTING_FIELDS: tuple[str, ...] = ("leverage", "risk_per_trade_pct", "priority_fee_cap", "daily_stop_pct")
SETTING_LABELS: dict[str, str] = {
    "leverage": "leverage",
    "risk_per_trade_pct": "risk per trade",
    "priority_fee_cap": "priority-fee cap",
    "daily_stop_pct": "daily stop",
}
SETTING_UNITS: dict[str, str] = {
    "leverage": "× (at most guards.max_leverage)",
    "risk_per_trade_pct": "% of equity",
    "priority_fee_cap": "µlamports/CU (0 = no cap)",
    "daily_stop_pct": "% loss in a day",
}


def validate_settings(
    raw: Mapping[str, str], max_leverage: float
) -> tuple[UiSettings | None, dict[str, str]]:
    """Parse the form's text fields; returns the settings, or None and one error per bad field."""
    errors: dict[str, str] = {}
    vals: dict[str, float] = {}
    for name in SETTING_FIELDS:
        text = str(raw.get(name, "")).strip()
        try:
            v = float(text)
        except ValueError:
            errors[name] = f"not a number: {text!r}" if text else "required"
            continue
        if not math.isfinite(v):
            errors[name] = "must be a finite number"
            continue
        vals[name] = v
    lev = vals.get("leverage")
    if lev is not None and not 1 <= lev <= max_leverage:
        errors["leverage"] = f"must be >= 1 and <= {max_leverage:g} (guards.max_leverage)"
    risk = vals.get("risk_per_trade_pct")
    if risk is not None and not 0 < risk <= MAX_RISK_PER_TRADE_PCT:
        errors["risk_per_trade_pct"] = f"must be > 0 and <= {MAX_RISK_PER_TRADE_PCT:g}"
    fee = vals.get("priority_fee_cap")
    if fee is not None and fee < 0:
        errors["priority_fee_cap"] = "must be >= 0 (0 = no cap)"
    stop = vals.get("daily_stop_pct")
    if stop is not None and not 0 < stop <= 100:
        errors["daily_stop_pct"] = "must be > 0 and <= 100"
    if errors:
        return None, errors
    return UiSettings(**vals), {}


# --------------------------------------------------------------------------- manual orders


class ManualOrder(msgspec.Struct, frozen=True, kw_only=True):
    """The order form: ``price`` None = the touch; ``tps`` = take-profit prices (split by
    ``risk.tp_split`` when the counts match, else evenly)."""

    side: Literal["buy", "sell"]
    size: float
    sl: float
    price: float | None = None
    tps: tuple[float, ...] = ()


class OrderVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine would say now: ``ok`` with no reasons, or the reasons it would refuse."""

    ok: bool
    reasons: list[str]
    price: float | None = None
    guard_status: str = ""


def parse_order_form(raw: Mapping[str, str]) -> tuple[ManualOrder | None, dict[str, str]]:
    """The form's text fields to a :class:`ManualOrder`; errors by field (side, price, size, sl, tps)."""
    errors: dict[str, str] = {}
    side = str(raw.get("side", "")).strip().lower()
    if side not in ("buy", "sell"):
        errors["side"] = "buy or sell"

    def num(name: str, required: bool) -> float | None:
        text = str(raw.get(name, "")).strip()
        if not text:
            if required:
                errors[name] = "required"
            return None
        try:
            v = float(text)
        except ValueError:
            errors[name] = f"not a number: {text!r}"
            return None
        if not (math.isfinite(v) and v > 0):
            errors[name] = "must be a positive number"
            return None
        return v

    price = num("price", False)
    size = num("size", True)
    sl = num("sl", True)
    tps: list[float] = []
    for part in str(raw.get("tps", "")).replace(",", " ").split():
        try:
            v = float(part)
        except ValueError:
            errors["tps"] = f"not a number: {part!r}"
            break
        if not (math.isfinite(v) and v > 0):
            errors["tps"] = "take-profits must be positive numbers"
            break
        tps.append(v)
    if errors or size is None or sl is None:
        return None, errors
    s: Literal["buy", "sell"] = "buy" if side == "buy" else "sell"
    return ManualOrder(side=s, size=size, sl=sl, price=price, tps=tuple(tps)), {}


# --------------------------------------------------------------------------- the port


class UiInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Static facts for the top bar."""

    venue: str  # "paper" | "drift"
    cluster: str  # "paper" | "devnet" | "mainnet"
    delegate: bool | None = None  # Drift: trading as the delegate key (None: not applicable)
    label: str = ""  # "synthetic demo" on the demo session
    market: str = "SOL-PERP"
    on_exit: str = "keep_protection"  # engine.on_exit: what quitting leaves on the venue
    #: the demo's script: (event time ms, what this part of the session shows), announced as it comes
    chapters: tuple[tuple[int, str], ...] = ()


class LinkState(msgspec.Struct, frozen=True, kw_only=True):
    """The link of a UI attached to a running instance (``autotrader ui``): up or down, and what
    to tell the user. ``instance`` identifies the instance (a new one: it restarted)."""

    connected: bool
    text: str
    instance: str = ""
    info: UiInfo | None = None  # the instance's (on connect)
    guards: GuardsConfig | None = None  # the instance's thresholds (the cards' levels)


class UiCommands(Protocol):
    """Commands the UI sends. Every method answers (never raises for an expected refusal): the
    ``dict`` answers are those of the control socket's handlers of the same name."""

    async def kill(self, reason: str) -> dict[str, Any]:
        """The kill switch: entries and take-profits cancelled, the stop kept, automation off, HALTED."""
        ...

    async def flatten(self, reason: str) -> dict[str, Any]:
        """After a kill: close the position with a reduce-only market order (confirmed by the venue)."""
        ...

    async def cancel_all(self, reason: str) -> dict[str, Any]:
        """After a kill: cancel every order on the venue, the stop too."""
        ...

    async def resume(self) -> dict[str, Any]:
        """Leave HALTED (automation stays off); the answer says the state and why when not ACTIVE."""
        ...

    async def set_automation(self, on: bool) -> dict[str, Any]: ...

    async def preview_order(self, order: ManualOrder) -> OrderVerdict: ...

    async def submit_order(self, order: ManualOrder) -> dict[str, Any]: ...

    async def trading_status(self) -> dict[str, Any]:
        """``TradingStack.status()`` (position, open orders, equity, day PnL, trading state), plus
        ``label`` when the data is labelled (e.g. "synthetic demo")."""
        ...

    def guard_report(self) -> GuardReport:
        """The guards evaluated now (the bus topic carries changes and a heartbeat)."""
        ...

    def settings(self) -> UiSettings: ...

    def recent_events(self, limit: int) -> list[EngineEvent]:
        """The latest engine events already in the activity log (earlier sessions included),
        oldest first, at most ``limit``: the activity panel starts with the history."""
        ...

    async def save_settings(self, settings: UiSettings) -> None: ...

    # the delegation panel (autotrader/delegation_control.py answers; dicts as on the control socket)
    async def delegation(self) -> dict[str, Any]:
        """The delegate read from chain (``delegate``, ``set_at_ms``, ``ttl``), ``signs_as``,
        ``owner_signer``, ``manual_sign``, ``automation_on``; ``applicable`` false on paper."""
        ...

    async def revoke_delegation(self, passphrase: str) -> dict[str, Any]:
        """Automation off at once, then the revoke signed by the owner and confirmed on chain."""
        ...

    async def set_manual_sign(self, on: bool) -> dict[str, Any]:
        """Manual-sign mode: every order is signed by hand (automation off, engine intents refused)."""
        ...

    async def hand_summary(self, order: ManualOrder) -> dict[str, Any]:
        """``lines``: the transaction the owner would sign (the order, its stop and take-profits)."""
        ...

    async def hand_sign(self, order: ManualOrder, passphrase: str) -> dict[str, Any]:
        """Sign it as the owner and follow it to the chain: ``ok`` and ``lines``."""
        ...
