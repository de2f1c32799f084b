"""Sans-I/O codec for Binance USDⓈ-M futures market data.

Feed it websocket frames (combined-stream envelopes ``{"stream": .., "data": {..}}`` or bare event
payloads) with :meth:`BinanceCodec.feed_ws` and REST bodies with :meth:`BinanceCodec.feed_http`;
both return core models and never raise.

* ``aggTrade`` / ``trade`` → :class:`~core.models.Trade`. ``m: true`` means the buyer was the maker,
  so the aggressor sold (:attr:`Side.SELL`). Non-``MARKET`` raw trades (insurance fund, ADL) are
  ignored.
* ``depthUpdate`` (``@depth@100ms``, ``@depth@0ms``, ...) and REST ``/fapi/v1/depth`` snapshots →
  :class:`~core.book.BinanceBookSync` per symbol → :class:`BookTop` / :class:`ResyncNeeded`.
  Combined-stream depth frames are first decoded with their levels parsed to floats in C
  (``strict=False``: numeric strings, and also plain JSON numbers, are accepted there); a frame
  that decoder rejects goes through the strict path like every other frame.
* ``bookTicker`` → :class:`~core.models.BookTicker` (``update_id`` = ``u``). With
  :attr:`BinanceCodec.drop_book_ticker` set (the pipeline sets it while nobody listens to the
  book-ticker topic) the frame is decoded and validated exactly as before and counted the same
  (``decoded``, ``ignored`` or ``malformed``), but no model is built: nothing would consume it.
* ``forceOrder`` → :class:`~core.models.Liquidation`. ``o.S`` is the side of the liquidation
  *order*: a SELL order closes a LONG position. Despite the ``!forceOrder@arr`` stream name, each
  message carries a single order object, and Binance pushes only the *latest* liquidation per
  symbol per 1000 ms window, so counts and volumes derived from this stream are a lower bound.
* ``markPriceUpdate`` and REST ``/fapi/v1/premiumIndex``, ``/fapi/v1/openInterest``,
  ``/fapi/v1/fundingInfo`` → :class:`~core.models.Funding` / :class:`~core.models.OpenInterest`
  (:mod:`feeds.binance.derivatives`: the funding interval from ``fundingInfo``, OI notional at
  the mark, never 0).
* ``kline`` / ``continuous_kline`` events, REST ``exchangeInfo`` bodies and subscription replies
  (``{"result": null, "id": 1}``) are recognised and counted as ``stats.ignored``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import msgspec

from core.book import BinanceBookSync, Levels
from core.models import BookTicker, Liquidation, MarketEvent, Side, Trade
from core.sanity import sane_levels
from feeds.base import CodecStats
from feeds.binance import fast
from feeds.binance.derivatives import BinanceDerivatives, path_of

if TYPE_CHECKING:
    from feeds.binance._fast import FrameDecoder
from feeds.binance.messages import (
    AggTradeMsg,
    BookTickerMsg,
    ContinuousKlineMsg,
    DepthEnvelope,
    DepthSnapshotMsg,
    DepthUpdateFloatMsg,
    DepthUpdateMsg,
    Envelope,
    ForceOrderMsg,
    KlineMsg,
    MarkPriceMsg,
    Probe,
    RestProbe,
    TradeMsg,
    WsEvent,
)

VENUE = "binance"
_SELL = Side.SELL
_BUY = Side.BUY
_KNOWN_EVENTS = frozenset({"depthUpdate", "aggTrade", "trade", "bookTicker", "forceOrder", "markPriceUpdate"})
_IGNORED_EVENTS = frozenset({"kline", "continuous_kline"})

_env_decoder = msgspec.json.Decoder(Envelope)
_bare_decoder = msgspec.json.Decoder(WsEvent)
_probe_decoder = msgspec.json.Decoder(Probe)
_snapshot_decoder = msgspec.json.Decoder(DepthSnapshotMsg)
_rest_probe_decoder = msgspec.json.Decoder(RestProbe)
# Depth frames (the bulk of the bytes) are tried first with levels decoded straight to floats; a
# frame it rejects (anything but numeric strings and integers where Binance sends them) takes the
# strict path below, so malformed frames are classified exactly as before.
_depth_decoder = msgspec.json.Decoder(DepthEnvelope, strict=False)
_DEPTH_B = b"@depth"
_DEPTH_S = "@depth"
# the stream of a combined-stream frame, from its head: ("solusdt", "depth") for solusdt@depth@100ms
_STREAM = re.compile(rb'"stream"\s*:\s*"([A-Za-z0-9_!]*)@([A-Za-z]+)')


class BinanceCodec:
    """Binance USDⓈ-M futures codec; one local book per symbol (``symbols=None`` accepts all)."""

    venue = VENUE

    def __init__(self, symbols: Iterable[str] | None = None, default_symbol: str | None = None,
                 *, compiled: bool = True) -> None:
        self.stats = CodecStats()
        self.symbols: frozenset[str] | None = (
            None if symbols is None else frozenset(s.upper() for s in symbols)
        )
        self.default_symbol = default_symbol.upper() if default_symbol else None
        self.books: dict[str, BinanceBookSync] = {}
        self._bare_first = False  # try the bare-payload decoder first (adapts to the connection)
        self._drop_book_ticker = False
        # the compiled hot path (see feeds/binance/fast.py): canonical frames of the hot kinds; every
        # other frame, and everything when it is not built, takes the msgspec path below
        self._ext = fast.compiled if compiled else None
        self.fast: FrameDecoder | None = self._ext.FrameDecoder(self) if self._ext is not None else None
        self.derivs = BinanceDerivatives(self._accept, self.stats)  # open interest and funding

    @property
    def drop_book_ticker(self) -> bool:
        """Validate and count bookTicker frames but build no model (nobody listens)."""
        return self._drop_book_ticker

    @drop_book_ticker.setter
    def drop_book_ticker(self, value: bool) -> None:
        self._drop_book_ticker = value
        if self.fast is not None:
            self.fast.drop_book_ticker = value

    # --- books --------------------------------------------------------------------------------

    def book(self, symbol: str) -> BinanceBookSync | None:
        """The book sync for ``symbol`` (created on first use), ``None`` if the symbol is filtered out."""
        sync = self.books.get(symbol)
        if sync is None:
            if self.symbols is not None and symbol not in self.symbols:
                return None
            book = self._ext.Book() if self._ext is not None else None
            sync = self.books[symbol] = BinanceBookSync(symbol, VENUE, book=book)
        return sync

    def _book_call(self, sync: BinanceBookSync, out: list[MarketEvent], gaps: int, resyncs: int,
                   malformed: int) -> list[MarketEvent]:
        st = self.stats
        st.gaps += sync.gaps - gaps
        st.resyncs += sync.resyncs - resyncs
        if sync.malformed != malformed:
            st.note_malformed(f"{sync.symbol}: unparseable depth level")
            st.malformed += sync.malformed - malformed - 1
        return out

    # --- websocket ----------------------------------------------------------------------------

    def feed_ws(self, raw: bytes | str, recv_ns: int) -> list[MarketEvent]:
        if self.fast is not None:
            done = self.fast.frame(raw, recv_ns)  # counted there
            if done is not None:
                return done
        st = self.stats
        st.frames += 1
        rc = raw.__class__
        if (rc is bytes and raw.find(_DEPTH_B, 0, 48) >= 0) or (  # type: ignore[arg-type]
                rc is str and raw.find(_DEPTH_S, 0, 48) >= 0):  # type: ignore[arg-type]
            try:
                return self._depth(_depth_decoder.decode(raw).data)
            except msgspec.DecodeError:
                pass  # the strict path decides
        try:
            msg: WsEvent = (_bare_decoder.decode(raw) if self._bare_first
                            else _env_decoder.decode(raw).data)
        except msgspec.DecodeError:
            try:
                msg = _env_decoder.decode(raw).data if self._bare_first else _bare_decoder.decode(raw)
                self._bare_first = not self._bare_first
            except msgspec.DecodeError:
                return self._classify(raw)
        cls = msg.__class__
        if cls is TradeMsg or cls is AggTradeMsg:  # the hot path: inline, no isinstance chain
            t: TradeMsg | AggTradeMsg = msg  # type: ignore[assignment]
            sym = t.s
            wanted = self.symbols is None or sym in self.symbols
            if not wanted or (cls is TradeMsg and t.X != "MARKET"):  # type: ignore[union-attr]
                st.ignored += 1
                return []
            try:
                ev = Trade(VENUE, sym, t.T, float(t.p), float(t.q), _SELL if t.m else _BUY,
                           str(t.t if cls is TradeMsg else t.a), recv_ns)  # type: ignore[union-attr]
            except ValueError as exc:
                st.note_malformed(f"{cls.__name__}: {exc}")
                return []
            st.decoded += 1
            return [ev]
        if cls is BookTickerMsg:  # the most frequent frame: inline too
            bt: BookTickerMsg = msg  # type: ignore[assignment]
            if self.symbols is not None and bt.s not in self.symbols:
                st.ignored += 1
                return []
            try:
                if self.drop_book_ticker:  # the same checks and counts, no model (nobody listens)
                    float(bt.b), float(bt.B), float(bt.a), float(bt.A)
                    st.decoded += 1
                    return []
                tick = BookTicker(VENUE, bt.s, bt.T or bt.E, bt.u, float(bt.b), float(bt.B), float(bt.a),
                                  float(bt.A))
            except ValueError as exc:
                st.note_malformed(f"{cls.__name__}: {exc}")
                return []
            st.decoded += 1
            return [tick]
        if cls is DepthUpdateMsg:
            return self._depth(msg)  # type: ignore[arg-type]
        try:
            return self._event(msg, recv_ns)
        except ValueError as exc:  # a number field that is not a number
            st.note_malformed(f"{cls.__name__}: {exc}")
            return []

    def _depth(self, d: DepthUpdateMsg | DepthUpdateFloatMsg) -> list[MarketEvent]:
        if d.__class__ is DepthUpdateMsg:  # wire strings: checked here (the float decoder checks its own)
            sync = self.books.get(d.s) or self.book(d.s)
            if sync is None:
                self.stats.ignored += 1
                return []
            try:
                bids, asks = sane_levels(d.b), sane_levels(d.a)
            except (ValueError, TypeError) as exc:
                g, r, m = sync.gaps, sync.resyncs, sync.malformed
                self.stats.note_malformed(f"{d.s}: bad depth level: {exc}")
                return self._book_call(sync, sync.invalidate(f"bad depth level: {exc}"), g, r, m)
            return self._depth_levels(d.s, d.U, d.u, d.pu, d.T or d.E, bids, asks)
        return self._depth_levels(d.s, d.U, d.u, d.pu, d.T or d.E, d.b, d.a)

    def _depth_levels(self, symbol: str, first_id: int, final_id: int, prev_id: int, ts: int,
                      bids: Levels, asks: Levels) -> list[MarketEvent]:
        """One depth diff with sane levels (also called by the compiled path with its parsed ones:
        canonical decimals, prices > 0)."""
        st = self.stats
        sync = self.books.get(symbol) or self.book(symbol)
        if sync is None:
            st.ignored += 1
            return []
        g, r, m = sync.gaps, sync.resyncs, sync.malformed
        st.decoded += 1
        out = sync.on_diff(first_id, final_id, prev_id, ts, bids, asks)
        if sync.gaps != g or sync.resyncs != r or sync.malformed != m:
            return self._book_call(sync, out, g, r, m)
        return out

    def _accept(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols

    def _event(self, msg: WsEvent, recv_ns: int) -> list[MarketEvent]:
        st = self.stats
        ev: MarketEvent
        if isinstance(msg, ForceOrderMsg):
            o = msg.o
            if not self._accept(o.s):
                st.ignored += 1
                return []
            if o.S not in ("SELL", "BUY"):
                st.note_malformed(f"forceOrder side {o.S!r}")
                return []
            ap = float(o.ap)
            price = ap if ap > 0 else float(o.p)
            z = float(o.z)
            qty = z if z > 0 else float(o.q)
            ev = Liquidation(VENUE, o.s, o.T, "long" if o.S == "SELL" else "short", price, qty,
                             price * qty, recv_ns)
        elif isinstance(msg, MarkPriceMsg):
            if not self._accept(msg.s):
                st.ignored += 1
                return []
            out = self.derivs.mark_price(msg)
            st.decoded += 1
            return out
        elif isinstance(msg, KlineMsg | ContinuousKlineMsg):
            st.ignored += 1
            return []
        else:  # pragma: no cover - the union is exhaustive
            st.note_unknown(type(msg).__name__)
            return []
        st.decoded += 1
        return [ev]

    def _lost_diff(self, symbol: str | None, why: str) -> list[MarketEvent]:
        """A depth diff of ``symbol`` (None: of any book) was lost to a garbage frame: resync its
        book now instead of serving it until the next diff shows the gap."""
        out: list[MarketEvent] = []
        for sync in list(self.books.values()) if symbol is None else [self.books.get(symbol)]:
            if sync is not None:
                g, r, m = sync.gaps, sync.resyncs, sync.malformed
                out.extend(self._book_call(sync, sync.invalidate(why), g, r, m))
        return out

    def _classify(self, raw: bytes | str) -> list[MarketEvent]:
        """A frame neither typed decoder accepted: ignored, unknown or malformed (a malformed frame
        that was, or may have been, a depth diff resyncs the book it belonged to)."""
        st = self.stats
        try:
            p = _probe_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            st.note_malformed(f"undecodable frame: {exc}")
            head = raw[:96]
            stream = _STREAM.search(head.encode() if isinstance(head, str) else head)
            if stream is None:  # cannot tell what it was: it may have been a diff of any book
                return self._lost_diff(None, "undecodable frame")
            if stream.group(2) == b"depth":
                symbol = stream.group(1).decode("ascii", "replace").upper()
                return self._lost_diff(symbol, "undecodable frame")
            return []
        kind = p.data.e if p.data is not None else p.e
        if kind is not None:
            if kind in _IGNORED_EVENTS:
                st.ignored += 1
            elif kind in _KNOWN_EVENTS:
                st.note_malformed(f"bad {kind} frame")
                if kind == "depthUpdate":
                    sym = p.data.s if p.data is not None else p.s
                    return self._lost_diff(sym if isinstance(sym, str) else None, f"bad {kind} frame")
            else:
                st.note_unknown(kind)
            return []
        if p.result is not msgspec.UNSET or p.id is not msgspec.UNSET:
            st.ignored += 1  # subscription reply
            return []
        if p.code is not None:
            st.errors += 1
            st.last_error = f"binance error {p.code}: {p.msg}"
            return []
        if p.lastUpdateId is not None:  # a depth snapshot pushed through the ws path
            st.frames -= 1
            return self.feed_http("", raw, 0)
        st.note_unknown(f"stream:{p.stream}" if p.stream else "?")
        return []

    # --- REST ---------------------------------------------------------------------------------

    def feed_http(self, url: str, body: bytes | str, recv_ns: int) -> list[MarketEvent]:
        st = self.stats
        st.frames += 1
        parts = urlsplit(url)
        path = parts.path
        endpoint = path_of(path)
        if endpoint is not None:
            try:
                out = self.derivs.feed_http(endpoint, body)
            except (msgspec.DecodeError, ValueError) as exc:
                return self._bad_derivs_body(endpoint, body, exc)
            st.decoded += 1
            return out
        if path.endswith("/exchangeInfo"):
            st.ignored += 1
            return []
        if path and not path.endswith("/depth"):
            st.note_unknown(f"http:{path}")
            return []
        try:
            snap = _snapshot_decoder.decode(body)
        except msgspec.DecodeError:
            return self._classify_http(body)
        symbol = self._snapshot_symbol(parts.query)
        if symbol is None:
            st.note_malformed("depth snapshot without a symbol (no symbol= and no book awaiting one)")
            return []
        sync = self.book(symbol)
        if sync is None:
            st.ignored += 1
            return []
        g, r, m = sync.gaps, sync.resyncs, sync.malformed
        try:
            bids, asks = sane_levels(snap.bids), sane_levels(snap.asks)
        except (ValueError, TypeError) as exc:
            st.note_malformed(f"{symbol}: bad depth snapshot level: {exc}")
            return self._book_call(sync, [sync.reset(f"bad snapshot level: {exc}")], g, r, m)
        st.decoded += 1
        out = sync.on_snapshot(snap.lastUpdateId, bids, asks)
        return self._book_call(sync, out, g, r, m)

    def _snapshot_symbol(self, query: str) -> str | None:
        if query:
            vals = parse_qs(query).get("symbol")
            if vals:
                return vals[0].upper()
        if self.default_symbol:
            return self.default_symbol
        waiting = [s for s, b in self.books.items() if b.awaiting_snapshot]
        return waiting[0] if len(waiting) == 1 else None

    def _bad_derivs_body(self, endpoint: str, body: bytes | str, exc: Exception) -> list[MarketEvent]:
        """An error body (``{"code", "msg"}``) is counted as an error, anything else as malformed."""
        try:
            p = _rest_probe_decoder.decode(body)
        except msgspec.DecodeError:
            p = None
        if p is not None and p.code is not None:
            self.stats.errors += 1
            self.stats.last_error = f"binance error {p.code}: {p.msg} ({endpoint})"
        else:
            self.stats.note_malformed(f"{endpoint}: {exc}")
        return []

    def _classify_http(self, body: bytes | str) -> list[MarketEvent]:
        st = self.stats
        try:
            p = _rest_probe_decoder.decode(body)
        except msgspec.DecodeError as exc:
            st.note_malformed(f"undecodable REST body: {exc}")
            return []
        if p.code is not None:
            st.errors += 1
            st.last_error = f"binance error {p.code}: {p.msg}"
        elif p.lastUpdateId is not None:
            st.note_malformed("bad depth snapshot")
        elif p.symbols is not msgspec.UNSET or p.rateLimits is not msgspec.UNSET:
            st.ignored += 1  # exchangeInfo
        else:
            st.note_unknown("http:?")
        return []
