"""What a running instance answers on its control socket: ``status``, ``guards``, ``kill``,
``intent``, ``automation``, ``resume`` (see :mod:`autotrader.control` for the protocol).

``kill`` records and starts the kill at once (the ``kill_switch engaged`` row is in the activity
log before the answer), then waits up to ``wait_s`` for the venue to confirm; the kill's own
retries go on in the engine if it has not confirmed by then. ``intent`` publishes a manual intent
on ``engine:intents`` and answers with the engine's verdict (accepted, or rejected and why).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from autotrader.control import Handler
from autotrader.trading import TradingStack
from core.engine_types import ENGINE_EVENTS, EngineEvent, TradingState
from core.guard_config import RiskConfig
from core.guard_monitor import GuardMonitor
from core.guards import to_json as guards_to_json
from core.intents import INTENTS
from core.manual import ManualIntentError, build_manual_intent

Spawn = Callable[[Awaitable[Any], str], "asyncio.Task[Any]"]


class ControlHandlers:
    def __init__(
        self,
        trading: TradingStack,
        guards: GuardMonitor,
        risk: RiskConfig,
        status_line: Callable[[], dict[str, Any]],
        spawn: Spawn,
        wait_s: float = 2.0,
        windows: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.trading = trading
        self.engine = trading.engine
        self.guards = guards
        self.risk = risk
        self.status_line = status_line
        self.spawn = spawn
        self.wait_s = wait_s
        self.windows_json = windows
        #: manual-sign mode (the UI's delegation panel): orders are signed by hand with the owner's
        #: key, so the engine sends none (intents refused, automation stays off)
        self.manual_sign = False

    def handlers(self) -> dict[str, Handler]:
        return {
            "status": self.status,
            "guards": self.guard_report,
            "kill": self.kill,
            "intent": self.intent,
            "automation": self.automation,
            "resume": self.resume,
            "windows": self.windows,
        }

    async def windows(self, args: dict[str, Any]) -> Any:
        """The market windows (bars, liquidations, OI series, funding, the guards' indicators)."""
        if self.windows_json is None:
            raise ValueError("this instance keeps no market windows")
        return self.windows_json()

    async def status(self, args: dict[str, Any]) -> Any:
        out = self.status_line()
        out["engine"] = await self.trading.status()
        return out

    async def guard_report(self, args: dict[str, Any]) -> Any:
        return guards_to_json(self.guards.check(), detailed=bool(args.get("detailed")))

    async def kill(self, args: dict[str, Any]) -> Any:
        reason = str(args.get("reason") or "").strip()
        if not reason:
            raise ValueError("a kill needs a reason (--reason)")
        flatten = args.get("flatten")
        if flatten is not None and not isinstance(flatten, bool):
            raise ValueError("flatten must be true or false")
        cancel_all = args.get("cancel_all", False)
        if not isinstance(cancel_all, bool):
            raise ValueError("cancel_all must be true or false")
        t0 = time.perf_counter()
        task = self.spawn(self.engine.kill(reason, flatten, cancel_all), "kill")
        await asyncio.sleep(0)  # the kill is engaged and recorded synchronously at its start
        wait = args.get("wait_s", self.wait_s)
        if not isinstance(wait, int | float) or isinstance(wait, bool) or not 0 <= wait <= 600:
            raise ValueError("wait_s must be a number of seconds (0..600)")
        try:
            result = await asyncio.wait_for(asyncio.shield(task), float(wait))
        except TimeoutError:
            return {"trading_state": str(self.engine.trading_state), "reason": reason, "confirmed": False,
                    "pending": True, "elapsed_ms": round((time.perf_counter() - t0) * 1000, 1)}
        from autotrader.kill_cmd import result_json

        out = result_json(result, str(self.engine.trading_state), (time.perf_counter() - t0) * 1000,
                          "the running instance")
        venue = self.trading.async_venue
        if venue is not None:
            for o in out["cancelled_orders"]:
                o["cancel_signature"] = venue.cancel_signature(str(o["order_id"]))
        return out

    async def intent(self, args: dict[str, Any]) -> Any:
        e = self.engine
        if self.manual_sign:
            raise ValueError("manual-sign mode is on: sign each order by hand (the UI's order form), "
                             "or turn the mode off in the delegation panel")
        raw_tps = args.get("tps") or []
        if not isinstance(raw_tps, list):
            raise ValueError("tps must be a list of [price, fraction|null]")
        tps: list[tuple[float, float | None]] = []
        for t in raw_tps:
            if not isinstance(t, list | tuple) or len(t) != 2:
                raise ValueError("each take-profit is [price, fraction|null]")
            tps.append((float(t[0]), None if t[1] is None else float(t[1])))
        iid = str(args.get("id") or f"manual-{uuid.uuid4().hex[:12]}")
        try:
            intent = build_manual_intent(
                intent_id=iid, ts=e.clock.now_ms(), market=e.cfg.market, side=str(args.get("side", "")),
                size=_num(args.get("size")), sl=_num(args.get("sl")),
                price=None if args.get("price") is None else _num(args.get("price")),
                bid=e.bid, ask=e.ask, tps=tps, default_split=self.risk.tp_split,
                equity_usd=e.start_equity, post_only=bool(args.get("post_only", True)),
            )
        except ManualIntentError as exc:
            raise ValueError(str(exc)) from None
        verdict: asyncio.Future[EngineEvent] = asyncio.get_running_loop().create_future()

        def watch(ev: EngineEvent) -> None:
            decided = ev.kind in ("intent_accepted", "intent_rejected")
            if ev.intent_id == iid and decided and not verdict.done():
                verdict.set_result(ev)

        off = e.bus.on(ENGINE_EVENTS, watch)
        try:
            e.bus.publish(INTENTS, intent)
            e.wake()
            ev = await asyncio.wait_for(verdict, 10.0)
        except TimeoutError:
            return {"id": iid, "status": "pending", "note": "the engine has not decided within 10 s"}
        finally:
            off()
        status = "accepted" if ev.kind == "intent_accepted" else "rejected"
        out: dict[str, Any] = {"id": iid, "status": status, "side": intent.side, "price": intent.price,
                               "size": intent.size, "sl": intent.sl, "tps": [list(t) for t in intent.tps]}
        if ev.kind == "intent_rejected":
            out["reasons"] = ev.data.get("reasons", [])
        return out

    async def automation(self, args: dict[str, Any]) -> Any:
        on = args.get("on")
        if not isinstance(on, bool):
            raise ValueError("automation needs on: true|false")
        if on and self.manual_sign:
            raise ValueError("manual-sign mode is on: turn it off in the delegation panel first")
        try:
            self.engine.set_automation(on)
        except RuntimeError as exc:
            raise ValueError(str(exc)) from None
        return {"automation_on": self.engine.automation_on}

    async def resume(self, args: dict[str, Any]) -> Any:
        e = self.engine
        e.set_trading_state(TradingState.ACTIVE, str(args.get("reason") or "operator resume"))
        return {"trading_state": str(e.trading_state), "automation_on": e.automation_on,
                "reason": e.trading_reason}  # still reducing while storage fails: says why


def _num(x: object) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float | str):
        raise ValueError(f"expected a number, got {x!r}")
    try:
        return float(x)
    except ValueError:
        raise ValueError(f"expected a number, got {x!r}") from None
