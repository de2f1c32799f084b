"""Binance USDⓈ-M open interest and funding (sans-I/O), for :class:`~feeds.binance.codec.BinanceCodec`.

* ``<symbol>@markPrice`` (``markPriceUpdate``: mark ``p``, index ``i``, funding rate ``r``, next
  funding time ``T``) and REST ``GET /fapi/v1/premiumIndex`` (``markPrice``, ``indexPrice``,
  ``lastFundingRate``, ``nextFundingTime``, ``time``; an object, or a list without ``symbol=``)
  -> :class:`~core.models.Funding`, once the symbol's funding interval is known.
* REST ``GET /fapi/v1/fundingInfo`` lists ``fundingIntervalHours`` for the symbols whose funding
  parameters Binance adjusted; Binance documents every other USDⓈ-M perpetual as settling every
  8 h. So the interval is the listed one, or 8 h for a symbol absent from a received
  ``fundingInfo`` body; before any body arrives it is unknown and no funding is published (never
  an assumed interval).
* REST ``GET /fapi/v1/openInterest`` (``openInterest`` in base units, ``time``) ->
  :class:`~core.models.OpenInterest`: Binance reports the open contracts, one side, so
  ``oi_single = openInterest``, ``oi_base = 2 × oi_single`` (the both-sides figure) and
  ``oi_notional = oi_single × mark``. Before any mark is known the latest value per symbol is held
  and published with the first mark: never with a notional of 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from core.funding import funding_apr_pct
from core.models import Funding, MarketEvent, OpenInterest
from feeds.base import CodecStats, finite
from feeds.binance.messages import MarkPriceMsg

VENUE = "binance"
DEFAULT_INTERVAL_H = 8.0  # Binance: symbols not listed by fundingInfo settle every 8 h
PATHS = ("/fapi/v1/premiumIndex", "/fapi/v1/openInterest", "/fapi/v1/fundingInfo")


class PremiumIndex(msgspec.Struct):
    symbol: str
    markPrice: str
    time: int
    indexPrice: str = ""
    lastFundingRate: str = ""
    nextFundingTime: int = 0


class OpenInterestBody(msgspec.Struct):
    symbol: str
    openInterest: str
    time: int


class FundingInfoItem(msgspec.Struct):
    symbol: str
    fundingIntervalHours: float | None = None


_PREMIUM_ONE = msgspec.json.Decoder(PremiumIndex)
_PREMIUM_LIST = msgspec.json.Decoder(list[PremiumIndex])
_OI = msgspec.json.Decoder(OpenInterestBody)
_FUNDING_INFO = msgspec.json.Decoder(list[FundingInfoItem])


def path_of(path: str) -> str | None:
    """The derivatives endpoint ``path`` ends with, if any."""
    for p in PATHS:
        if path.endswith(p):
            return p
    return None


class BinanceDerivatives:
    """Marks, funding intervals and held open interest per symbol; ``accept`` filters symbols."""

    def __init__(self, accept: Callable[[str], bool], stats: CodecStats) -> None:
        self.accept = accept
        self.stats = stats
        self.intervals_h: dict[str, float] = {}
        self.info_seen = False
        self.marks: dict[str, float] = {}
        self.held_oi: dict[str, OpenInterestBody] = {}

    def interval_hours(self, symbol: str) -> float | None:
        listed = self.intervals_h.get(symbol)
        if listed is not None:
            return listed
        return DEFAULT_INTERVAL_H if self.info_seen else None

    # ------------------------------------------------------------------ websocket
    def mark_price(self, m: MarkPriceMsg) -> list[MarketEvent]:
        """A ``markPriceUpdate``; raises ValueError on a bad number."""
        mark = finite(m.p)
        index = finite(m.i) if m.i else 0.0
        rate = finite(m.r) if m.r else None
        return self._mark(m.s, mark, index, rate, m.T, m.E)

    def _mark(self, symbol: str, mark: float, index: float, rate: float | None, next_ts: int,
              ts: int) -> list[MarketEvent]:
        if not mark > 0:
            raise ValueError(f"mark price {mark!r}")
        self.marks[symbol] = mark
        out: list[MarketEvent] = []
        held = self.held_oi.pop(symbol, None)
        if held is not None:
            out.append(self._oi(held, mark))
        if rate is not None:  # "" for delivery contracts: no funding
            interval = self.interval_hours(symbol)
            if interval is not None:
                out.append(Funding(VENUE, symbol, ts, rate, interval, funding_apr_pct(rate, interval),
                                   next_funding_ts=next_ts, mark_px=mark, index_px=index))
        return out

    # ------------------------------------------------------------------ REST
    def feed_http(self, endpoint: str, body: bytes | str) -> list[MarketEvent]:
        """One REST body of ``endpoint`` (one of :data:`PATHS`); raises on a malformed body."""
        if endpoint == "/fapi/v1/fundingInfo":
            self._funding_info(_FUNDING_INFO.decode(body))
            return []
        if endpoint == "/fapi/v1/openInterest":
            oi = _OI.decode(body)
            if not self.accept(oi.symbol):
                return []
            if finite(oi.openInterest) < 0 or oi.time < 0:
                raise ValueError(f"bad open interest {oi!r}")
            mark = self.marks.get(oi.symbol)
            if mark is None:
                self.held_oi[oi.symbol] = oi  # published with the first mark
                return []
            return [self._oi(oi, mark)]
        stripped = body.lstrip()[:1]
        items = _PREMIUM_LIST.decode(body) if stripped in (b"[", "[") else [_PREMIUM_ONE.decode(body)]
        out: list[MarketEvent] = []
        for p in items:
            if not self.accept(p.symbol):
                continue
            rate = finite(p.lastFundingRate) if p.lastFundingRate else None
            index = finite(p.indexPrice) if p.indexPrice else 0.0
            out.extend(self._mark(p.symbol, finite(p.markPrice), index, rate, p.nextFundingTime, p.time))
        return out

    def _funding_info(self, items: list[FundingInfoItem]) -> None:
        intervals: dict[str, float] = {}
        for it in items:
            h = it.fundingIntervalHours
            if h is None:
                continue
            if not (math.isfinite(h) and h > 0):
                raise ValueError(f"{it.symbol}: fundingIntervalHours {h!r}")
            intervals[it.symbol] = float(h)
        self.intervals_h = intervals
        self.info_seen = True

    @staticmethod
    def _oi(oi: OpenInterestBody, mark: float) -> OpenInterest:
        single = finite(oi.openInterest)
        return OpenInterest(VENUE, oi.symbol, oi.time, 2.0 * single, single, single * mark)
