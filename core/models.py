"""Typed market-data models carried on the bus.

All prices are quote-currency floats parsed from the venue's decimal strings (a float parsed from
the same string compares equal, which is what the book contract needs); timestamps are integer
milliseconds since the epoch (venue event time) unless the name says ``_ns``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import msgspec


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class Venue(StrEnum):
    BINANCE = "binance"
    BYBIT = "bybit"
    OKX = "okx"
    DRIFT = "drift"


class Trade(msgspec.Struct, frozen=True, gc=False):
    """One print. ``side`` is the aggressor (taker) side."""

    venue: str
    symbol: str
    ts: int
    price: float
    qty: float
    side: Side
    trade_id: str = ""
    recv_ns: int = 0


class Bar(msgspec.Struct, gc=False):
    """A 1-minute bar; ``cvd`` and ``vwap`` are anchored at 00:00 UTC and taken through the bar's end."""

    symbol: str
    timestamp: int
    open: float
    high: float
    low: float
    close: float
    buy_vol: float
    sell_vol: float
    cvd: float
    vwap: float
    trades: int
    closed: bool = False


class BookTop(msgspec.Struct, frozen=True, gc=False):
    """Top of the local book and USD depth within 10 bps of mid, after one applied diff."""

    venue: str
    symbol: str
    timestamp: int
    update_id: int
    bid_px: float
    bid_qty: float
    ask_px: float
    ask_qty: float
    spread_bps: float
    bid_usd: float
    ask_usd: float


class BookTicker(msgspec.Struct, frozen=True, gc=False):
    """Venue-reported best bid/offer (Binance ``bookTicker``); ``update_id`` is the book's ``u``."""

    venue: str
    symbol: str
    timestamp: int
    update_id: int
    bid_px: float
    bid_qty: float
    ask_px: float
    ask_qty: float


class Liquidation(msgspec.Struct, frozen=True, gc=False):
    """A forced order. ``side`` is the side of the *liquidated position* (long or short)."""

    venue: str
    symbol: str
    ts: int
    side: Literal["long", "short"]
    price: float
    qty: float
    notional: float
    recv_ns: int = 0


class Funding(msgspec.Struct, frozen=True, gc=False):
    """Funding rate per interval with its own interval (never assumed 8 h) and the APR it implies."""

    venue: str
    symbol: str
    ts: int
    rate: float
    interval_hours: float
    apr_pct: float
    next_funding_ts: int = 0
    mark_px: float = 0.0
    index_px: float = 0.0


class OpenInterest(msgspec.Struct, frozen=True, gc=False):
    """Open interest. ``oi_base`` counts both sides (Bybit ``openInterest``); ``oi_single`` one side."""

    venue: str
    symbol: str
    ts: int
    oi_base: float
    oi_single: float
    oi_notional: float


class Basis(msgspec.Struct, frozen=True, gc=False):
    """USDC perp vs USDT perp: ``basis_bps = (usdc - usdt) / usdt * 1e4``."""

    ts: int
    usdt_px: float
    usdc_px: float
    basis_bps: float


class Instrument(msgspec.Struct, frozen=True, gc=False):
    """Static contract facts from REST (contract value, tick, step, funding interval)."""

    venue: str
    symbol: str
    ct_val: float = 1.0
    tick_size: float = 0.0
    step_size: float = 0.0
    funding_interval_min: int = 0


FeedState = Literal["connecting", "live", "stale", "down"]


class FeedStatus(msgspec.Struct, frozen=True, gc=False):
    """``dropped``: what the feed's *venue* sent that was not used, by kind (core/sanity.py: trade,
    mark, funding, oi, liquidation, book = crossed tops; frame = unparseable frames). Every feed of
    one venue carries the venue's counters."""

    feed: str
    state: FeedState
    ts: int
    last_msg_age_s: float | None = None
    messages: int = 0
    reconnects: int = 0
    resyncs: int = 0
    errors: int = 0
    detail: str = ""
    dropped: dict[str, int] = msgspec.field(default_factory=dict)


class DepthDiff(msgspec.Struct, frozen=True, gc=False):
    """A Binance diff-depth event: ``U`` first, ``u`` final, ``pu`` previous final update id."""

    symbol: str
    timestamp: int
    first_id: int
    final_id: int
    prev_final_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


class DepthSnapshot(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    last_update_id: int
    timestamp: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


class ResyncNeeded(msgspec.Struct, frozen=True, gc=False):
    """Emitted by a book when it lost sync and needs a fresh snapshot."""

    venue: str
    symbol: str
    reason: str


class BadData(msgspec.Struct, frozen=True, gc=False):
    """A value a codec refused before it could enter the codec's own state (e.g. a Bybit ticker's
    mark price): the pipeline counts it like the events it drops itself (core/sanity.py)."""

    venue: str
    symbol: str
    kind: str
    reason: str


MarketEvent = (
    Trade | BookTop | BookTicker | Liquidation | Funding | OpenInterest | Instrument | ResyncNeeded | BadData
)
