"""``autotrader ui``: the terminal UI attached to a running instance over its control socket.

:class:`RemoteSession` is the UI's command port (:class:`core.ui_port.UiCommands`) and its link:
it subscribes (``ui.subscribe``, :mod:`autotrader.ui_server`), loads the snapshot into the UI's
:class:`tui.sync.QueueFeed`, then pushes every message as it arrives; commands are the control
socket's requests (``kill``, ``automation``, ``resume``, ``intent``, ``ui.preview``,
``ui.save_settings``), answered by the same code as the in-process UI and the CLI.

Quitting the UI or losing the connection changes nothing in the instance. The link reconnects
with capped exponential backoff and jitter and says so (a new instance id: the instance
restarted, and the screen starts from its snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path
from typing import Any

import msgspec

from autotrader.control import ControlError, StreamConnection, open_stream, request
from core.engine_types import EngineEvent
from core.guard_config import GuardsConfig
from core.guards import GuardReport
from core.ui_port import LinkState, ManualOrder, OrderVerdict, UiInfo, UiSettings
from tui.state import WIRE_TOPICS
from tui.sync import ModelSnapshot, QueueFeed

RETRY_BASE_S = 0.5
RETRY_MAX_S = 5.0


def backoff_s(attempt: int, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter: ~0.5, 1, 2, 4, 5, 5 … s (each 50–100 %)."""
    r: float = (rng or random).random()
    cap = min(RETRY_MAX_S, RETRY_BASE_S * 2.0 ** max(0, attempt - 1))
    return cap * (0.5 + 0.5 * r)


