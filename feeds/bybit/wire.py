"""Bybit V5 public websocket message shapes and number parsing (msgspec, typed).

Bybit sends decimals as strings and timestamps as ints or strings; unknown keys are ignored.
"""

from __future__ import annotations

import math

import msgspec


class Ticker(msgspec.Struct):
    """A linear ticker; every field but ``symbol`` may be absent from a delta."""

    symbol: str
    markPrice: str | None = None
    indexPrice: str | None = None
    openInterest: str | None = None
    singleOpenInterest: str | None = None
    fundingRate: str | None = None
    fundingIntervalHour: str | int | None = None
    nextFundingTime: str | int | None = None


class TickersResult(msgspec.Struct):
    category: str = ""
    items: list[Ticker] = msgspec.field(default_factory=list, name="list")


class TradeItem(msgspec.Struct):
    T: int | str
    s: str
    S: str
    v: str
    p: str
    i: str = ""


class LiquidationItem(msgspec.Struct):
    T: int | str
    s: str
    S: str
    v: str
    p: str


class WsFrame(msgspec.Struct):
    topic: str | None = None
    type: str | None = None
    ts: int | str | None = None
    data: msgspec.Raw = msgspec.Raw()
    op: str | None = None
    success: bool | None = None
    ret_msg: str = ""


FRAME = msgspec.json.Decoder(WsFrame)
TICKER = msgspec.json.Decoder(Ticker)
TRADES = msgspec.json.Decoder(list[TradeItem])
LIQS = msgspec.json.Decoder(list[LiquidationItem])
TICKERS_RESULT = msgspec.json.Decoder(TickersResult)

DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError)


def num(s: str | int | None) -> float | None:
    """A decimal string (or int) as float; ``None``/``""`` -> ``None``; garbage raises ValueError."""
    if s is None or s == "":
        return None
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"non-finite number {s!r}")
    return v


def req(s: str) -> float:
    v = num(s)
    if v is None:
        raise ValueError("missing number")
    return v


def ms(v: int | str | None) -> int:
    if v is None or v == "":
        return 0
    return int(v)
