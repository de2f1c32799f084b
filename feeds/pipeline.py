"""Route raw frames to the venue codecs and publish what they decode on the bus.

Live transports and replay both call :meth:`MarketPipeline.on_ws` / :meth:`on_http`, so recorded
traffic exercises exactly the live code path. The pipeline also owns the 1-minute bar builder
for the primary USDT perp and the USDT-vs-USDC basis.

Topic names are those of the architecture page; ``market:solusdt:*`` is the slot of the primary
USDT perp (``market.binance_symbol``), whichever symbol a recording carries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from core.bars import BarBuilder
from core.bus import Bus, Topics
from core.clock import EventClock
from core.funding import basis_bps
from core.models import (
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
from feeds.base import Codec
from feeds.binance.codec import BinanceCodec
from feeds.bybit.codec import BybitCodec
from feeds.okx.codec import OkxCodec
from feeds.replay import Frame


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
    ) -> None:
        self.bus = bus
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
            "bybit": BybitCodec(symbols=[bybit_symbol] if bybit_symbol else None),
            "okx": OkxCodec(inst_ids=sorted(self.okx_insts) if self.okx_insts else None),
        }
        self.stats = PipelineStats()
        self._bars: BarBuilder | None = BarBuilder(binance_symbol) if binance_symbol else None
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
            self._bars = BarBuilder(symbol)
            self._apply_resume()
            self._bus_version = -1  # re-derive the drop flags
        return symbol == self.primary

    def _tick(self, venue: str, ts: int) -> None:
        self.stats.last_event_ms[venue] = ts
        if self.clock is not None:
            self.clock.advance(ts)

    def _on_trade(self, venue: str, ev: Trade) -> None:
        ts = ev.ts
        self.stats.last_event_ms[venue] = ts
        if self.clock is not None:
            self.clock.advance(ts)
        if venue == "binance":
            if ev.symbol != self.primary and not self._is_primary(ev.symbol):
                return
            self.stats.trades += 1
            self.bus.publish(Topics.TRADES, ev)
            self._last_usdt_px = ev.price
            closed = self._bars.add(ts, ev.price, ev.qty, ev.side is Side.SELL)  # type: ignore[union-attr]
            if closed is not None:
                self.bus.publish(Topics.BARS, closed)
        elif venue == "okx":
            if self.okx_inst is not None and ev.symbol != self.okx_inst:
                return
            self.bus.publish(Topics.USDC_TRADES, ev)
            self._last_usdc_px = ev.price
            self._publish_basis(ev.ts)

    def _on_book(self, venue: str, ev: BookTop) -> None:
        self._tick(venue, ev.timestamp)
        if ev.symbol == self.primary or self._is_primary(ev.symbol):
            self.stats.book_updates += 1
            self.bus.publish(Topics.BOOK, ev)

    def _on_book_ticker(self, venue: str, ev: BookTicker) -> None:
        if ev.symbol == self.primary or self._is_primary(ev.symbol):
            self.bus.publish(Topics.BOOK_TICKER, ev)

    def _on_liquidation(self, venue: str, ev: Liquidation) -> None:
        self._tick(venue, ev.ts)
        if self._accepts(venue, ev.symbol):
            self.bus.publish(Topics.LIQUIDATIONS, ev)

    def _on_funding(self, venue: str, ev: Funding) -> None:
        self._tick(venue, ev.ts)
        if self._accepts(venue, ev.symbol):
            self.bus.publish(Topics.FUNDING, ev)

    def _on_open_interest(self, venue: str, ev: OpenInterest) -> None:
        if self._accepts(venue, ev.symbol):
            self.bus.publish(Topics.OPEN_INTEREST, ev)

    def _on_resync(self, venue: str, ev: ResyncNeeded) -> None:
        self.stats.resync_requests += 1
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