class RemoteSession:
    """UiCommands over the control socket at ``path``, and the link that fills ``feed``."""

    def __init__(self, path: Path, feed: QueueFeed, *, idle_timeout_s: float = 10.0,
                 command_timeout_s: float = 8.0) -> None:
        self.path = Path(path)
        self.feed = feed
        self.idle_timeout_s = idle_timeout_s
        self.command_timeout_s = command_timeout_s
        self.connected = False
        self.instance = ""
        self.pid: int | None = None
        self.info: UiInfo | None = None
        self.guards: GuardsConfig | None = None
        self.max_leverage: float | None = None
        self.attaches = 0
        self.dropped = 0  # messages that did not decode (a newer or older instance): counted, skipped
        self._settings: UiSettings | None = None
        self._status: dict[str, Any] | None = None
        self._guard: GuardReport | None = None

    # ------------------------------------------------------------------ the link
    async def connect(self) -> StreamConnection:
        """Subscribe once and load the snapshot (ControlError when no instance answers)."""
        conn = await open_stream(self.path, "ui.subscribe", timeout=10.0, idle_timeout_s=self.idle_timeout_s)
        try:
            self._attach(conn.first)
        except (ValueError, TypeError, KeyError, msgspec.ValidationError) as exc:
            await conn.close()
            raise ControlError(f"the instance at {self.path} sent a snapshot this UI cannot read: "
                               f"{exc}") from None
        return conn

    async def run(self, conn: StreamConnection | None = None) -> None:
        """Follow the instance until cancelled; reconnect whenever the link drops."""
        attempt = 0
        while True:
            if conn is None:
                try:
                    conn = await self.connect()
                except ControlError as exc:
                    attempt += 1
                    delay = backoff_s(attempt)
                    self._lost(f"{exc}; retrying in {delay:.1f} s")
                    await asyncio.sleep(delay)
                    continue
            attempt = 0
            try:
                while True:
                    self._apply(await conn.next())
            except ControlError as exc:
                self._lost(str(exc))
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()
            conn = None
            await asyncio.sleep(backoff_s(1))

    def _lost(self, why: str) -> None:
        self.connected = False
        self.feed.set_link(LinkState(connected=False, text=f"connection to the instance lost: {why}",
                                     instance=self.instance))

    def _attach(self, first: dict[str, Any]) -> None:
        info = msgspec.convert(first["info"], UiInfo)
        guards = msgspec.convert(first["guards"], GuardsConfig)
        settings = msgspec.convert(first["settings"], UiSettings)
        guard = msgspec.convert(first["guard_now"], GuardReport)
        model = msgspec.convert(first["model"], ModelSnapshot)
        previous = self.instance
        self.instance = str(first.get("instance") or "")
        self.pid = first.get("pid") if isinstance(first.get("pid"), int) else None
        self.info, self.guards, self._settings, self._guard = info, guards, settings, guard
        self.max_leverage = float(first.get("max_leverage") or guards.max_leverage)
        self._status = first.get("status") if isinstance(first.get("status"), dict) else None
        self.connected = True
        self.attaches += 1
        who = f"autotrader pid {self.pid}" if self.pid else "autotrader"
        if self.attaches == 1:
            text = f"attached to {who} at {self.path}"
        elif previous and previous != self.instance:
            text = f"reconnected: the instance restarted ({who})"
        else:
            text = f"reconnected to {who}"
        self.feed.load(model)
        self.feed.set_link(LinkState(connected=True, text=text, instance=self.instance, info=info,
                                     guards=guards))

    def _apply(self, item: Any) -> None:
        if not isinstance(item, dict):
            self.dropped += 1
            return
        for entry in item.get("b") or ():
            try:
                name, data = entry
                topic = WIRE_TOPICS[name]
                self.feed.push(name, msgspec.convert(data, topic.type))
            except (ValueError, TypeError, KeyError, msgspec.ValidationError):
                self.dropped += 1
        status = item.get("status")
        if isinstance(status, dict):
            self._status = status
        guard = item.get("guard_now")
        if guard is not None:
            try:
                self._guard = msgspec.convert(guard, GuardReport)
            except msgspec.ValidationError:
                self.dropped += 1

    # ------------------------------------------------------------------ UiCommands
    async def _req(self, cmd: str, args: dict[str, Any], timeout: float | None = None) -> Any:
        return await request(self.path, cmd, args, timeout=timeout or self.command_timeout_s)

    async def kill(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._req("kill", {"reason": reason})
        return result

    async def flatten(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._req("kill", {"reason": reason, "flatten": True})
        return result

    async def cancel_all(self, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._req("kill", {"reason": reason, "cancel_all": True})
        return result

    async def resume(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._req("resume", {"reason": "resumed from an attached UI"})
        return result

    async def set_automation(self, on: bool) -> dict[str, Any]:
        result: dict[str, Any] = await self._req("automation", {"on": on})
        return result

    async def preview_order(self, order: ManualOrder) -> OrderVerdict:
        return msgspec.convert(await self._req("ui.preview", msgspec.to_builtins(order)), OrderVerdict)

    async def submit_order(self, order: ManualOrder) -> dict[str, Any]:
        args = {"side": order.side, "size": order.size, "sl": order.sl, "price": order.price,
                "tps": [[p, None] for p in order.tps]}
        # the engine decides within 10 s
        result: dict[str, Any] = await self._req("intent", args, timeout=15.0)
        return result

    async def trading_status(self) -> dict[str, Any]:
        if not self.connected or self._status is None:
            raise ControlError("not connected to the instance")
        return self._status

    def guard_report(self) -> GuardReport:
        if self._guard is None:
            raise ControlError("no guard report from the instance yet")
        return self._guard

    def settings(self) -> UiSettings:
        if self._settings is None:
            raise ControlError("not connected to the instance")
        return self._settings

    def recent_events(self, limit: int) -> list[EngineEvent]:
        return []  # the snapshot carries the history

    async def delegation(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._req("delegation", {}, timeout=15.0)
        return result

    async def revoke_delegation(self, passphrase: str) -> dict[str, Any]:
        # the revoke is followed to confirmation on chain (the send schedule: up to a minute)
        args = {"passphrase": passphrase}
        result: dict[str, Any] = await self._req("delegation.revoke", args, timeout=90.0)
        return result

    async def set_manual_sign(self, on: bool) -> dict[str, Any]:
        result: dict[str, Any] = await self._req("manual_sign", {"on": on})
        return result

    async def hand_summary(self, order: ManualOrder) -> dict[str, Any]:
        result: dict[str, Any] = await self._req("manual.summary", {"order": msgspec.to_builtins(order)},
                                                 timeout=15.0)
        return result

    async def hand_sign(self, order: ManualOrder, passphrase: str) -> dict[str, Any]:
        args = {"order": msgspec.to_builtins(order), "passphrase": passphrase}
        result: dict[str, Any] = await self._req("manual.sign", args, timeout=90.0)
        return result

    async def save_settings(self, settings: UiSettings) -> None:
        answer = await self._req("ui.save_settings", msgspec.to_builtins(settings))
        self._settings = msgspec.convert(answer, UiSettings)
