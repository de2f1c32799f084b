"""Market-data sanity: which decoded values may be used, and the count of those that may not (pure).

The codecs parse; these rules decide. :class:`MarketSanity` holds the *reference price* and the
per-venue, per-kind drop counters; :class:`feeds.pipeline.MarketPipeline` calls it for every
event it would publish, live and in replay alike, so both drop exactly the same events.

Rules (a dropped event is counted under its venue and kind and never published):

* ``trade``: price finite, > 0 and inside the band; qty finite and > 0.
* ``liquidation``: the same, and the notional finite and > 0.
* ``funding``: rate and APR finite, interval finite and > 0.
* ``mark``: a funding event whose mark or index price (0 = not known) is not finite and > 0 or
  lies outside the band: the whole event is dropped, counted as ``mark``.
* ``oi``: both OI figures finite and > 0; the notional finite and >= 0 (0 = no mark known), and the
  price it implies (notional / one-side OI) inside the band.
* ``book``: a book top whose best bid is not below its best ask (crossed or locked). It is not
  dropped: it is published so that the guards block on it (``book crossed``), and the venue's book
  is resynced. Book *levels* are checked where they are decoded (:data:`SaneLevel`): a diff or
  snapshot with a level whose price is not finite and > 0 or whose quantity is not finite and
  >= 0 is malformed, and the book is resynced.

Where the checks run: the pipeline applies them to every event it would publish; a codec that
merges values into a state of its own (Bybit tickers) applies them before merging and returns a
:class:`~core.models.BadData` instead, which the pipeline counts the same way. A number that does
not parse as a finite number in a Bybit or OKX frame makes the frame malformed (counted as
``frame``), as the codecs always did.

The band is ``reference × (1 ± band_pct/100)``. The reference is the latest primary book mid
(always), or an accepted mark price of the same asset that is not older than it (by event time).
It applies to prices of the same asset (``SOLUSDT``, ``SOL-USDC-SWAP``: SOL) at most
``reference_max_age_s`` away from it in event time; otherwise only the finite/positive rules
apply (a replay with neither a book nor marks cannot be band-checked, nor can a market of another
asset). The good path of a primary trade is one chained comparison (``lo < px < hi`` and the
reference's expiry): no allocation, no call.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Final, Literal

import msgspec

if TYPE_CHECKING:
    from core.config_schema import FeedsConfig

Kind = Literal["trade", "mark", "funding", "oi", "liquidation", "book"]
"""What a dropped event was; the pipeline adds ``frame`` (frames a codec could not parse)."""

DEFAULT_BAND_PCT: Final = 10.0
DEFAULT_REFERENCE_MAX_AGE_S: Final = 10.0
BURST_GAP_NS: Final = 10_000_000_000
"""Drops of one venue and kind less than this apart (receive time) are one burst: logged once."""

_INF: Final = math.inf
_MAX: Final = 1.7976931348623157e308  # the largest finite float (msgspec bounds must be finite)

LevelPrice = Annotated[float, msgspec.Meta(gt=0, le=_MAX)]
LevelQty = Annotated[float, msgspec.Meta(ge=0, le=_MAX)]
SaneLevel = tuple[LevelPrice, LevelQty]
"""One book level as a decoder may accept it: price finite and > 0, quantity finite and >= 0 (0
removes the level). A decoder typed with it rejects a bad level in C, at no cost per level; a NaN
price would otherwise corrupt the book's sorted keys."""


def sane_levels(levels: Iterable[tuple[str, str]] | Iterable[tuple[float, float]]
                ) -> list[tuple[float, float]]:
    """Wire levels (``[["price", "qty"], ...]``, parsed as ``float()`` parses them) as floats, with
    the :data:`SaneLevel` rules; raises :class:`ValueError` naming the first bad one. For the rare
    paths (REST snapshots, frames the float decoder rejected)."""
    out: list[tuple[float, float]] = []
    for p, q in levels:
        px, qty = float(p), float(q)
        if not (0.0 < px < _INF and 0.0 <= qty < _INF):
            raise ValueError(f"level ({p!r}, {q!r}): price must be > 0 and qty >= 0, both finite")
        out.append((px, qty))
    return out


def base_asset(symbol: str) -> str:
    """``SOLUSDT`` -> ``SOL``, ``SOL-USDC-SWAP`` -> ``SOL``: what a band around one market's price
    may be compared with."""
    s = symbol.upper()
    if "-" in s:
        return s.partition("-")[0]
    for quote in ("USDT", "USDC", "BUSD", "FDUSD", "USD"):
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)]
    return s


