"""The UI's commands (:class:`core.ui_port.UiCommands`) over a :class:`~autotrader.runtime.Runtime`.

Kill, automation, manual intents and status go through the control socket's handlers
(:class:`~autotrader.control_handlers.ControlHandlers`), so the UI and ``autotrader kill`` take the
same code path. The order preview runs the engine's own checks (state, then
:func:`core.preflight.preflight`) without submitting. Settings are validated by
:func:`core.ui_port.validate_settings`, applied to the running engine, signal and guards, and
saved in a small state store beside the state database so they survive restarts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from core.config_schema import Config, DriftConfig, VelocityConfig
from core.engine_types import EVENT_KINDS, EngineEvent
from core.guards import GuardReport
from core.manual import ManualIntentError, build_manual_intent
from core.preflight import PreflightContext, preflight
from core.ui_port import ManualOrder, OrderVerdict, UiInfo, UiSettings, validate_settings
from storage.state_store import StateStore, StateStoreError

if TYPE_CHECKING:
    from autotrader.runtime import Runtime

SETTINGS_KEY = "ui.settings"


def settings_db_path(state_db: Path) -> Path:
    """Beside the state database, in its own file: the demo wipes its state database on every
    start, the operator's settings must stay."""
    return state_db.with_name(state_db.stem + "-settings.sqlite3")


def current_settings(cfg: Config) -> UiSettings:
    return UiSettings(leverage=cfg.risk.leverage, risk_per_trade_pct=cfg.risk.risk_per_trade_pct,
                      priority_fee_cap=cfg.engine.priority_fee_cap,
                      daily_stop_pct=cfg.guards.daily_stop.max_loss_pct)


def apply_settings(cfg: Config, s: UiSettings) -> Config:
    """``cfg`` with the settings in their owning sections (one source of truth)."""
    r = msgspec.structs.replace
    guards = r(cfg.guards, daily_stop=r(cfg.guards.daily_stop, max_loss_pct=s.daily_stop_pct))
    return r(cfg, risk=r(cfg.risk, leverage=s.leverage, risk_per_trade_pct=s.risk_per_trade_pct),
             engine=r(cfg.engine, priority_fee_cap=s.priority_fee_cap), guards=guards)


def load_saved_settings(cfg: Config, store: StateStore | None) -> tuple[Config, str]:
    """Apply saved settings at start; a saved value the current config rejects is ignored (and said)."""
    if store is None:
        return cfg, ""
    raw = store.get_json(SETTINGS_KEY)
    if not isinstance(raw, dict):
        return cfg, ""
    s, errors = validate_settings({k: str(v) for k, v in raw.items()}, cfg.guards.max_leverage)
    if s is None:
        return cfg, "saved settings ignored: " + "; ".join(f"{k} {v}" for k, v in errors.items())
    return apply_settings(cfg, s), ""


def ui_info(cfg: Config, label: str, chapters: Sequence[tuple[int, str]] = ()) -> UiInfo:
    chain: DriftConfig | VelocityConfig | None = (
        cfg.venues.drift if cfg.engine.venue == "drift"
        else cfg.venues.velocity if cfg.engine.venue == "velocity" else None)
    return UiInfo(venue=cfg.engine.venue, cluster=chain.cluster if chain else "paper",
                  delegate=chain.use_delegate if chain else None, label=label,
                  market=cfg.signal.market, on_exit=cfg.engine.on_exit, chapters=tuple(chapters))


def open_settings(cfg: Config, state_db: Path) -> tuple[Config, StateStore | None, str]:
    """The settings store beside ``state_db`` and ``cfg`` with the saved settings applied; the
    store is None (settings will not persist) when it cannot be opened; the note says why."""
    try:
        store: StateStore | None = StateStore(settings_db_path(state_db))
    except StateStoreError as exc:
        return cfg, None, f"settings will not persist: {exc}"
    cfg, note = load_saved_settings(cfg, store)
    return cfg, store, note


