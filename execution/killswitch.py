"""The kill switch: cancel every open order (optionally flatten) and retry until the venue confirms.

Idempotent: engaging again after a confirmed kill returns the recorded result (``already=True``)
without touching the venue, unless a flatten is now asked for and the position is not flat, or
orders re-appeared. Concurrent callers are serialized and share the outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec

from core.clock import Clock
from core.engine_types import EngineConfig
from core.venue import Order, OrderRequest, OrderType, Venue, VenueError

QTY_EPS = 1e-9
Sleep = Callable[[float], Awaitable[None]]


class KillResult(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    ts: int
    confirmed: bool  # the venue reported no open order for the market
    cancelled: int  # orders the venue said it cancelled
    attempts: int
    open_orders: int  # open orders left at the last check (0 when confirmed)
    flatten: bool
    flattened: bool  # position flat at the last check (True when no flatten was asked and flat)
    position: float | None  # signed size at the last check (None = unknown)
    already: bool = False
    errors: tuple[str, ...] = ()


class KillSwitch:
    """``place`` sends the flatten orders (the engine passes its journaled, recorded path)."""

    def __init__(
        self,
        venue: Venue,
        clock: Clock,
        cfg: EngineConfig,
        sleep: Sleep = asyncio.sleep,
        place: Callable[[OrderRequest], Awaitable[Order]] | None = None,
    ) -> None:
        self.venue = venue
        self.clock = clock
        self.cfg = cfg
        self.sleep = sleep
        self.place = place if place is not None else venue.place
        self.engaged = False
        self.engaged_ts = 0
        self._flat_seq = 0  # flatten orders sent by this switch (client tags are never reused)
        self.reason = ""
        self.result: KillResult | None = None
        self._lock = asyncio.Lock()

    def reset(self) -> None:
        """Re-arm after an operator resumes trading."""
        self.engaged = False
        self.reason = ""
        self.result = None

    def restore(self, reason: str) -> None:
        """Engaged before a restart: stays engaged (the next :meth:`engage` re-checks the venue)."""
        self.engaged, self.reason, self.engaged_ts = True, reason, self.clock.now_ms()

    async def engage(self, reason: str, flatten: bool) -> KillResult:
        async with self._lock:
            if not self.engaged:
                self.engaged, self.reason, self.engaged_ts = True, reason, self.clock.now_ms()
            prev = self.result
            if prev is not None and prev.confirmed and (prev.flattened or not flatten):
                try:
                    still_open = await self.venue.open_orders(self.cfg.market)
                except VenueError:
                    still_open = []
                if not still_open:
                    return msgspec.structs.replace(prev, already=True)
            self.result = await self._run(self.reason, flatten)
            return self.result

    async def _run(self, reason: str, flatten: bool) -> KillResult:
        market = self.cfg.market
        cancelled = attempts = 0
        left = -1
        errors: list[str] = []
        delay = self.cfg.kill_backoff_s
        pos: float | None = None
        flat = False
        while attempts < self.cfg.kill_max_tries:
            attempts += 1
            try:
                cancelled += await self.venue.cancel_all(market)
            except VenueError as e:
                errors.append(f"cancel_all: {e}")
            try:
                left = len(await self.venue.open_orders(market))
            except VenueError as e:
                errors.append(f"open_orders: {e}")
                left = -1
            if left == 0 and flatten and not flat:
                flat, pos = await self._flatten_once(errors, attempts)
                if not flat:
                    left = -1  # flatten again (and re-check orders it may have left)
            if left == 0 and (flat or not flatten):
                break
            await self.sleep(delay)
            delay = min(delay * 2, self.cfg.kill_backoff_max_s)
        if pos is None:
            try:
                pos = (await self.venue.position(market)).size
            except VenueError as e:
                errors.append(f"position: {e}")
        flat = flat or (pos is not None and abs(pos) <= QTY_EPS)
        return KillResult(
            reason=reason,
            ts=self.clock.now_ms(),
            confirmed=left == 0,
            cancelled=cancelled,
            attempts=attempts,
            open_orders=max(left, 0) if left >= 0 else -1,
            flatten=flatten,
            flattened=flat,
            position=pos,
            errors=tuple(errors[-10:]),
        )

    async def _flatten_once(self, errors: list[str], attempt: int) -> tuple[bool, float | None]:
        market = self.cfg.market
        try:
            pos = (await self.venue.position(market)).size
        except VenueError as e:
            errors.append(f"position: {e}")
            return False, None
        if abs(pos) <= QTY_EPS:
            return True, pos
        req = OrderRequest(
            market=market,
            side="sell" if pos > 0 else "buy",
            type=OrderType.MARKET,
            size=abs(pos),
            reduce_only=True,
            client_tag=f"kill-{self.engaged_ts}:flat{self._flat_seq + 1}",
        )
        self._flat_seq += 1
        try:
            await self.place(req)
            pos = (await self.venue.position(market)).size
        except VenueError as e:
            errors.append(f"flatten: {e}")
            return False, pos
        return abs(pos) <= QTY_EPS, pos