class MarketSanity:
    """The reference price, the band around it, and the drop counters by venue and kind.

    The reference is about one asset (:attr:`asset`, the primary market's, :meth:`adopt`): events
    of another asset (a recording or a test mixing markets) get the finite/positive rules only."""

    __slots__ = ("_assets", "_bursts", "asset", "band", "dropped", "hi", "lo", "max_age_ms", "ref",
                 "ref_ts", "ref_until")

    def __init__(self, band_pct: float = DEFAULT_BAND_PCT,
                 reference_max_age_s: float = DEFAULT_REFERENCE_MAX_AGE_S) -> None:
        if not 0.0 < band_pct <= 100.0:
            raise ValueError(f"band_pct: must be in (0, 100], got {band_pct!r}")
        if not 0.0 < reference_max_age_s < _INF:
            raise ValueError(f"reference_max_age_s: must be a positive number, got {reference_max_age_s!r}")
        self.band = band_pct / 100.0
        self.max_age_ms = int(reference_max_age_s * 1000)
        self.asset = ""  # the asset the reference prices ("": not known yet)
        self._assets: dict[str, str] = {}  # symbol -> base asset
        self._clear()
        #: venue -> kind -> events dropped
        self.dropped: dict[str, dict[str, int]] = {}
        self._bursts: dict[tuple[str, str], int] = {}  # (venue, kind) -> receive ns of the last drop

    @classmethod
    def of(cls, feeds: FeedsConfig) -> MarketSanity:
        """The rules with the ``[feeds]`` band and reference age."""
        return cls(feeds.price_band_pct, feeds.price_reference_max_age_s)

    # ------------------------------------------------------------------ reference
    def _clear(self) -> None:
        """No reference: the band is (0, inf), i.e. finite and positive, on the fast path too."""
        self.ref = math.nan
        self.ref_ts = 0
        self.lo = 0.0
        self.hi = _INF
        self.ref_until: float = _INF  # event time after which the reference no longer counts

    def adopt(self, asset: str) -> None:
        """The asset of the primary market; another one than before drops the reference."""
        if asset != self.asset:
            self.asset = asset
            self._clear()

    def asset_of(self, symbol: str) -> str:
        asset = self._assets.get(symbol)
        if asset is None:
            asset = self._assets[symbol] = base_asset(symbol)
        return asset

    def set_reference(self, px: float, ts: int) -> None:
        """Centre the band on ``px`` (a sane book mid of the primary market) as of event time ``ts``."""
        if not 0.0 < px < _INF:
            return
        self.ref = px
        self.ref_ts = ts
        self.lo = px * (1.0 - self.band)
        self.hi = px * (1.0 + self.band)
        self.ref_until = ts + self.max_age_ms

    def offer_mark(self, px: float, ts: int, symbol: str) -> None:
        """An accepted mark price: the reference when it is of the reference's asset (the first
        asset seen when no primary market is known yet) and not older than the reference."""
        asset = self.asset_of(symbol)
        if not self.asset:
            self.adopt(asset)
        if asset == self.asset and ts >= self.ref_ts:
            self.set_reference(px, ts)

    def _banded(self, ts: int, symbol: str) -> bool:
        """The band applies: the symbol prices the reference's asset, and the reference is at most
        its max age away from ``ts`` (either way: a replay may mix eras)."""
        return self.ref_ts - self.max_age_ms <= ts <= self.ref_until and self.asset_of(symbol) == self.asset

    def in_band(self, px: float, ts: int, symbol: str) -> bool:
        """``px`` is finite, > 0 and, when the band applies, inside it (:meth:`price_problem`)."""
        return self.price_problem("price", px, ts, symbol) == ""

    def band_text(self) -> str:
        return f"outside {self.lo:.6g}..{self.hi:.6g} (reference {self.ref:.6g} +/- {self.band * 100:g} %)"

    # ------------------------------------------------------------------ rules
    def price_problem(self, what: str, px: float, ts: int, symbol: str) -> str:
        """Why ``px`` is unusable ("" = usable). The pipeline's fast path (``lo < px < hi`` and
        ``ts <= ref_until``, for the primary market) is a subset of the usable prices."""
        if not 0.0 < px < _INF:
            return f"{what} {px!r} is not a positive number"
        if not self.lo < px < self.hi and self._banded(ts, symbol):
            return f"{what} {px:.6g} {self.band_text()}"
        return ""

    def trade_problem(self, price: float, qty: float, ts: int, symbol: str) -> str:
        if not 0.0 < qty < _INF:
            return f"qty {qty!r} is not a positive number"
        return self.price_problem("price", price, ts, symbol)

    def liquidation_problem(self, price: float, qty: float, notional: float, ts: int, symbol: str) -> str:
        if not 0.0 < notional < _INF:
            return f"notional {notional!r} is not a positive number"
        return self.trade_problem(price, qty, ts, symbol)

    def funding_problem(self, rate: float, interval_hours: float, apr_pct: float) -> str:
        if not (math.isfinite(rate) and math.isfinite(apr_pct)):
            return f"rate {rate!r} / APR {apr_pct!r} is not a number"
        if not 0.0 < interval_hours < _INF:
            return f"interval {interval_hours!r} h is not a positive number"
        return ""

    def mark_problem(self, mark_px: float, index_px: float, ts: int, symbol: str) -> str:
        """Mark and index prices of a funding event; 0 means "not known" and passes."""
        if mark_px != 0.0 and (why := self.price_problem("mark", mark_px, ts, symbol)):
            return why
        if index_px != 0.0 and (why := self.price_problem("index", index_px, ts, symbol)):
            return why
        return ""

    def oi_problem(self, oi_base: float, oi_single: float, oi_notional: float, ts: int, symbol: str) -> str:
        if not (0.0 < oi_base < _INF and 0.0 < oi_single < _INF):
            return f"open interest {oi_base!r} / {oi_single!r} is not a positive number"
        if not 0.0 <= oi_notional < _INF:
            return f"OI notional {oi_notional!r} is not a number >= 0"
        if oi_notional > 0.0:
            return self.price_problem("OI notional / OI (mark)", oi_notional / oi_single, ts, symbol)
        return ""

    def ticker_problem(self, mark: float | None, index: float | None, oi: float | None,
                       oi_single: float | None, ts: int, symbol: str) -> tuple[Kind | None, str]:
        """The first bad value of a ticker update (``None`` = not in this update) with its kind,
        ``(None, "")`` when all are usable; for codecs that merge tickers into a state of their
        own (Bybit), so that a bad value never enters it."""
        for what, px in (("mark", mark), ("index", index)):
            if px is not None and (why := self.price_problem(what, px, ts, symbol)):
                return "mark", why
        for what, q in (("openInterest", oi), ("singleOpenInterest", oi_single)):
            if q is not None and not 0.0 < q < _INF:
                return "oi", f"{what} {q!r} is not a positive number"
        return None, ""

    # ------------------------------------------------------------------ counters
    def count(self, venue: str, kind: str, recv_ns: int) -> bool:
        """Count one dropped event; True when it starts a burst (the caller logs it then)."""
        by_kind = self.dropped.get(venue)
        if by_kind is None:
            by_kind = self.dropped[venue] = {}
        by_kind[kind] = by_kind.get(kind, 0) + 1
        key = (venue, kind)
        last = self._bursts.get(key)
        self._bursts[key] = recv_ns
        return last is None or not 0 <= recv_ns - last < BURST_GAP_NS

    def dropped_of(self, venue: str) -> dict[str, int]:
        """A copy of one venue's counters (empty when nothing was dropped)."""
        return dict(self.dropped.get(venue, ()))

    def total(self) -> int:
        return sum(n for by_kind in self.dropped.values() for n in by_kind.values())


def dropped_by_venue(feeds: Iterable[tuple[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Feed statuses' ``dropped`` counters (``(feed name, counters)`` pairs) by venue: every feed of
    a venue (``binance.public``, ``binance.market``) carries the venue's counters, published at
    slightly different times, so the largest count of each kind wins."""
    out: dict[str, dict[str, int]] = {}
    for name, dropped in feeds:
        for kind, n in dropped.items():
            by_kind = out.setdefault(name.partition(".")[0], {})
            if isinstance(n, int) and n > by_kind.get(kind, 0):
                by_kind[kind] = n
    return out


def dropped_text(by_venue: Mapping[str, Mapping[str, int]]) -> str:
    """``binance trade 3, book 1 | bybit mark 2`` ("" when nothing was dropped)."""
    return " | ".join(f"{venue} " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
                      for venue, kinds in sorted(by_venue.items()) if kinds)
