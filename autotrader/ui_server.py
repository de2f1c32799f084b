"""What a running instance serves to ``autotrader ui`` over its control socket.

* ``ui.subscribe`` (a stream, :mod:`autotrader.control`): first everything the screen needs — the
  instance, :class:`core.ui_port.UiInfo`, the guard thresholds, the settings, the trading status,
  the guard report and the model (:class:`tui.sync.ModelSnapshot`: the windows of the
  instance's own :class:`tui.sync.ModelTap`, with the activity log's history) — then every
  ``tick_s`` one item ``{"b": [[topic, message], ...]}`` with what the bus carried since (market
  topics coalesce, engine events never drop), the bar in progress and the event time, plus the
  trading status and the guard report once a second and at once after an order or kill event.
  Nothing is read from a UI that attaches: it cannot change what the instance does except
  through the commands below.
* ``ui.preview``, ``ui.save_settings``: the in-process UI's own commands
  (:class:`autotrader.ui_bridge.RuntimeCommands`), so an attached UI takes the same code path;
  kill, automation, resume and manual orders use the control handlers ``autotrader kill`` etc.
  use.

Subscribing, taking the snapshot and the first drain happen in one step of the event loop, so a
UI sees every message exactly once.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import msgspec

from autotrader.control import Handler, StreamHandler
from core.bus import Bus, Subscription
from core.engine_types import ENGINE_EVENTS, EngineEvent
from core.ui_port import ManualOrder, UiSettings
from tui.state import MAX_EVENTS, NOW_MS, PARTIAL_BAR, UI_TOPICS
from tui.sync import ModelTap, snapshot_of

if TYPE_CHECKING:
    from autotrader.ui_bridge import RuntimeCommands

#: engine events after which the trading status is sent at once (not at the next second)
STATUS_KINDS = ("order_", "kill", "sl_", "tp_", "flatten", "trading_state", "automation", "intent_")


def _plain(x: Any) -> Any:
    return msgspec.to_builtins(x)


class UiServer:
    def __init__(self, bus: Bus, commands: RuntimeCommands, tick_s: float = 0.25) -> None:
        self.bus = bus
        self.commands = commands
        self.tick_s = tick_s
        self.tap = ModelTap(bus)
        self.instance = f"{os.getpid()}-{int(time.time() * 1000)}"
        self.clients = 0
        self._status: dict[str, Any] | None = None
        self._status_at = 0.0
        self._status_lock = asyncio.Lock()

    def handlers(self) -> dict[str, Handler]:
        return {"ui.preview": self.preview, "ui.save_settings": self.save_settings}

    def streams(self) -> dict[str, StreamHandler]:
        return {"ui.subscribe": self.subscribe}

    # ------------------------------------------------------------------ commands
    async def preview(self, args: dict[str, Any]) -> Any:
        try:
            order = msgspec.convert(args, ManualOrder)
        except msgspec.ValidationError as exc:
            raise ValueError(f"bad order: {exc}") from None
        return _plain(await self.commands.preview_order(order))

    async def save_settings(self, args: dict[str, Any]) -> Any:
        try:
            settings = msgspec.convert(args, UiSettings)
        except msgspec.ValidationError as exc:
            raise ValueError(f"bad settings: {exc}") from None
        await self.commands.save_settings(settings)
        return _plain(self.commands.settings())

    # ------------------------------------------------------------------ stream
    async def status(self, max_age_s: float = 0.9) -> dict[str, Any]:
        """The trading status, computed at most about once a second for every UI together."""
        async with self._status_lock:
            now = time.monotonic()
            if self._status is None or now - self._status_at >= max_age_s:
                self._status = await self.commands.trading_status()
                self._status_at = time.monotonic()
            return self._status

    def _history(self) -> list[EngineEvent]:
        """The activity log's latest events, then the session's events the log does not hold yet."""
        try:
            history = self.commands.recent_events(MAX_EVENTS)
        except Exception:  # the history is a convenience: the session's own events still go
            history = []
        seen = {(e.kind, e.intent_id, e.ts) for e in history}
        extra = [e for e in self.tap.model.events if (e.kind, e.intent_id, e.ts) not in seen]
        return (history + extra)[-MAX_EVENTS:]

    def _first(self, status: dict[str, Any]) -> dict[str, Any]:
        c = self.commands
        rt = c.rt
        return {
            "instance": self.instance,
            "pid": os.getpid(),
            "info": _plain(c.info()),
            "guards": _plain(rt.cfg.guards),
            "settings": _plain(c.settings()),
            "max_leverage": rt.cfg.guards.max_leverage,
            "status": status,
            "guard_now": _plain(c.guard_report()),
            "model": _plain(snapshot_of(self.tap.model, self._history())),
        }

    async def subscribe(self, args: dict[str, Any]) -> AsyncGenerator[Any, None]:
        status = await self.status(max_age_s=0.0)
        # from here to the first yield: no await, so the snapshot and the queues meet exactly
        subs: list[Subscription[Any]] = [self.bus.subscribe(t, maxsize=n, coalesce=c)
                                         for t, n, c in UI_TOPICS]
        tap = self.tap
        model = tap.model
        partial, now_ms = tap.partial(), model.now_ms
        self.clients += 1
        try:
            yield self._first(status)
            every = max(1, round(1.0 / self.tick_s))
            ticks = 0
            while True:
                await asyncio.sleep(self.tick_s)
                ticks += 1
                batch: list[list[Any]] = []
                urgent = False
                for sub in subs:
                    for msg in sub.drain():
                        batch.append([sub.topic.name, _plain(msg)])
                        if sub.topic is ENGINE_EVENTS and msg.kind.startswith(STATUS_KINDS):
                            urgent = True
                bar = tap.partial()
                if bar is not partial and bar is not None:
                    partial = bar
                    batch.append([PARTIAL_BAR.name, _plain(bar)])
                if model.now_ms != now_ms:
                    now_ms = model.now_ms
                    batch.append([NOW_MS.name, now_ms])
                item: dict[str, Any] = {"b": batch}
                if urgent or ticks % every == 0:
                    item["status"] = await self.status(max_age_s=0.0 if urgent else 0.9)
                    item["guard_now"] = _plain(self.commands.guard_report())
                yield item
        finally:
            self.clients -= 1
            for sub in subs:
                self.bus.unsubscribe(sub)
