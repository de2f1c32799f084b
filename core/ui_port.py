"""What the terminal UI needs from the rest of the app (pure: types, validation, a Protocol).

The UI (``tui/``) receives market and engine state on the bus and sends its commands through
:class:`UiCommands`, which the composition root implements over the runtime (reusing the control
socket's code paths). Operator settings edited in the UI are validated here, so the UI shows the
same errors the runtime would raise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import msgspec

from core.bus import Topic
from core.guards import GuardReport

#: the on-chain Drift liquidation map (built by the liq-map issue). The UI accepts any message it
#: can read as clusters: see :func:`clusters_from`.
LIQ_MAP: Topic[object] = Topic("onchain:drift:liq_map", object)

Cluster = tuple[float, float]  # (price USD, notional USD)


def _cluster_of(item: object) -> Cluster | None:
    if isinstance(item, Sequence) and not isinstance(item, str | bytes) and len(item) >= 2:
        px, notional = item[0], item[1]
    else:
        get = item.get if isinstance(item, Mapping) else (lambda k, d=None: getattr(item, k, d))
        px = get("price", None) or get("est_liq_px", None)
        notional = get("notional", None) or get("notional_usd", None)
        if notional is None:
            size, entry = get("position_size", None), get("avg_entry_price", None)
            if isinstance(size, int | float) and isinstance(entry, int | float):
                notional = abs(size) * entry
    if not isinstance(px, int | float) or not isinstance(notional, int | float):
        return None
    if not (math.isfinite(px) and px > 0 and math.isfinite(notional)):
        return None
    return float(px), abs(float(notional))


def clusters_from(msg: object) -> list[Cluster]:
    """(price, notional) pairs from a liq-map message: a list of pairs, of mappings/objects with
    ``price``/``est_liq_px`` and ``notional`` (or ``position_size`` × ``avg_entry_price``), or an
    object/mapping holding such a list under ``clusters`` or ``entries``. Unreadable items are
    skipped."""
    items: object = msg
    for key in ("clusters", "entries"):
        inner = msg.get(key) if isinstance(msg, Mapping) else getattr(msg, key, None)
        if inner is not None:
            items = inner
            break
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        return []
    return [c for c in (_cluster_of(i) for i in items) if c is not None]


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
    "leverage": "leverage (x)",
    "risk_per_trade_pct": "risk per trade (%)",
    "priority_fee_cap": "priority-fee cap (µlamports/CU)",
    "daily_stop_pct": "daily stop (% loss)",
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
    if lev is not None and not 0 < lev <= max_leverage:
        errors["leverage"] = f"must be > 0 and <= {max_leverage:g} (guards.max_leverage)"
    risk = vals.get("risk_per_trade_pct")
    if risk is not None and not 0 < risk <= 100:
        errors["risk_per_trade_pct"] = "must be > 0 and <= 100"
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


class UiCommands(Protocol):
    """Commands the UI sends. Every method answers (never raises for an expected refusal): the
    ``dict`` answers are those of the control socket's handlers of the same name."""

    async def kill(self, reason: str) -> dict[str, Any]: ...

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

    async def save_settings(self, settings: UiSettings) -> None: ...
