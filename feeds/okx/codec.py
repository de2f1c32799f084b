"""OKX v5 public codec (sans-I/O): websocket frames and REST bodies -> core models.

* ``trades`` / ``trades-all`` for the configured instruments -> :class:`~core.models.Trade`. OKX
  reports ``sz`` in CONTRACTS for SWAP/FUTURES; the contract value ``ctVal`` comes from REST
  ``/api/v5/public/instruments`` (``feed_http``), remembered per ``instId``. Linear contracts:
  ``qty = sz × ctVal`` (base units). Inverse contracts (``ctType == "inverse"``, ``ctVal`` in USD):
  ``qty = sz × ctVal / px``. SPOT/MARGIN: ``sz`` is already base units.
  Trades and liquidations that arrive before the instrument's ``ctVal`` is known are not guessed:
  they are buffered (at most ``max_pending``; overflow drops the oldest and counts an error) and
  released, in arrival order, right after the Instrument event when the instruments body arrives.
* ``liquidation-orders`` (subscribed per ``instType``, so it covers ALL instruments; filtered on
  ``instId`` here) -> :class:`~core.models.Liquidation`. The side is the liquidated position's:
  ``posSide`` when ``long``/``short``; in net mode from the order side (a ``sell`` order
  liquidates a long, a ``buy`` order a short). ``bkPx`` is the bankruptcy price. OKX says the
  details are not in time order; the codec emits each frame's liquidations sorted by ``ts``.
* ``open-interest`` / ``funding-rate`` (per instrument) and the REST bodies of
  ``/api/v5/public/open-interest`` and ``/api/v5/public/funding-rate`` ->
  :class:`~core.models.OpenInterest` / :class:`~core.models.Funding` (see
  :mod:`feeds.okx.derivatives`: one side from ``oiCcy``, USD from ``oiUsd``; the funding interval
  from ``nextFundingTime - fundingTime``, never assumed).
* A trade or liquidation whose price or size is not > 0 is dropped alone (a
  :class:`~core.models.BadData` the pipeline counts); an unparseable number, side or time makes the
  whole frame malformed.
* ``{"event": "subscribe"|"unsubscribe", ...}`` acks, ``{"event": "error", "code", "msg"}`` (counted
  in ``stats.errors``), ``notice`` events and the text ``pong`` are handled. ``books``, ``tickers``
  and the other known public channels are counted in ``stats.ignored``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from core.models import BadData, Instrument, Liquidation, MarketEvent, Side, Trade
from feeds.base import CodecStats
from feeds.okx.derivatives import OkxDerivatives

VENUE = "okx"
DEFAULT_INST_IDS = ("SOL-USDT-SWAP", "SOL-USDC-SWAP")
DEFAULT_MAX_PENDING = 1000

IGNORED_CHANNELS = frozenset(
    {
        "books",
        "books5",
        "books-l2-tbt",
        "books50-l2-tbt",
        "bbo-tbt",
        "tickers",
        "mark-price",
        "index-tickers",
        "price-limit",
        "estimated-price",
        "opt-summary",
        "instruments",
        "status",
        "call-auction-details",
        "adl-warning",
        "economic-calendar",
        "public-struc-block-trades",
        "public-block-trades",
        "block-tickers",
    }
)
IGNORED_PREFIXES = ("candle", "mark-price-candle", "index-candle")
OK_EVENTS = frozenset({"subscribe", "unsubscribe", "login", "channel-conn-count"})
ERROR_EVENTS = frozenset({"error", "channel-conn-count-error"})


class Arg(msgspec.Struct):
    channel: str
    instId: str = ""
    instType: str = ""


class WsFrame(msgspec.Struct):
    arg: Arg | None = None
    data: msgspec.Raw = msgspec.Raw()
    event: str | None = None
    code: str | int | None = None
    msg: str = ""


class TradeItem(msgspec.Struct):
    instId: str
    px: str
    sz: str
    side: str
    ts: str | int
    tradeId: str = ""


class LiqDetail(msgspec.Struct):
    sz: str
    ts: str | int
    side: str = ""
    posSide: str = ""
    bkPx: str = ""


class LiqItem(msgspec.Struct):
    instId: str
    details: list[LiqDetail] = msgspec.field(default_factory=list)
    instType: str = ""


class InstrumentItem(msgspec.Struct):
    instId: str
    instType: str = ""
    ctVal: str = ""
    ctMult: str = ""
    ctType: str = ""
    ctValCcy: str = ""
    tickSz: str = ""
    lotSz: str = ""


class RestEnvelope(msgspec.Struct):
    code: str | int
    msg: str = ""
    data: msgspec.Raw = msgspec.Raw()


_FRAME = msgspec.json.Decoder(WsFrame)
_TRADES = msgspec.json.Decoder(list[TradeItem])
_LIQS = msgspec.json.Decoder(list[LiqItem])
_ENVELOPE = msgspec.json.Decoder(RestEnvelope)
_INSTRUMENTS = msgspec.json.Decoder(list[InstrumentItem])

_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError)


def _num(s: str) -> float:
    if s == "":
        raise ValueError("missing number")
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"non-finite number {s!r}")
    return v


@dataclass(frozen=True, slots=True)
class Contract:
    """How to turn an instrument's ``sz`` into base units."""

    ct_val: float
    inverse: bool

    def base_qty(self, sz: float, px: float) -> float:
        if self.inverse:
            return sz * self.ct_val / px
        return sz * self.ct_val


