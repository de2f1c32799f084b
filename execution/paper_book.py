"""Pure pricing helpers of the paper venue: the top-of-book model, crossing, queue-ahead estimate,
post-only slide price and the walk-the-book slippage model. No state, no I/O.

Model (documented in :mod:`execution.paper`):

* only the top of book is known (best bid/ask and their quantities);
* a taker order fills ``touch_qty`` at the touch, the next ``touch_qty`` ``slippage_ticks`` ticks
  worse, and so on (one chunk of the touch quantity per ``slippage_ticks`` ticks of slippage),
  stopping at the order's limit price when it has one;
* the queue ahead of a resting order is the touch quantity when it joins the touch, zero when it
  improves on the touch (a new level), and ``behind_factor × touch qty`` when it rests behind the
  touch (the size of the levels in between is unknown, so a conservative estimate is used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.venue import OrderSide

QTY_EPS = 1e-9


@dataclass(slots=True)
class Top:
    """The known top of book."""

    bid_px: float
    bid_qty: float
    ask_px: float
    ask_qty: float

    @property
    def mid(self) -> float:
        return (self.bid_px + self.ask_px) / 2.0

    def touch(self, taker_side: OrderSide) -> tuple[float, float]:
        """The opposite touch (price, qty) a taker on ``taker_side`` trades against."""
        return (self.ask_px, self.ask_qty) if taker_side == "buy" else (self.bid_px, self.bid_qty)

    def same_touch(self, side: OrderSide) -> tuple[float, float]:
        """The touch (price, qty) a maker on ``side`` joins."""
        return (self.bid_px, self.bid_qty) if side == "buy" else (self.ask_px, self.ask_qty)


def round_to_tick(price: float, tick: float) -> float:
    """``price`` rounded to the nearest tick (and to 10 decimals, so ticks compare equal)."""
    return round(round(price / tick) * tick, 10)


def better_or_equal(side: OrderSide, a: float, b: float) -> bool:
    """Whether price ``a`` is at least as aggressive as ``b`` for an order on ``side``."""
    return a >= b if side == "buy" else a <= b


def crosses(side: OrderSide, price: float, top: Top | None) -> bool:
    """Whether a limit at ``price`` would take liquidity (buy ≥ best ask, sell ≤ best bid)."""
    if top is None:
        return False
    return price >= top.ask_px if side == "buy" else price <= top.bid_px


def strictly_crossed(side: OrderSide, price: float, top: Top) -> bool:
    """Whether the book's opposite touch is strictly through a resting order's price."""
    return top.ask_px < price if side == "buy" else top.bid_px > price


def slide_price(side: OrderSide, top: Top, tick: float) -> float:
    """Post-only *slide*: one tick behind the opposite touch (best ask − tick for a buy)."""
    if side == "buy":
        return round_to_tick(top.ask_px - tick, tick)
    return round_to_tick(top.bid_px + tick, tick)


def queue_ahead(side: OrderSide, price: float, top: Top | None, behind_factor: float) -> float:
    """Estimated base quantity resting ahead of a new maker order at ``price``."""
    if top is None:
        return 0.0
    touch_px, touch_qty = top.same_touch(side)
    if math.isclose(price, touch_px, rel_tol=0.0, abs_tol=1e-9):
        return touch_qty
    if better_or_equal(side, price, touch_px):
        return 0.0  # improves on the touch: a new level with nobody ahead
    return behind_factor * touch_qty


def walk(
    side: OrderSide,
    size: float,
    touch_px: float,
    touch_qty: float,
    tick: float,
    slippage_ticks: float,
    limit: float | None = None,
    max_levels: int = 100,
) -> list[tuple[float, float]]:
    """Fills ``(price, qty)`` of a taker of ``size`` walking a book known only at its touch.

    Chunk ``k`` (of ``touch_qty`` each) fills at ``touch ± k × slippage_ticks × tick``; a
    ``touch_qty`` that is not positive or finite, or no slippage, means unlimited liquidity at the
    touch. Chunks beyond ``limit`` or beyond ``max_levels`` chunks are not taken (the rest of
    ``size`` is left unfilled: the modelled book is exhausted).
    """
    out: list[tuple[float, float]] = []
    left = size
    finite = touch_qty > 0 and math.isfinite(touch_qty) and slippage_ticks > 0
    chunk = touch_qty if finite else math.inf
    sign = 1.0 if side == "buy" else -1.0
    k = 0
    while left > QTY_EPS and k < max_levels:
        px = round_to_tick(touch_px + sign * k * slippage_ticks * tick, tick) if k else touch_px
        if px <= 0 or (limit is not None and not better_or_equal(side, limit, px)):
            break
        q = min(left, chunk)
        out.append((px, q))
        left -= q
        k += 1
    return out
