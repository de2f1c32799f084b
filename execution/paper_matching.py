"""The paper venue's matching core: order records, market input (book, trades, mark, funding)
and the fill, queue and trigger logic. :class:`execution.paper.PaperVenue` adds the venue calls on
top; the model is documented there."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from core.clock import Clock
from core.models import BookTop, Funding, Side, Trade
from core.venue import (
    Fill,
    FillEvent,
    Order,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdate,
    TriggerCondition,
    VenueError,
    VenueEvent,
)
from execution.paper_book import (
    QTY_EPS,
    Top,
    better_or_equal,
    crosses,
    queue_ahead,
    strictly_crossed,
    walk,
)
from execution.paper_ledger import Ledger

DONE_KEEP = 10_000  # closed orders kept for lookups
_PX_EPS = 1e-9


class PaperVenueError(VenueError):
    """A refused call; ``reason`` is a stable code (``post_only_would_cross``, ``reduce_only``...)."""

    def __init__(self, reason: str, detail: str = "", *, retryable: bool = False) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason, retryable=retryable)
        self.reason = reason


@dataclass(slots=True)
class _Working:
    order_id: str
    req: OrderRequest
    status: OrderStatus
    seq: int
    ts: int
    active_from: int
    filled: float = 0.0
    notional: float = 0.0
    queue: float = 0.0

    @property
    def remaining(self) -> float:
        return max(0.0, self.req.size - self.filled)

    @property
    def resting(self) -> bool:
        """Working as a limit in the book."""
        t, s = self.req.type, self.status
        return (t == OrderType.LIMIT and s == OrderStatus.OPEN) or (
            t == OrderType.TRIGGER_LIMIT and s == OrderStatus.TRIGGERED
        )

    @property
    def armed(self) -> bool:
        """A trigger order waiting for its trigger."""
        return self.status == OrderStatus.OPEN and self.req.type in (
            OrderType.TRIGGER_MARKET,
            OrderType.TRIGGER_LIMIT,
        )

    def snapshot(self) -> Order:
        avg = self.notional / self.filled if self.filled > 0 else 0.0
        return Order(
            order_id=self.order_id,
            request=self.req,
            status=self.status,
            filled=self.filled,
            avg_price=avg,
            ts=self.ts,
        )


def _same_px(a: float, b: float) -> bool:
    return abs(a - b) <= _PX_EPS


class PaperMatcher:
    """State and matching of the paper venue (no venue calls; see :class:`execution.paper.PaperVenue`)."""

    def __init__(
        self,
        *,
        clock: Clock,
        maker_fee_bps: float,
        taker_fee_bps: float,
        tick_size: float,
        start_equity: float,
        funding: bool,
        latency_ms: int,
        slippage_ticks: float,
        queue_behind_factor: float,
        mark_from_mid: bool,
        max_walk_levels: int,
    ) -> None:
        if not tick_size > 0:
            raise ValueError(f"tick_size must be > 0, got {tick_size}")
        if latency_ms < 0 or slippage_ticks < 0 or queue_behind_factor < 0:
            raise ValueError("latency_ms, slippage_ticks and queue_behind_factor must be >= 0")
        if max_walk_levels < 1:
            raise ValueError(f"max_walk_levels must be >= 1, got {max_walk_levels}")
        self.clock = clock
        self.maker_fee_bps = maker_fee_bps
        self.taker_fee_bps = taker_fee_bps
        self.tick_size = tick_size
        self.start_equity = start_equity
        self.funding_enabled = funding
        self.latency_ms = latency_ms
        self.slippage_ticks = slippage_ticks
        self.queue_behind_factor = queue_behind_factor
        self.mark_from_mid = mark_from_mid
        self.max_walk_levels = max_walk_levels
        self._top: Top | None = None
        self._mark: float | None = None
        self._last_trade: float | None = None
        self._live: dict[str, _Working] = {}
        self._done: OrderedDict[str, _Working] = OrderedDict()
        self._ledger = Ledger(start_equity)
        self._fills: list[Fill] = []
        self._events: list[VenueEvent] = []
        self._next_id = 1
        self._seq = 0
        self._funding_rate: float | None = None
        self._next_funding_ts = 0

    def mark_price(self) -> float | None:
        """The price used for unrealized PnL: the mark, else the book mid, else the last trade."""
        if self._mark is not None:
            return self._mark
        if self._top is not None:
            return self._top.mid
        return self._last_trade

    # ------------------------------------------------------------------ market input

    def on_book(self, book: BookTop) -> None:
        """Top of book: re-estimate queues, fill resting orders the book has crossed."""
        if not (book.bid_px > 0 and book.ask_px > 0):
            return
        top = Top(book.bid_px, book.bid_qty, book.ask_px, book.ask_qty)
        self._top = top
        ts = book.timestamp
        if not self._live:  # nothing working: no queue to re-estimate, no trigger to fire
            if self.mark_from_mid:
                self._mark_idle(top.mid)
            return
        for side in ("buy", "sell"):
            side_t: OrderSide = "buy" if side == "buy" else "sell"
            ws = self._resting(side_t, ts)
            if not ws:  # nothing resting on this side (often: the stop is a trigger)
                continue
            budget = top.touch(side_t)[1]
            touch_px, touch_qty = top.same_touch(side_t)
            for w in ws:
                px = w.req.price or 0.0
                if strictly_crossed(side_t, px, top):
                    if budget > QTY_EPS:
                        budget -= self._fill(w, px, min(budget, w.remaining), True, ts)
                    w.queue = 0.0
                elif _same_px(px, touch_px):
                    w.queue = min(w.queue, touch_qty)
                elif better_or_equal(side_t, px, touch_px):
                    w.queue = 0.0
        if self.mark_from_mid:
            self.on_mark(top.mid, ts)

    def on_trade(self, trade: Trade) -> None:
        """A print: fills resting orders it traded through, or at their price beyond their queue."""
        self._last_trade = trade.price
        if not self._live:
            return
        ts, tpx = trade.ts, trade.price
        for side_t in ("buy", "sell"):
            side: OrderSide = "buy" if side_t == "buy" else "sell"
            hits_level = trade.side == (Side.SELL if side == "buy" else Side.BUY)
            budget = trade.qty
            for w in self._resting(side, ts):
                px = w.req.price or 0.0
                if _same_px(px, tpx):
                    if not hits_level:
                        break
                    excess = trade.qty - w.queue
                    w.queue = max(0.0, w.queue - trade.qty)
                    if excess > QTY_EPS and budget > QTY_EPS:
                        budget -= self._fill(w, px, min(excess, budget, w.remaining), True, ts)
                elif better_or_equal(side, px, tpx):  # traded through
                    if budget > QTY_EPS:
                        budget -= self._fill(w, px, min(budget, w.remaining), True, ts)
                    w.queue = 0.0
                else:
                    break  # price priority: the rest are worse

    def _mark_idle(self, price: float) -> None:
        """:meth:`on_mark` with no live order: only the mark is kept."""
        if price > 0 and math.isfinite(price):
            self._mark = price

    def on_mark(self, price: float, ts: int) -> None:
        """Mark price: fires trigger orders, values the position."""
        if not (price > 0 and math.isfinite(price)):
            return
        self._mark = price
        for w in sorted((w for w in self._live.values() if w.armed), key=lambda w: w.seq):
            if w.order_id in self._live and ts >= w.active_from and self._fires(w, price):
                self._fire(w, ts)

    def on_funding(self, f: Funding) -> None:
        """Funding (only when enabled): pays the announced rate at each funding time."""
        if not self.funding_enabled:
            return
        px = f.mark_px if f.mark_px > 0 else self.mark_price()
        if f.next_funding_ts <= 0:
            if px is not None:
                self._ledger.accrue_funding(f.rate, px)
            return
        due = self._next_funding_ts
        if (
            self._funding_rate is not None
            and due
            and f.ts >= due
            and f.next_funding_ts > due
            and px is not None
        ):
            self._ledger.accrue_funding(self._funding_rate, px)
        self._funding_rate, self._next_funding_ts = f.rate, f.next_funding_ts

    def _reducible(self, market: str, side: OrderSide) -> float:
        pos = self._ledger.size(market)
        return -pos if side == "buy" and pos < 0 else pos if side == "sell" and pos > 0 else 0.0

    def _touch(self, side: OrderSide) -> tuple[float, float] | None:
        if self._top is not None:
            return self._top.touch(side)
        ref = self._mark if self._mark is not None else self._last_trade
        return (ref, math.inf) if ref is not None else None

    def _new(self, req: OrderRequest, now: int, *, emit: bool) -> _Working:
        oid = f"paper-{self._next_id}"
        self._next_id += 1
        self._seq += 1
        w = _Working(oid, req, OrderStatus.OPEN, self._seq, now, now + self.latency_ms)
        self._live[oid] = w
        if emit:
            self._emit(w, "accepted")
        return w

    # ------------------------------------------------------------------ internals: matching

    def _resting(self, side: OrderSide, ts: int) -> list[_Working]:
        """Resting limits on ``side`` that see market data at ``ts``, in price-time priority."""
        ws = [w for w in self._live.values() if w.req.side == side and ts >= w.active_from and w.resting]
        if len(ws) > 1:
            sign = -1.0 if side == "buy" else 1.0
            ws.sort(key=lambda w: (sign * (w.req.price or 0.0), w.seq))
        return ws

    @staticmethod
    def _fires(w: _Working, mark: float) -> bool:
        trig = w.req.trigger_price or 0.0
        if w.req.trigger_condition == TriggerCondition.ABOVE:
            return mark > trig
        return mark < trig

    def _fire(self, w: _Working, ts: int) -> None:
        w.status, w.ts = OrderStatus.TRIGGERED, ts
        self._emit(w, "triggered")
        if w.req.type == OrderType.TRIGGER_MARKET:
            self._take_ioc(w, ts, None)
        else:
            self._work_limit(w, ts)

    def _work_limit(self, w: _Working, now: int) -> None:
        """A limit starts working at its price: takes what crosses, rests the rest in the queue."""
        price = w.req.price or 0.0
        if crosses(w.req.side, price, self._top):
            self._take(w, now, price)
        if w.order_id in self._live:
            w.queue = queue_ahead(w.req.side, price, self._top, self.queue_behind_factor)

    def _take_ioc(self, w: _Working, now: int, limit: float | None) -> None:
        """Immediate-or-cancel taker (market, fired trigger-market): the unfilled rest is cancelled."""
        self._take(w, now, limit)
        if w.order_id in self._live:
            if w.req.reduce_only and self._reducible(w.req.market, w.req.side) <= QTY_EPS:
                reason = "reduce_only"
            else:
                reason = "price_limit" if limit is not None else "no_liquidity"
            self._close(w, OrderStatus.CANCELLED, reason, now)

    def _take(self, w: _Working, now: int, limit: float | None) -> None:
        allowed = w.remaining
        if w.req.reduce_only:
            allowed = min(allowed, self._reducible(w.req.market, w.req.side))
            if allowed <= QTY_EPS:
                self._close(w, OrderStatus.CANCELLED, "reduce_only", now)
                return
        touch = self._touch(w.req.side)
        if touch is None:
            return
        chunks = walk(
            w.req.side,
            allowed,
            touch[0],
            touch[1],
            self.tick_size,
            self.slippage_ticks,
            limit,
            self.max_walk_levels,
        )
        for px, q in chunks:
            if w.order_id not in self._live:
                break
            self._fill(w, px, q, False, now)

    def _fill(self, w: _Working, px: float, q: float, maker: bool, ts: int) -> float:
        """Fill up to ``q`` of ``w`` at ``px``; returns the quantity filled."""
        rem = w.remaining
        q = min(q, rem)
        if rem - q <= QTY_EPS:
            q = rem
        if w.req.reduce_only:
            r = self._reducible(w.req.market, w.req.side)
            if r <= QTY_EPS:
                self._close(w, OrderStatus.CANCELLED, "reduce_only", ts)
                return 0.0
            if q > r + QTY_EPS:
                q = r
        if q <= QTY_EPS:
            return 0.0
        fee = px * q * (self.maker_fee_bps if maker else self.taker_fee_bps) / 1e4
        side = w.req.side
        self._ledger.apply_fill(w.req.market, q if side == "buy" else -q, px, fee)
        w.filled += q
        w.notional += px * q
        w.ts = ts
        if w.req.size - w.filled <= QTY_EPS:
            w.filled = w.req.size
        fill = Fill(
            order_id=w.order_id,
            client_tag=w.req.client_tag,
            market=w.req.market,
            side=side,
            price=px,
            size=q,
            fee=fee,
            maker=maker,
            ts=ts,
        )
        self._fills.append(fill)
        self._events.append(FillEvent(fill=fill))
        if w.filled >= w.req.size:
            self._close(w, OrderStatus.FILLED, "filled", ts)
        else:
            self._emit(w, "partial_fill")
        return q

    def _close(self, w: _Working, status: OrderStatus, reason: str, ts: int) -> None:
        w.status, w.ts = status, ts
        self._live.pop(w.order_id, None)
        self._done[w.order_id] = w
        if len(self._done) > DONE_KEEP:
            self._done.popitem(last=False)
        self._emit(w, reason)

    def _emit(self, w: _Working, reason: str) -> None:
        self._events.append(OrderUpdate(order=w.snapshot(), reason=reason))
