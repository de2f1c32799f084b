"""A synthetic Binance L2 book in integer ticks that produces trades and depth diffs.

The planned mid drives the touch. When the touch moves, the side it moves through is *swept*:
each resting level between the old and the new touch prints an aggressor trade (part of its
size; the rest is pulled) and disappears, so price moves and aggressor flow agree. Other trades
hit the touch and shrink it (a level traded to zero is re-posted). Every step ends with one diff
that lists every level whose size changed, in absolute sizes as Binance sends them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

WINDOW = 120  # levels kept per side, in ticks from the touch


@dataclass(slots=True)
class Print:
    """One aggregated trade at one price. ``sell`` = the aggressor sold (Binance ``m: true``)."""

    tick: int
    qty: int
    sell: bool


class SyntheticBook:
    """Bid/ask levels keyed by price in ticks (0.01 USDT), sizes in whole SOL."""

    def __init__(self, rng: random.Random, bid: int, spread: int) -> None:
        self.rng = rng
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.bid = bid
        self.ask = bid + spread
        self.depth_scale = 1.0
        self.fill = 0.95
        self._changed_b: set[int] = set()
        self._changed_a: set[int] = set()
        for d in range(WINDOW):
            if d < 2 or rng.random() < self.fill:
                self.bids[bid - d] = self.size(d)
                self.asks[self.ask + d] = self.size(d)
        self._changed_b.clear()
        self._changed_a.clear()

    # ------------------------------------------------------------------ model
    def size(self, dist: int) -> int:
        """Resting size at ``dist`` ticks from the touch: grows away from it, lognormal noise."""
        base = (26.0 + 7.0 * min(dist, 40)) * self.depth_scale
        return max(1, int(base * math.exp(self.rng.gauss(-0.12, 0.5))))

    def _set(self, side: dict[int, int], changed: set[int], tick: int, qty: int) -> None:
        if qty <= 0:
            if tick in side:
                del side[tick]
                changed.add(tick)
        elif side.get(tick) != qty:
            side[tick] = qty
            changed.add(tick)

    def set_bid(self, tick: int, qty: int) -> None:
        self._set(self.bids, self._changed_b, tick, qty)

    def set_ask(self, tick: int, qty: int) -> None:
        self._set(self.asks, self._changed_a, tick, qty)

    # ------------------------------------------------------------------ trading
    def hit(self, qty: int, sell: bool) -> Print:
        """An aggressor trade at the touch; the touch shrinks (and is re-posted when emptied)."""
        if sell:
            tick, book, setter = self.bid, self.bids, self.set_bid
        else:
            tick, book, setter = self.ask, self.asks, self.set_ask
        have = book.get(tick, 0)
        qty = max(1, min(qty, have)) if have else max(1, qty)
        left = have - qty
        setter(tick, left if left > 0 else self.size(0))
        return Print(tick, qty, sell)

    def move(self, bid: int, ask: int, sweep: tuple[float, float]) -> list[Print]:
        """Move the touch to ``bid``/``ask``; return the sweep prints, in the order they happened."""
        rng = self.rng
        prints: list[Print] = []
        down = bid + ask < self.bid + self.ask
        up = bid + ask > self.bid + self.ask
        if down and bid < self.bid:  # sellers walk the bids down
            for t in range(self.bid, bid, -1):
                q = self.bids.get(t)
                if q:
                    prints.append(Print(t, max(1, round(q * rng.uniform(*sweep))), True))
                self.set_bid(t, 0)
        elif up and ask > self.ask:  # buyers lift the asks
            for t in range(self.ask, ask):
                q = self.asks.get(t)
                if q:
                    prints.append(Print(t, max(1, round(q * rng.uniform(*sweep))), False))
                self.set_ask(t, 0)
        # drop any crossed leftovers, make the new touch exist
        for t in [t for t in self.bids if t > bid]:
            self.set_bid(t, 0)
        for t in [t for t in self.asks if t < ask]:
            self.set_ask(t, 0)
        self.bid, self.ask = bid, ask
        if bid not in self.bids:
            self.set_bid(bid, self.size(0))
        if ask not in self.asks:
            self.set_ask(ask, self.size(0))
        return prints

    def refresh(self, n: int) -> None:
        """Keep the window populated, trim what left it, and re-quote ``n`` random levels."""
        rng = self.rng
        for t in [t for t in self.bids if t < self.bid - WINDOW]:
            self.set_bid(t, 0)
        for t in [t for t in self.asks if t > self.ask + WINDOW]:
            self.set_ask(t, 0)
        for d in range(1, 4):  # the first ticks behind the touch are rarely empty
            if self.bid - d not in self.bids and rng.random() < self.fill:
                self.set_bid(self.bid - d, self.size(d))
            if self.ask + d not in self.asks and rng.random() < self.fill:
                self.set_ask(self.ask + d, self.size(d))
        for _ in range(n):
            d = min(WINDOW - 1, int(rng.expovariate(1 / 14)))
            on_bid = rng.random() < 0.5
            tick = self.bid - d if on_bid else self.ask + d
            qty = self.size(d) if d == 0 or rng.random() < self.fill else 0
            if on_bid:
                self.set_bid(tick, qty)
            else:
                self.set_ask(tick, qty)

    # ------------------------------------------------------------------ output
    def take_diff(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Changed levels since the last call, ascending by price, as ``(tick, qty)``."""
        b = [(t, self.bids.get(t, 0)) for t in sorted(self._changed_b)]
        a = [(t, self.asks.get(t, 0)) for t in sorted(self._changed_a)]
        self._changed_b.clear()
        self._changed_a.clear()
        return b, a

    def levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The whole book, best first on each side (a REST snapshot)."""
        b = sorted(self.bids.items(), reverse=True)
        a = sorted(self.asks.items())
        return b, a

    def top(self) -> tuple[int, int, int, int]:
        return self.bid, self.bids[self.bid], self.ask, self.asks[self.ask]

    def depth_usd(self, band: float = 0.001) -> tuple[float, float]:
        mid = (self.bid + self.ask) / 2
        lo, hi = mid * (1 - band), mid * (1 + band)
        b = sum(t * q for t, q in self.bids.items() if t >= lo) / 100
        a = sum(t * q for t, q in self.asks.items() if t <= hi) / 100
        return b, a