class RuntimeCommands:
    """:class:`core.ui_port.UiCommands` for one runtime. A refusal raises ValueError (shown as a toast)."""

    def __init__(self, runtime: Runtime, store: StateStore | None) -> None:
        self.rt = runtime
        self.handlers = runtime.handlers
        self.store = store

    def info(self) -> UiInfo:
        return ui_info(self.rt.cfg, self.rt.label, self.rt.chapters)

    async def kill(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.handlers.kill({"reason": reason})
        return result

    async def flatten(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.handlers.kill({"reason": reason, "flatten": True})
        return result

    async def cancel_all(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.handlers.kill({"reason": reason, "cancel_all": True})
        return result

    async def resume(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.handlers.resume({"reason": "resumed from the UI"})
        return result

    async def set_automation(self, on: bool) -> dict[str, Any]:
        result: dict[str, Any] = await self.handlers.automation({"on": on})
        return result

    async def trading_status(self) -> dict[str, Any]:
        out = await self.rt.trading.status()
        if self.rt.label:  # a synthetic recording replayed with `run --replay` says so too
            out["label"] = self.rt.label
        if self.handlers.manual_sign:  # every UI (attached ones too) shows it and signs by hand
            out["manual_sign"] = True
        return out

    def guard_report(self) -> GuardReport:
        return self.rt.guards.check()

    async def preview_order(self, order: ManualOrder) -> OrderVerdict:
        e = self.rt.engine
        guard = self.rt.guards.check()
        try:
            intent = build_manual_intent(
                intent_id=f"preview-{uuid.uuid4().hex[:8]}", ts=e.clock.now_ms(), market=e.cfg.market,
                side=order.side, size=order.size, sl=order.sl, price=order.price, bid=e.bid, ask=e.ask,
                tps=[(p, None) for p in order.tps], default_split=self.rt.cfg.risk.tp_split,
                equity_usd=e.start_equity)
        except ManualIntentError as exc:
            return OrderVerdict(ok=False, reasons=[str(exc)], guard_status=guard.status)
        why: list[str] = []
        if str(e.trading_state) != "active":
            why.append(f"trading state is {e.trading_state}")
        if str(e.venue_state) != "active":
            why.append(f"venue is {e.venue_state}")
        if e.active():
            why.append("another intent is in progress")
        ctx = PreflightContext(now_ms=e.clock.now_ms(), guard=guard, equity_usd=e.start_equity,
                               day_pnl_pct=e.day_pnl, priority_fee=self.rt.trading.priority_fee())
        why += preflight(intent, ctx, e.cfg)
        return OrderVerdict(ok=not why, reasons=why, price=intent.price, guard_status=guard.status)

    async def submit_order(self, order: ManualOrder) -> dict[str, Any]:
        args = {"side": order.side, "size": order.size, "sl": order.sl, "price": order.price,
                "tps": [[p, None] for p in order.tps]}
        result: dict[str, Any] = await self.handlers.intent(args)
        return result

    def settings(self) -> UiSettings:
        return current_settings(self.rt.cfg)

    def recent_events(self, limit: int) -> list[EngineEvent]:
        log = self.rt.trading.activity
        if log is None:
            return []
        rows = log.query(kinds=frozenset(EVENT_KINDS) & log.kinds, limit=limit)
        return [EngineEvent(kind=r.kind, intent_id=r.intent_id, ts=r.ts_ms, data=r.data)
                for r in reversed(rows)]

    async def delegation(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.rt.delegation.status({})
        return result

    async def revoke_delegation(self, passphrase: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.rt.delegation.revoke({"passphrase": passphrase})
        return result

    async def set_manual_sign(self, on: bool) -> dict[str, Any]:
        result: dict[str, Any] = await self.rt.delegation.manual_sign({"on": on})
        return result

    async def hand_summary(self, order: ManualOrder) -> dict[str, Any]:
        result: dict[str, Any] = await self.rt.delegation.summary({"order": msgspec.to_builtins(order)})
        return result

    async def hand_sign(self, order: ManualOrder, passphrase: str) -> dict[str, Any]:
        args = {"order": msgspec.to_builtins(order), "passphrase": passphrase}
        result: dict[str, Any] = await self.rt.delegation.sign(args)
        return result

    async def save_settings(self, settings: UiSettings) -> None:
        rt = self.rt
        checked, errors = validate_settings(
            {k: str(v) for k, v in msgspec.structs.asdict(settings).items()}, rt.cfg.guards.max_leverage)
        if checked is None:
            raise ValueError("; ".join(f"{k}: {v}" for k, v in errors.items()))
        cfg = apply_settings(rt.cfg, checked)
        rt.cfg = cfg
        r = msgspec.structs.replace
        e = rt.engine
        e.cfg = r(e.cfg, risk_per_trade_pct=checked.risk_per_trade_pct,
                  priority_fee_cap=checked.priority_fee_cap, daily_stop_pct=checked.daily_stop_pct)
        rt.signal.signal.risk = cfg.risk
        rt.handlers.risk = cfg.risk
        rt.guards.set_config(cfg.guards)
        if self.store is not None:
            self.store.put_json(SETTINGS_KEY, msgspec.structs.asdict(checked))
