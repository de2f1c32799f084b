"""Typed in-process publish/subscribe bus.

Topic names match the Redis Streams keys of the original design so a Redis backend can replace
this without renaming. Two kinds of subscriber:

* synchronous handlers, called inline by ``publish`` (the replay/backtest hot path);
* bounded async queues (:class:`Subscription`). A queue that is ``coalesce=True`` keeps only the
  latest value when full (market data for slow consumers such as the UI); otherwise ``publish``
  never drops: the queue is unbounded-by-policy for orders, fills and activity and the overflow is
  counted so slow consumers are visible.

The bus does no I/O; async queues only need a running loop when a consumer awaits them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from core.models import (
    Bar,
    Basis,
    BookTicker,
    BookTop,
    FeedStatus,
    Funding,
    Liquidation,
    OpenInterest,
    ResyncNeeded,
    Trade,
)

T = TypeVar("T")


class Topic(Generic[T]):
    """A named, typed channel. Identity is the name."""

    __slots__ = ("name", "type")

    def __init__(self, name: str, type_: type[T]) -> None:
        self.name = name
        self.type = type_

    def __repr__(self) -> str:
        return f"Topic({self.name!r})"


class Subscription(Generic[T]):
    """A bounded queue of messages for one async consumer."""

    def __init__(self, topic: Topic[T], maxsize: int, coalesce: bool) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.topic = topic
        self.maxsize = maxsize
        self.coalesce = coalesce
        self.dropped = 0
        self.overflowed = 0
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False

    def _put(self, item: T) -> None:
        if self.closed:
            return
        if len(self._items) >= self.maxsize:
            if self.coalesce:
                self._items.popleft()
                self.dropped += 1
            else:
                self.overflowed += 1
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> T | None:
        return self._items.popleft() if self._items else None

    def drain(self) -> list[T]:
        items = list(self._items)
        self._items.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)

    async def get(self) -> T:
        while not self._items:
            if self.closed:
                raise asyncio.CancelledError("subscription closed")
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def close(self) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.get()
        except asyncio.CancelledError:
            if self.closed:
                raise StopAsyncIteration from None
            raise


class Bus:
    """In-process bus: ``publish`` delivers to sync handlers inline, then to async queues."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Callable[[object], None]]] = {}
        self._subs: dict[str, list[Subscription[object]]] = {}
        self.published: dict[str, int] = {}
        self.version = 0  # bumped whenever a handler or queue is added or removed


    def on(self, topic: Topic[T], handler: Callable[[T], None]) -> Callable[[], None]:
        """Register a synchronous handler; returns a function that unregisters it."""
        handlers = self._handlers.setdefault(topic.name, [])
        handlers.append(handler)  # type: ignore[arg-type]
        self.version += 1

        def off() -> None:
            if handler in handlers:
                handlers.remove(handler)
                self.version += 1

        return off

    def subscribe(self, topic: Topic[T], maxsize: int = 1024, coalesce: bool = False) -> Subscription[T]:
        sub: Subscription[T] = Subscription(topic, maxsize, coalesce)
        self._subs.setdefault(topic.name, []).append(sub)  # type: ignore[arg-type]
        self.version += 1
        return sub

    def unsubscribe(self, sub: Subscription[T]) -> None:
        subs = self._subs.get(sub.topic.name, [])
        if sub in subs:
            subs.remove(sub)  # type: ignore[arg-type]
            self.version += 1
        sub.close()

    def publish(self, topic: Topic[T], msg: T) -> None:
        name = topic.name
        counts = self.published
        counts[name] = counts.get(name, 0) + 1
        handlers = self._handlers.get(name)
        if handlers:
            for h in handlers:
                h(msg)
        subs = self._subs.get(name)
        if subs:
            for s in subs:
                s._put(msg)

    def has_listeners(self, topic: Topic[T]) -> bool:
        return bool(self._handlers.get(topic.name) or self._subs.get(topic.name))


class Topics:
    """The bus topics of the architecture page."""

    TRADES = Topic("market:solusdt:trades", Trade)
    BARS = Topic("market:solusdt:bars", Bar)
    BOOK = Topic("market:solusdt:book", BookTop)
    #: the primary book was dropped and awaits a snapshot (gap, garbage frame, crossed); the next
    #: book top ends it
    BOOK_RESYNC = Topic("market:solusdt:book_resync", ResyncNeeded)
    BOOK_TICKER = Topic("market:solusdt:book_ticker", BookTicker)
    LIQUIDATIONS = Topic("market:solusdt:liquidations", Liquidation)
    FUNDING = Topic("market:solusdt:funding", Funding)
    OPEN_INTEREST = Topic("market:solusdt:open_interest", OpenInterest)
    USDC_TRADES = Topic("market:solusdc:trades", Trade)
    BASIS = Topic("market:basis", Basis)
    FEED_STATUS = Topic("feeds:status", FeedStatus)