@dataclass(frozen=True, slots=True)
class _Pending:
    kind: Literal["trade", "liq"]
    inst_id: str
    item: TradeItem | LiqDetail
    recv_ns: int


class OkxCodec:
    """OKX v5 public codec for the instruments in ``inst_ids`` (default the SOL USDT and USDC swaps)."""

    venue = VENUE

    def __init__(self, inst_ids: Iterable[str] | None = None, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.inst_ids = frozenset(DEFAULT_INST_IDS if inst_ids is None else inst_ids)
        self.stats = CodecStats()
        self.contracts: dict[str, Contract] = {}
        self.max_pending = max_pending
        self._pending: deque[_Pending] = deque()
        self.derivs = OkxDerivatives(self.inst_ids, self.stats)  # open interest and funding

    @property
    def pending(self) -> int:
        """Trades/liquidations held back until their instrument's ``ctVal`` is known."""
        return len(self._pending)

    # ------------------------------------------------------------------ websocket

    def feed_ws(self, raw: bytes | str, recv_ns: int) -> list[MarketEvent]:
        st = self.stats
        st.frames += 1
        if len(raw) <= 8 and (raw.strip() if isinstance(raw, str) else raw.strip().decode("latin-1")) in (
            "pong",
            "ping",
        ):
            st.decoded += 1
            return []
        try:
            frame = _FRAME.decode(raw)
            if frame.event is not None:
                return self._event(frame)
            if frame.arg is None:
                st.note_unknown("frame")
                return []
            return self._channel(frame.arg, frame.data, recv_ns)
        except _DECODE_ERRORS as exc:
            st.note_malformed(f"okx ws: {type(exc).__name__}: {exc}")
            return []

    def _event(self, frame: WsFrame) -> list[MarketEvent]:
        st = self.stats
        ev = frame.event or ""
        what = f"{frame.arg.channel}:{frame.arg.instId or frame.arg.instType}" if frame.arg else ""
        if ev in ERROR_EVENTS:
            st.decoded += 1
            st.errors += 1
            st.last_error = f"okx {ev} {frame.code}: {frame.msg} {what}".rstrip()
        elif ev == "notice":
            st.decoded += 1
            st.last_error = f"okx notice {frame.code}: {frame.msg}"
        elif ev in OK_EVENTS:
            st.decoded += 1
        else:
            st.note_unknown(f"event:{ev}")
        return []

    def _channel(self, arg: Arg, data: msgspec.Raw, recv_ns: int) -> list[MarketEvent]:
        st = self.stats
        ch = arg.channel
        if ch in ("trades", "trades-all"):
            if arg.instId and arg.instId not in self.inst_ids:
                st.ignored += 1
                return []
            items = [t for t in _TRADES.decode(data) if t.instId in self.inst_ids]
            out: list[MarketEvent] = []
            good: list[TradeItem] = []
            for t in items:  # validate the whole frame before emitting or holding anything
                if t.side not in ("buy", "sell") or int(t.ts) < 0:
                    raise ValueError(f"bad trade {t!r}")
                if _num(t.px) > 0 and _num(t.sz) > 0:
                    good.append(t)
                else:  # a value, not the frame, is bad: drop this trade (counted by the pipeline)
                    out.append(BadData(VENUE, t.instId, "trade", f"px {t.px!r} / sz {t.sz!r} not > 0"))
            for t in good:
                out.extend(self._trade_or_hold(t, recv_ns))
            st.decoded += 1
            return out
        if ch == "liquidation-orders":
            liqs = _LIQS.decode(data)
            held: list[tuple[str, LiqDetail]] = []
            bad: list[MarketEvent] = []
            for item in liqs:
                if item.instId not in self.inst_ids:
                    continue
                for d in item.details:
                    self._liq_side(d)
                    if int(d.ts) < 0:
                        raise ValueError(f"bad liquidation {d!r}")
                    if _num(d.bkPx) > 0 and _num(d.sz) > 0:
                        held.append((item.instId, d))
                    else:
                        bad.append(BadData(VENUE, item.instId, "liquidation",
                                           f"bkPx {d.bkPx!r} / sz {d.sz!r} not > 0"))
            held.sort(key=lambda p: int(p[1].ts))
            out = list(bad)
            for inst_id, d in held:
                out.extend(self._liq_or_hold(inst_id, d, recv_ns))
            st.decoded += 1
            return out
        if ch == "open-interest" or ch == "funding-rate":
            if arg.instId and arg.instId not in self.inst_ids:
                st.ignored += 1
                return []
            out = (self.derivs.open_interest(data, self._ct_vals()) if ch == "open-interest"
                   else self.derivs.funding(data, recv_ns))
            st.decoded += 1
            return out
        if ch in IGNORED_CHANNELS or ch.startswith(IGNORED_PREFIXES):
            st.ignored += 1
            return []
        st.note_unknown(f"channel:{ch}")
        return []

    def _trade_or_hold(self, t: TradeItem, recv_ns: int) -> list[MarketEvent]:
        c = self.contracts.get(t.instId)
        if c is None:
            self._hold(_Pending("trade", t.instId, t, recv_ns))
            return []
        return [self._trade(t, c, recv_ns)]

    def _liq_or_hold(self, inst_id: str, d: LiqDetail, recv_ns: int) -> list[MarketEvent]:
        c = self.contracts.get(inst_id)
        if c is None:
            self._hold(_Pending("liq", inst_id, d, recv_ns))
            return []
        return [self._liquidation(inst_id, d, c, recv_ns)]

    def _hold(self, p: _Pending) -> None:
        if len(self._pending) >= self.max_pending:
            dropped = self._pending.popleft()
            self.stats.errors += 1
            self.stats.last_error = (
                f"okx: dropped a {dropped.kind} for {dropped.inst_id}: ctVal unknown "
                f"(instruments not fetched) and {self.max_pending} already pending"
            )
        self._pending.append(p)

    @staticmethod
    def _trade(t: TradeItem, c: Contract, recv_ns: int) -> Trade:
        px = _num(t.px)
        side = Side.BUY if t.side == "buy" else Side.SELL
        return Trade(VENUE, t.instId, int(t.ts), px, c.base_qty(_num(t.sz), px), side, t.tradeId, recv_ns)

    @staticmethod
    def _liq_side(d: LiqDetail) -> Literal["long", "short"]:
        if d.posSide == "long":
            return "long"
        if d.posSide == "short":
            return "short"
        # net mode: the liquidation order closes the position, so a sell closes a long.
        if d.side == "sell":
            return "long"
        if d.side == "buy":
            return "short"
        raise ValueError(f"liquidation sides posSide={d.posSide!r} side={d.side!r}")

    def _liquidation(self, inst_id: str, d: LiqDetail, c: Contract, recv_ns: int) -> Liquidation:
        px = _num(d.bkPx)
        qty = c.base_qty(_num(d.sz), px)
        return Liquidation(VENUE, inst_id, int(d.ts), self._liq_side(d), px, qty, qty * px, recv_ns)

    # ------------------------------------------------------------------ REST

    def feed_http(self, url: str, body: bytes | str, recv_ns: int) -> list[MarketEvent]:
        st = self.stats
        st.frames += 1
        path = urlsplit(url).path.rstrip("/")
        try:
            env = _ENVELOPE.decode(body)
            if str(env.code) != "0":
                st.errors += 1
                st.last_error = f"okx http code {env.code}: {env.msg} ({path})"
                return []
            if path.endswith("/api/v5/public/open-interest"):
                out = self.derivs.open_interest(env.data, self._ct_vals())
            elif path.endswith("/api/v5/public/funding-rate"):
                out = self.derivs.funding(env.data, recv_ns)
            elif not path.endswith("/api/v5/public/instruments"):
                st.note_unknown(f"http:{path}")
                return []
            else:
                out = self._instruments(_INSTRUMENTS.decode(env.data))
        except _DECODE_ERRORS as exc:
            st.note_malformed(f"okx http {path}: {type(exc).__name__}: {exc}")
            return []
        st.decoded += 1
        return out

    def _ct_vals(self) -> dict[str, float]:
        return {k: c.ct_val for k, c in self.contracts.items() if not c.inverse}

    def _instruments(self, items: list[InstrumentItem]) -> list[MarketEvent]:
        parsed: list[tuple[Instrument, Contract]] = []
        for it in items:
            if it.instId not in self.inst_ids:
                continue
            if it.ctVal:
                ct_val = _num(it.ctVal)
            elif it.instType in ("SPOT", "MARGIN"):
                ct_val = 1.0  # spot sizes are base units
            else:
                raise ValueError(f"{it.instId}: no ctVal for {it.instType}")
            if ct_val <= 0:
                raise ValueError(f"{it.instId}: ctVal {it.ctVal!r}")
            tick = _num(it.tickSz) if it.tickSz else 0.0
            step = _num(it.lotSz) if it.lotSz else 0.0
            inst = Instrument(VENUE, it.instId, ct_val, tick, step, 0)
            parsed.append((inst, Contract(ct_val, it.ctType == "inverse")))
        out: list[MarketEvent] = []
        for inst, contract in parsed:
            self.contracts[inst.symbol] = contract
            out.append(inst)
        return out + self._release()

    def _release(self) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        keep: deque[_Pending] = deque()
        for p in self._pending:
            c = self.contracts.get(p.inst_id)
            if c is None:
                keep.append(p)
            elif isinstance(p.item, TradeItem):
                out.append(self._trade(p.item, c, p.recv_ns))
            else:
                out.append(self._liquidation(p.inst_id, p.item, c, p.recv_ns))
        self._pending = keep
        return out
