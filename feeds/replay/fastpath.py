"""Fast Binance trade decoding and the trades -> 1-minute bars hot loop (replay / backtests).

The decoder reads only what a bar needs from a combined-stream ``trade`` or ``aggTrade`` envelope
(``{"stream":..,"data":{"e":"trade","s":..,"p":"..","q":"..","T":..,"m":..}}``) or a bare event,
with a typed msgspec decoder:

* ``e`` is a msgspec tag (``trade`` / ``aggTrade``), checked in C: any other event (depth,
  bookTicker, markPrice...) is rejected without allocating anything;
* lax mode parses the decimal strings ``p``/``q`` to floats in C (the same float ``float(str)``
  gives; the tests check that on every trade of the BTCUSDT recording);
* fields are renamed to generic attributes (``ts``, ``price``, ``qty``, ``sell``, ``symbol``), so a
  :class:`FastTrade` is a :class:`core.bars.TradeRow` and feeds :meth:`BarBuilder.add_rows` directly.

The Binance codec can reuse :func:`decode_trade` / :data:`TRADE_ENVELOPE_DECODER` for its trade branch.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import msgspec

from core.bars import BarBuilder
from core.models import Bar

_RENAME = {"ts": "T", "price": "p", "qty": "q", "sell": "m", "symbol": "s", "trade_id": "t"}


class FastTrade(msgspec.Struct, gc=False, tag_field="e", tag="trade", rename=_RENAME):
    """A Binance ``trade`` event: ``ts`` = ``T`` (ms), ``sell`` = ``m`` (true: the aggressor sold)."""

    price: float
    qty: float
    ts: int
    sell: bool
    symbol: str = ""
    trade_id: int = 0


class FastAggTrade(FastTrade, tag="aggTrade", rename=_RENAME):
    """A Binance ``aggTrade`` event (same fields; it has no ``t``, so ``trade_id`` stays 0)."""


class FastTradeEnvelope(msgspec.Struct, gc=False):
    data: FastTrade | FastAggTrade


class BarTrade(msgspec.Struct, gc=False, tag_field="e", tag="trade", rename=_RENAME):
    """Only what a bar needs (no symbol): the decoder of :class:`TradeBarPipeline` with ``symbol=None``."""

    price: float
    qty: float
    ts: int
    sell: bool


class BarAggTrade(BarTrade, tag="aggTrade", rename=_RENAME):
    pass


class BarTradeEnvelope(msgspec.Struct, gc=False):
    data: BarTrade | BarAggTrade


TRADE_ENVELOPE_DECODER = msgspec.json.Decoder(FastTradeEnvelope, strict=False)
TRADE_DECODER = msgspec.json.Decoder(FastTrade | FastAggTrade, strict=False)
BAR_TRADE_ENVELOPE_DECODER = msgspec.json.Decoder(BarTradeEnvelope, strict=False)
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
BATCH = 4096


def decode_trade(frame: bytes | str) -> FastTrade | None:
    """One trade from a combined-stream envelope or a bare event; None if it is not a trade frame."""
    try:
        return TRADE_ENVELOPE_DECODER.decode(frame).data
    except _DECODE_ERRORS:
        try:
            t: FastTrade = TRADE_DECODER.decode(frame)
        except _DECODE_ERRORS:
            return None
        return t


class TradeBarPipeline:
    """Feed raw Binance trade frames, get closed 1-minute bars: decode + :class:`BarBuilder`.

    ``symbol=None`` accepts every trade frame (the caller pre-filters, as the benchmark does);
    otherwise trades of other symbols are counted in ``skipped``. Frames that are not trades
    (depth, bookTicker, garbage) are counted in ``skipped`` too and never raise.
    """

    __slots__ = ("builder", "skipped", "symbol", "trades")

    def __init__(self, symbol: str | None = None, builder: BarBuilder | None = None) -> None:
        self.symbol = symbol
        self.builder = builder if builder is not None else BarBuilder(symbol or "")
        self.trades = 0
        self.skipped = 0

    def feed(self, frame: bytes | str) -> Bar | None:
        """One frame; returns the bar it closed, if any."""
        t = decode_trade(frame)
        if t is None or (self.symbol is not None and t.symbol != self.symbol):
            self.skipped += 1
            return None
        self.trades += 1
        return self.builder.add(t.ts, t.price, t.qty, t.sell)

    def feed_many(self, frames: Iterable[bytes]) -> list[Bar]:
        """Many frames (the hot loop, decoded in batches of :data:`BATCH`); returns the closed bars."""
        symbol = self.symbol
        if symbol is None:
            return self._feed_any(frames)
        decode = TRADE_ENVELOPE_DECODER.decode
        add_rows = self.builder.add_rows
        out: list[Bar] = []
        rows: list[FastTrade] = []
        append = rows.append
        skipped = 0
        for frame in frames:
            try:
                t = decode(frame).data
            except _DECODE_ERRORS:
                t2 = decode_trade(frame)
                if t2 is None:
                    skipped += 1
                    continue
                t = t2
            if t.symbol != symbol:
                skipped += 1
                continue
            append(t)
            if len(rows) >= BATCH:
                out += add_rows(rows)
                self.trades += len(rows)
                rows.clear()
        if rows:
            out += add_rows(rows)
            self.trades += len(rows)
        self.skipped += skipped
        return out

    def _feed_any(self, frames: Iterable[bytes]) -> list[Bar]:
        """``feed_many`` without a symbol filter: the lean decoder (no symbol string allocated).

        Frames are decoded a chunk at a time with a list comprehension; a chunk holding a frame
        that is not an enveloped trade is redone frame by frame.
        """
        decode = BAR_TRADE_ENVELOPE_DECODER.decode
        add_rows = self.builder.add_rows
        out: list[Bar] = []
        it = iter(frames)
        while chunk := list(islice(it, BATCH)):
            try:
                rows: list[BarTrade | FastTrade] = [decode(f).data for f in chunk]
            except _DECODE_ERRORS:
                rows = []
                for f in chunk:
                    try:
                        rows.append(decode(f).data)
                    except _DECODE_ERRORS:
                        t = decode_trade(f)
                        if t is None:
                            self.skipped += 1
                        else:
                            rows.append(t)
            out += add_rows(rows)
            self.trades += len(rows)
        return out

    def finish(self) -> Bar | None:
        """Close and return the last partial bar (end of the data)."""
        return self.builder.flush()


def trades_to_bars(frames: Iterable[bytes], symbol: str | None = None) -> list[Bar]:
    """All bars of a frame sequence, the last (partial) bar included and marked closed."""
    pipe = TradeBarPipeline(symbol)
    bars = pipe.feed_many(frames)
    last = pipe.finish()
    if last is not None:
        bars.append(last)
    return bars
