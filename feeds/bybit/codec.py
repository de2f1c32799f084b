"""Bybit V5 public *linear* codec (sans-I/O): websocket frames and REST bodies -> core models.

Websocket (``wss://stream.bybit.com/v5/public/linear``):

* ``tickers.<SYM>``: one ``snapshot`` then ``delta`` messages that carry only the fields that
  changed. The codec keeps a merged state per symbol and, after each message, emits
  :class:`~core.models.Funding` when that message touched a funding input (``fundingRate``,
  ``fundingIntervalHour``, ``nextFundingTime``, ``markPrice``, ``indexPrice``) and the rate and
  interval are known, and :class:`~core.models.OpenInterest` when it touched an OI input
  (``openInterest``, ``singleOpenInterest``, ``markPrice``) and the OI is known. Funding uses the
  venue's own interval (``fundingIntervalHour``, else the instrument's ``fundingInterval``); it
  is never assumed to be 8 h.
  Open interest: ``oi_base`` = ``openInterest``, which Bybit counts on BOTH sides (longs + shorts);
  ``oi_single`` = ``singleOpenInterest`` (one side); ``oi_notional`` = ``oi_single × markPrice``,
  i.e. one side, as open interest is conventionally quoted.
  A ``snapshot`` without ``markPrice`` is a spot ticker (same topic name on the spot stream): it is
  counted as ignored and leaves the linear state alone.
* ``allLiquidation.<SYM>``: ``data`` is a list of ``{T, s, S, v, p}``; ``S`` is the side of the
  liquidated *position* (Bybit: "When you receive a Buy update, this means that a long position has
  been liquidated"), ``p`` the bankruptcy price, ``v`` the size in base units.
* ``publicTrade.<SYM>``: ``S`` is the taker side.
* ``orderbook.*``, ``kline.*`` and other known public topics are counted in ``stats.ignored``.
* op responses (``{"success": true, "op": "subscribe", ...}``, ping/pong) are handled; a failed
  op is counted in ``stats.errors`` with ``stats.last_error`` set.

REST bodies (see :mod:`feeds.bybit.rest`): ``/v5/market/open-interest``,
``/v5/market/funding/history``, ``/v5/market/tickers`` and ``/v5/market/instruments-info``
(``fundingInterval`` in minutes -> :class:`~core.models.Instrument`, remembered per symbol).
REST ``open-interest`` carries only ``openInterest``; it is taken as the same both-sides figure
as the ticker's, so ``oi_single = openInterest / 2``. Open interest is never published without a
mark price (its notional would be unknown): REST rows that arrive first are held (the latest
``MAX_HELD_OI``) and published, with their own timestamps, when the first mark arrives. Funding
history rows use the instrument's current interval (rows do not carry theirs); without a known
interval they are skipped and counted as an error, never assumed 8 h.

A ticker update with a mark or index price that :mod:`core.sanity` refuses (not > 0, or outside
the band around the pipeline's reference) or an OI that is not > 0 is refused whole before it is
merged: a :class:`~core.models.BadData` is returned instead, which the pipeline counts.

Feed one codec per connection: spot frames use the same topic names (``publicTrade.BTCUSDT``), and
only spot tickers can be told apart by their content.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from core.funding import funding_apr_pct
from core.models import BadData, Funding, Instrument, Liquidation, MarketEvent, OpenInterest, Side, Trade
from core.sanity import MarketSanity
from feeds.base import CodecStats
from feeds.bybit import rest, wire

VENUE = "bybit"
MAX_HELD_OI = 16

IGNORED_TOPICS = frozenset(
    {
        "orderbook",
        "kline",
        "kline_lt",
        "tickers_lt",
        "lt",
        "liquidation",
        "insurance",
        "adlAlert",
        "priceLimit",
        "rpi_orderbook",
    }
)
OK_OPS = frozenset({"subscribe", "unsubscribe", "ping", "pong", "auth"})


@dataclass(slots=True)
class TickerState:
    """Merged linear ticker fields of one symbol."""

    funding_rate: float | None = None
    interval_hours: float | None = None
    next_funding_ts: int = 0
    mark_px: float | None = None
    index_px: float | None = None
    oi: float | None = None
    single_oi: float | None = None


class BybitCodec:
    """Bybit V5 linear codec. ``symbols`` filters symbols (``None`` = every symbol)."""

    venue = VENUE

    def __init__(self, symbols: Iterable[str] | None = None, sanity: MarketSanity | None = None) -> None:
        self.symbols: frozenset[str] | None = None if symbols is None else frozenset(symbols)
        self.sanity = sanity if sanity is not None else MarketSanity()  # the pipeline's: its band
        self.stats = CodecStats()
        self.tickers: dict[str, TickerState] = {}
        self.instruments: dict[str, Instrument] = {}
        self.held_oi: dict[str, list[tuple[int, float]]] = {}  # REST (ts, openInterest) awaiting a mark

    def _wanted(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols

    # ------------------------------------------------------------------ websocket

    def feed_ws(self, raw: bytes | str, recv_ns: int) -> list[MarketEvent]:
        st = self.stats
        st.frames += 1
        try:
            frame = wire.FRAME.decode(raw)
            if frame.topic is not None:
                out = self._topic(frame, recv_ns)
            elif frame.op is not None:
                out = self._op(frame)
            else:
                st.note_unknown("frame")
                return []
        except wire.DECODE_ERRORS as exc:
            st.note_malformed(f"bybit ws: {type(exc).__name__}: {exc}")
            return []
        return out

    def _op(self, frame: wire.WsFrame) -> list[MarketEvent]:
        st = self.stats
        op = frame.op or ""
        if op not in OK_OPS:
            st.note_unknown(f"op:{op}")
            return []
        st.decoded += 1
        if frame.success is False:
            st.errors += 1
            st.last_error = f"bybit {op} failed: {frame.ret_msg or 'no message'}"
        return []

    def _topic(self, frame: wire.WsFrame, recv_ns: int) -> list[MarketEvent]:
        st = self.stats
        topic = frame.topic or ""
        kind, _, symbol = topic.partition(".")
        if kind in IGNORED_TOPICS:
            st.ignored += 1
            return []
        if kind not in ("tickers", "publicTrade", "allLiquidation"):
            st.note_unknown(f"topic:{kind}")
            return []
        if not self._wanted(symbol):
            st.ignored += 1
            return []
        if kind == "tickers":
            ticker = wire.TICKER.decode(frame.data)
            if frame.type == "snapshot" and ticker.markPrice is None:
                st.ignored += 1  # spot ticker (no derivative fields)
                return []
            out = self._apply_ticker(ticker, wire.ms(frame.ts), snapshot=frame.type == "snapshot")
        elif kind == "publicTrade":
            out = self._trades(wire.TRADES.decode(frame.data), recv_ns)
        else:
            out = self._liquidations(wire.LIQS.decode(frame.data), recv_ns)
        st.decoded += 1
        return out

    def _trades(self, items: list[wire.TradeItem], recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for t in items:
            if t.S not in ("Buy", "Sell"):
                raise ValueError(f"trade side {t.S!r}")
            if not self._wanted(t.s):
                continue
            side = Side.BUY if t.S == "Buy" else Side.SELL
            out.append(Trade(VENUE, t.s, wire.ms(t.T), wire.req(t.p), wire.req(t.v), side, t.i, recv_ns))
        return out

    def _liquidations(self, items: list[wire.LiquidationItem], recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for it in items:
            # S is the liquidated POSITION's side: Buy = a long was liquidated, Sell = a short.
            pos: Literal["long", "short"]
            if it.S == "Buy":
                pos = "long"
            elif it.S == "Sell":
                pos = "short"
            else:
                raise ValueError(f"liquidation side {it.S!r}")
            if not self._wanted(it.s):
                continue
            px, qty = wire.req(it.p), wire.req(it.v)
            out.append(Liquidation(VENUE, it.s, wire.ms(it.T), pos, px, qty, px * qty, recv_ns))
        return out

    def _apply_ticker(self, t: wire.Ticker, ts: int, *, snapshot: bool) -> list[MarketEvent]:
        # Parse everything first so a malformed message leaves the state untouched.
        rate, interval = wire.num(t.fundingRate), wire.num(t.fundingIntervalHour)
        mark, index = wire.num(t.markPrice), wire.num(t.indexPrice)
        oi, single = wire.num(t.openInterest), wire.num(t.singleOpenInterest)
        nxt = wire.ms(t.nextFundingTime) if t.nextFundingTime not in (None, "") else None
        if interval is not None and interval <= 0:
            raise ValueError(f"fundingIntervalHour {t.fundingIntervalHour!r}")
        kind, why = self.sanity.ticker_problem(mark, index, oi, single, ts, t.symbol)
        if kind is not None:  # refused whole: a bad value never enters the merged state
            return [BadData(VENUE, t.symbol, kind, why)]
        state = TickerState() if snapshot else self.tickers.get(t.symbol, TickerState())
        self.tickers[t.symbol] = state
        if rate is not None:
            state.funding_rate = rate
        if interval is not None:
            state.interval_hours = interval
        if nxt is not None:
            state.next_funding_ts = nxt
        if mark is not None:
            state.mark_px = mark
        if index is not None:
            state.index_px = index
        if oi is not None:
            state.oi = oi
        if single is not None:
            state.single_oi = single
        out: list[MarketEvent] = []
        if any(v is not None for v in (rate, interval, nxt, mark, index)):
            f = self._funding(t.symbol, state, ts)
            if f is not None:
                out.append(f)
        if mark is not None and t.symbol in self.held_oi:
            out.extend(self._oi_rows(t.symbol, self.held_oi.pop(t.symbol), mark))
        if any(v is not None for v in (oi, single, mark)):
            o = self._open_interest(t.symbol, state, ts)
            if o is not None:
                out.append(o)
        return out

    def interval_hours(self, symbol: str) -> float | None:
        """The symbol's funding interval: the ticker's own value, else the instrument's."""
        state = self.tickers.get(symbol)
        if state is not None and state.interval_hours is not None:
            return state.interval_hours
        inst = self.instruments.get(symbol)
        if inst is not None and inst.funding_interval_min > 0:
            return inst.funding_interval_min / 60.0
        return None

    def _funding(self, symbol: str, state: TickerState, ts: int) -> Funding | None:
        interval = self.interval_hours(symbol)
        if state.funding_rate is None or interval is None:
            return None
        return Funding(
            VENUE,
            symbol,
            ts,
            state.funding_rate,
            interval,
            funding_apr_pct(state.funding_rate, interval),
            next_funding_ts=state.next_funding_ts,
            mark_px=state.mark_px or 0.0,
            index_px=state.index_px or 0.0,
        )

    def _open_interest(self, symbol: str, state: TickerState, ts: int) -> OpenInterest | None:
        if state.oi is None or state.mark_px is None:
            return None  # no notional without a mark: missing, never 0
        # Bybit's openInterest counts both sides; when singleOpenInterest is absent (REST) take half.
        single = state.single_oi if state.single_oi is not None else state.oi / 2.0
        return OpenInterest(VENUE, symbol, ts, state.oi, single, single * state.mark_px)

    @staticmethod
    def _oi_rows(symbol: str, rows: list[tuple[int, float]], mark: float) -> list[MarketEvent]:
        # REST gives only openInterest (both sides, as in the ticker): one side is half
        return [OpenInterest(VENUE, symbol, ts, oi, oi / 2.0, oi / 2.0 * mark) for ts, oi in rows]

    # ------------------------------------------------------------------ REST

    def feed_http(self, url: str, body: bytes | str, recv_ns: int) -> list[MarketEvent]:
        st = self.stats
        st.frames += 1
        parts = urlsplit(url)
        path = parts.path.rstrip("/")
        query = parse_qs(parts.query)
        try:
            env = rest.ENVELOPE_DECODER.decode(body)
            if env.retCode != 0:
                kind = rest.kind_for_ret_code(env.retCode)
                st.errors += 1
                st.last_error = f"bybit {kind.value} retCode {env.retCode}: {env.retMsg} ({path})"
                return []
            ts = wire.ms(env.time)
            if path.endswith("/v5/market/instruments-info"):
                out = self._instruments(rest.INSTRUMENTS_DECODER.decode(env.result), query)
            elif path.endswith("/v5/market/tickers"):
                out = self._rest_tickers(wire.TICKERS_RESULT.decode(env.result), ts, query)
            elif path.endswith("/v5/market/open-interest"):
                out = self._rest_oi(rest.OI_DECODER.decode(env.result), query)
            elif path.endswith("/v5/market/funding/history"):
                out = self._rest_funding(rest.FUNDING_HISTORY_DECODER.decode(env.result))
            else:
                st.note_unknown(f"http:{path}")
                return []
        except wire.DECODE_ERRORS as exc:
            st.note_malformed(f"bybit http {path}: {type(exc).__name__}: {exc}")
            return []
        st.decoded += 1
        return out

    @staticmethod
    def _category(result_category: str, query: dict[str, list[str]]) -> str:
        return result_category or (query.get("category") or ["linear"])[0]

    def _instruments(self, res: rest.InstrumentsResult, query: dict[str, list[str]]) -> list[MarketEvent]:
        if self._category(res.category, query) not in ("linear", "inverse"):
            return []  # spot/option instruments share symbol names; this is the linear codec
        parsed: list[Instrument] = []
        for it in res.items:
            if not self._wanted(it.symbol):
                continue
            interval_min = int(it.fundingInterval) if it.fundingInterval not in (None, "") else 0
            tick = wire.num(it.priceFilter.tickSize) if it.priceFilter else None
            step = wire.num(it.lotSizeFilter.qtyStep) if it.lotSizeFilter else None
            parsed.append(Instrument(VENUE, it.symbol, 1.0, tick or 0.0, step or 0.0, interval_min))
        for inst in parsed:
            self.instruments[inst.symbol] = inst
        return list(parsed)

    def _rest_tickers(
        self, res: wire.TickersResult, ts: int, query: dict[str, list[str]]
    ) -> list[MarketEvent]:
        if self._category(res.category, query) not in ("linear", "inverse"):
            return []
        out: list[MarketEvent] = []
        for t in res.items:
            if self._wanted(t.symbol):
                out.extend(self._apply_ticker(t, ts, snapshot=False))
        return out

    def _rest_oi(self, res: rest.OpenInterestResult, query: dict[str, list[str]]) -> list[MarketEvent]:
        symbol = res.symbol or (query.get("symbol") or [""])[0]
        if not symbol or not self._wanted(symbol):
            return []
        state = self.tickers.get(symbol)
        mark = state.mark_px if state is not None else None
        # Bybit lists newest first; emit oldest first so consumers see time move forward.
        rows = [(wire.ms(it.timestamp), wire.req(it.openInterest))
                for it in sorted(res.items, key=lambda i: wire.ms(i.timestamp))]
        if mark is None:
            held = self.held_oi.setdefault(symbol, [])
            held.extend(rows)
            del held[:-MAX_HELD_OI]
            return []
        return self._oi_rows(symbol, rows, mark)

    def _rest_funding(self, res: rest.FundingHistoryResult) -> list[MarketEvent]:
        st = self.stats
        out: list[MarketEvent] = []
        missing: set[str] = set()
        for it in sorted(res.items, key=lambda i: wire.ms(i.fundingRateTimestamp)):
            if not self._wanted(it.symbol):
                continue
            # The instrument's current interval (history rows do not carry theirs).
            interval = self.interval_hours(it.symbol)
            if interval is None:
                missing.add(it.symbol)
                continue
            rate = wire.req(it.fundingRate)
            out.append(
                Funding(
                    VENUE,
                    it.symbol,
                    wire.ms(it.fundingRateTimestamp),
                    rate,
                    interval,
                    funding_apr_pct(rate, interval),
                )
            )
        if missing:  # one error per body
            st.errors += 1
            st.last_error = (
                f"bybit funding history for {', '.join(sorted(missing))}: funding interval "
                "unknown (feed instruments-info first); not assuming 8 h"
            )
        return out
