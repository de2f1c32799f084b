"""Route raw frames to the venue codecs and publish what they decode on the bus.

Live transports and replay both call :meth:`MarketPipeline.on_ws` / :meth:`on_http`, so recorded
traffic exercises exactly the live code path. The pipeline also owns the 1-minute bar builder
for the primary USDT perp and the USDT-vs-USDC basis.

Topic names are those of the architecture page; ``market:solusdt:*`` is the slot of the primary
USDT perp (``market.binance_symbol``), whichever symbol a recording carries.

Every trade, liquidation, funding and open-interest event of the configured symbols passes the
rules of :mod:`core.sanity` before it is published: a bad one is dropped (not published, and it
does not move the event clock), counted by venue and kind (:meth:`MarketPipeline.dropped`, shown
in feed health and ``status``) and logged once per burst. A crossed or locked primary book top is
counted and still published, so the guards block on it while the book resyncs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from core.bars import BarBuilder
from core.bus import Bus, Topics
from core.clock import EventClock
from core.funding import basis_bps
from core.models import (
    BadData,
    Bar,
    Basis,
    BookTicker,
    BookTop,
    Funding,
    Instrument,
    Liquidation,
    OpenInterest,
    ResyncNeeded,
    Side,
    Trade,
)
from core.sanity import MarketSanity, base_asset
from feeds.base import Codec
from feeds.binance import fast
from feeds.binance.codec import BinanceCodec
from feeds.bybit.codec import BybitCodec
from feeds.okx.codec import OkxCodec
from feeds.replay import Frame

log = logging.getLogger(__name__)
_INF = float("inf")
_TS_LIMIT = 1 << 62  # ms; a trade time outside [0, this) is garbage


@dataclass(slots=True)
class PipelineStats:
    resync_requests: int = 0
    trades: int = 0
    book_updates: int = 0
    last_event_ms: dict[str, int] = field(default_factory=dict)
    last_frame_ns: dict[str, int] = field(default_factory=dict)


class MarketPipeline:
    """Frames in, core models on the bus out.

    ``binance_symbol=None`` locks the primary symbol to the first Binance symbol seen (replay of
    arbitrary recordings); live runs pass the configured symbol.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        binance_symbol: str | None = "SOLUSDT",
        bybit_symbol: str | None = "SOLUSDT",
        okx_usdc_inst: str | None = "SOL-USDC-SWAP",
        okx_usdt_inst: str | None = "SOL-USDT-SWAP",
        clock: EventClock | None = None,
        on_resync: Callable[[ResyncNeeded], None] | None = None,
        sanity: MarketSanity | None = None,
    ) -> None:
        self.bus = bus
        self.sanity = sanity if sanity is not None else MarketSanity()
        if binance_symbol:
            self.sanity.adopt(base_asset(binance_symbol))
        self.clock = clock
        self.primary = binance_symbol
        self.bybit_symbol = bybit_symbol
        self.okx_inst = okx_usdc_inst
        # every configured OKX instrument (liquidations, OI, funding); None = whatever the codec keeps
        self.okx_insts: frozenset[str] | None = (
            frozenset(i for i in (okx_usdc_inst, okx_usdt_inst) if i) if okx_usdc_inst else None)
        self.on_resync = on_resync
        self._binance = BinanceCodec()
        self.codecs: dict[str, Codec] = {
            "binance": self._binance,
            "bybit": BybitCodec(symbols=[bybit_symbol] if bybit_symbol else None, sanity=self.sanity),
            "okx": OkxCodec(inst_ids=sorted(self.okx_insts) if self.okx_insts else None),
        }
        self.stats = PipelineStats()
        self._bars: BarBuilder | None = self._bar_builder(binance_symbol) if binance_symbol else None
        self._last_usdt_px = 0.0
        self._last_usdc_px = 0.0
        self._routes: dict[type, Callable[[str, Any], None]] = {
            Trade: self._on_trade,
            BookTop: self._on_book,
            BookTicker: self._on_book_ticker,
            Liquidation: self._on_liquidation,
            Funding: self._on_funding,
            OpenInterest: self._on_open_interest,
            ResyncNeeded: self._on_resync,
            Instrument: self._on_instrument,
            BadData: self._on_bad_data,
            Bar: self._on_folded_bar,
        }
        self._bus_version = -1  # the bus's listener set the drop flags were derived from
        self._resume: list[Bar] = []  # stored bars of the primary symbol, for its bar builder

    def _update_drops(self) -> None:
        """Let the codecs skip building models nobody consumes: Binance book tickers while nothing
        listens to the book-ticker topic (once the primary symbol is known: the first book ticker
        may be what locks it). Frames are still decoded, validated and counted (feed health)."""
        self._bus_version = self.bus.version
        self._binance.drop_book_ticker = (self.primary is not None
                                          and not self.bus.has_listeners(Topics.BOOK_TICKER))
        # compiled path, nobody listening to trades and no event clock to advance (replay of bars,
        # book, ...): primary trades go straight into the bar builder, only closed bars come back
        # With an event clock, the same (trades published and the clock advanced from there) only
        # while the feeder gives its consumer control after every frame that moved the clock
        # (``dec.routes``: see FrameFeeder).
        dec, ext = self._binance.fast, fast.compiled
        if dec is not None and ext is not None:
            bars = self._bars
            if self.primary is None or not isinstance(bars, ext.Bars):
                dec.set_fold(None, "", None, None)
            elif self.clock is None and not self.bus.has_listeners(Topics.TRADES):
                dec.set_fold(bars, self.primary, self.stats.last_event_ms, self._fold_flush,
                             sanity=self.sanity)
            elif self.clock is not None and dec.routes is not None:
                dec.set_fold(bars, self.primary, self.stats.last_event_ms, self._fold_flush_routed,
                             self.clock.advance, self.bus.publish, Topics.TRADES, self.sanity)
            else:
                dec.set_fold(None, "", None, None)

    @staticmethod
    def _bar_builder(symbol: str) -> BarBuilder:
        ext = fast.compiled
        return ext.Bars(symbol) if ext is not None else BarBuilder(symbol)

    def _fold_flush(self, n: int, last_px: float) -> None:
        """What ``_on_trade`` counts, for ``n`` trades the compiled path folded into the bars."""
        self.stats.trades += n
        self._last_usdt_px = last_px
        published = self.bus.published
        published[Topics.TRADES.name] = published.get(Topics.TRADES.name, 0) + n

    def _fold_flush_routed(self, n: int, last_px: float) -> None:
        """The same for trades the compiled path folded and published itself."""
        self.stats.trades += n
        self._last_usdt_px = last_px

    def _on_folded_bar(self, venue: str, bar: Bar) -> None:
        self.bus.publish(Topics.BARS, bar)

    # -- input -----------------------------------------------------------------------------
    def on_ws(self, venue: str, raw: bytes | str, recv_ns: int) -> None:
        codec = self.codecs.get(venue)
        if codec is None:
            return
        self.stats.last_frame_ns[venue] = recv_ns
        if self._bus_version != self.bus.version:
            self._update_drops()
        out = codec.feed_ws(raw, recv_ns)
        if out:
            routes = self._routes
            for ev in out:
                routes[ev.__class__](venue, ev)

    def on_http(self, venue: str, url: str, body: bytes | str, recv_ns: int) -> None:
        codec = self.codecs.get(venue)
        if codec is None:
            return
        self.stats.last_frame_ns[venue] = recv_ns
        routes = self._routes
        for ev in codec.feed_http(url, body, recv_ns):
            routes[ev.__class__](venue, ev)

    def resume_bars(self, day_bars: list[Bar]) -> None:
        """Continue the day's CVD/VWAP (and a bar left open at shutdown) from stored bars of the
        primary symbol; applied when its bar builder exists (at once, or when replay locks it)."""
        self._resume = list(day_bars)
        self._apply_resume()

    def _apply_resume(self) -> None:
        if self._bars is not None and self._resume:
            if self._resume[-1].symbol == self._bars.symbol:
                self._bars.resume(self._resume)
            self._resume = []

    def flush(self) -> None:
        """Publish the partial last bar (end of a replay)."""
        if self._bars is not None:
            bar = self._bars.current()
            if bar is not None:
                self.bus.publish(Topics.BARS, bar)
            self._bars.flush()

    # -- routing (one handler per model type; the trade path is the hot one) ---------------
    def _is_primary(self, symbol: str) -> bool:
        if self.primary is None:
            self.primary = symbol
            self.sanity.adopt(base_asset(symbol))
            self._bars = self._bar_builder(symbol)
            self._apply_resume()
            self._bus_version = -1  # re-derive the drop flags
        return symbol == self.primary

    def _tick(self, venue: str, ts: int) -> None:
        self.stats.last_event_ms[venue] = ts
        if self.clock is not None:
            self.clock.advance(ts)

    def _on_trade(self, venue: str, ev: Trade) -> None:
        ts = ev.ts
        if venue == "binance":
            if ev.symbol != self.primary and not self._is_primary(ev.symbol):
                self._tick(venue, ts)
                return
            if not 0 <= ts < _TS_LIMIT:  # no bar builder can place it
                self._drop(venue, "trade", f"trade time {ts} out of range")
                return
            san = self.sanity
            px = ev.price
            if not (san.lo < px < san.hi and ts <= san.ref_until and 0.0 < ev.qty < _INF) and (
                    not self._trade_ok(venue, ev)):
                return
            self.stats.last_event_ms[venue] = ts
            if self.clock is not None:
                self.clock.advance(ts)
            self.stats.trades += 1
            self.bus.publish(Topics.TRADES, ev)
            self._last_usdt_px = ev.price
            closed = self._bars.add(ts, ev.price, ev.qty, ev.side is Side.SELL)  # type: ignore[union-attr]
            if closed is not None:
                self.bus.publish(Topics.BARS, closed)
        elif venue == "okx":
            if self.okx_inst is not None and ev.symbol != self.okx_inst:
                self._tick(venue, ts)
                return
            if not self._trade_ok(venue, ev):
                return
            self._tick(venue, ts)
            self.bus.publish(Topics.USDC_TRADES, ev)
            self._last_usdc_px = ev.price
            self._publish_basis(ev.ts)
        else:
            self._tick(venue, ts)

    def _on_book(self, venue: str, ev: BookTop) -> None:
        self._tick(venue, ev.timestamp)
        if ev.symbol == self.primary or self._is_primary(ev.symbol):
            self.stats.book_updates += 1
            bid, ask = ev.bid_px, ev.ask_px
            if bid < ask:
                self.sanity.set_reference((bid + ask) * 0.5, ev.timestamp)
            else:  # published all the same: the guards block on it ("book crossed") until a sane top
                self._drop(venue, "book", f"book crossed: best bid {bid:.6g} >= best ask {ask:.6g}")
            self.bus.publish(Topics.BOOK, ev)

    def _on_book_ticker(self, venue: str, ev: BookTicker) -> None:
        if ev.symbol == self.primary or self._is_primary(ev.symbol):
            self.bus.publish(Topics.BOOK_TICKER, ev)

    def _on_liquidation(self, venue: str, ev: Liquidation) -> None:
        if not self._accepts(venue, ev.symbol):
            self._tick(venue, ev.ts)
            return
        why = self.sanity.liquidation_problem(ev.price, ev.qty, ev.notional, ev.ts, ev.symbol)
        if why:
            self._drop(venue, "liquidation", why)
            return
        self._tick(venue, ev.ts)
        self.bus.publish(Topics.LIQUIDATIONS, ev)

    def _on_funding(self, venue: str, ev: Funding) -> None:
        if not self._accepts(venue, ev.symbol):
            self._tick(venue, ev.ts)
            return
        san = self.sanity
        why = san.funding_problem(ev.rate, ev.interval_hours, ev.apr_pct)
        if why:
            self._drop(venue, "funding", why)
            return
        why = san.mark_problem(ev.mark_px, ev.index_px, ev.ts, ev.symbol)
        if why:
            self._drop(venue, "mark", why)
            return
        if ev.mark_px > 0.0:
            san.offer_mark(ev.mark_px, ev.ts, ev.symbol)
        self._tick(venue, ev.ts)
        self.bus.publish(Topics.FUNDING, ev)

    def _on_open_interest(self, venue: str, ev: OpenInterest) -> None:
        if self._accepts(venue, ev.symbol):
            why = self.sanity.oi_problem(ev.oi_base, ev.oi_single, ev.oi_notional, ev.ts, ev.symbol)
            if why:
                self._drop(venue, "oi", why)
                return
            self.bus.publish(Topics.OPEN_INTEREST, ev)

    # -- sanity (core/sanity.py decides; the pipeline counts, logs and drops) ---------------
    def _trade_ok(self, venue: str, ev: Trade) -> bool:
        why = self.sanity.trade_problem(ev.price, ev.qty, ev.ts, ev.symbol)
        if why:
            self._drop(venue, "trade", why)
            return False
        return True

    def _on_bad_data(self, venue: str, ev: BadData) -> None:
        self._drop(venue, ev.kind, f"{ev.symbol}: {ev.reason}")

    def _drop(self, venue: str, kind: str, why: str) -> None:
        """Count a bad event of ``venue``; log the first of a burst (receive time)."""
        san = self.sanity
        if san.count(venue, kind, self.stats.last_frame_ns.get(venue, 0)):
            n = san.dropped[venue][kind]
            log.warning("market data: dropped a %s from %s: %s (%d so far; the rest of this burst is "
                        "counted, not logged)", kind, venue, why, n)

    def dropped(self, venue: str) -> dict[str, int]:
        """What ``venue`` sent that was not used, by kind: the events :mod:`core.sanity` dropped
        (``book`` = crossed book tops) and ``frame``, the frames its codec could not parse."""
        out = self.sanity.dropped_of(venue)
        codec = self.codecs.get(venue)
        if codec is not None and codec.stats.malformed:
            out["frame"] = codec.stats.malformed
        return out

    def _on_resync(self, venue: str, ev: ResyncNeeded) -> None:
        self.stats.resync_requests += 1
        if ev.symbol == self.primary:  # the guards block until the next book top
            self.bus.publish(Topics.BOOK_RESYNC, ev)
        if self.on_resync is not None:
            self.on_resync(ev)

    def _on_instrument(self, venue: str, ev: Instrument) -> None:
        pass

    def _accepts(self, venue: str, symbol: str) -> bool:
        if venue == "binance":
            return self.primary is None or symbol == self.primary
        if venue == "bybit":
            return self.bybit_symbol is None or symbol == self.bybit_symbol
        if venue == "okx":
            return self.okx_insts is None or symbol in self.okx_insts
        return True

    def _publish_basis(self, ts: int) -> None:
        if self._last_usdt_px > 0 and self._last_usdc_px > 0:
            usdt, usdc = self._last_usdt_px, self._last_usdc_px
            self.bus.publish(
                Topics.BASIS, Basis(ts=ts, usdt_px=usdt, usdc_px=usdc, basis_bps=basis_bps(usdt, usdc))
            )


def drive(pipeline: MarketPipeline, frames: Iterable[Frame]) -> int:
    """Feed recorded frames to the pipeline (the replay path); returns the number of frames fed."""
    n = 0
    on_ws, on_http = pipeline.on_ws, pipeline.on_http
    for f in frames:
        kind = f.kind
        if kind == "recv":
            on_ws(f.venue, f.data, f.ts_ns)
        elif kind == "http":
            on_http(f.venue, f.url, f.data, f.ts_ns)
        n += 1
    return n
