"""msgspec wire types for Binance USDⓈ-M futures market streams and REST bodies.

Typed exactly as on the wire: prices and quantities are JSON strings, ids and times integers,
``m`` a bool. Unknown keys are ignored. Websocket events form a union tagged by ``e``.
"""

from __future__ import annotations

import msgspec

from core.sanity import SaneLevel

WireLevel = tuple[str, str]


class DepthUpdateMsg(msgspec.Struct, tag="depthUpdate", tag_field="e", gc=False):
    """``<symbol>@depth[@100ms|@0ms|@500ms]``: ``U`` first, ``u`` final, ``pu`` previous final id."""

    s: str
    U: int
    u: int
    pu: int
    b: list[WireLevel]
    a: list[WireLevel]
    E: int = 0
    T: int = 0


class DepthUpdateFloatMsg(msgspec.Struct, tag="depthUpdate", tag_field="e", gc=False):
    """:class:`DepthUpdateMsg` with the levels parsed to floats by the decoder (``strict=False``
    turns the wire's numeric strings into floats in C, the same values ``float()`` gives) and
    checked there (:data:`core.sanity.SaneLevel`: a frame with a bad level takes the strict path)."""

    s: str
    U: int
    u: int
    pu: int
    b: list[SaneLevel]
    a: list[SaneLevel]
    E: int = 0
    T: int = 0


class DepthEnvelope(msgspec.Struct, gc=False):
    """A combined-stream depth frame, for the fast depth decoder."""

    data: DepthUpdateFloatMsg


class AggTradeMsg(msgspec.Struct, tag="aggTrade", tag_field="e", gc=False):
    s: str
    a: int
    p: str
    q: str
    T: int
    m: bool
    E: int = 0


class TradeMsg(msgspec.Struct, tag="trade", tag_field="e", gc=False):
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool
    E: int = 0
    X: str = "MARKET"


class BookTickerMsg(msgspec.Struct, tag="bookTicker", tag_field="e", gc=False):
    s: str
    u: int
    b: str
    B: str
    a: str
    A: str
    E: int = 0
    T: int = 0


class ForceOrderDetail(msgspec.Struct, gc=False):
    """The ``o`` object of a ``forceOrder`` event; ``S`` is the side of the liquidation *order*."""

    s: str
    S: str
    q: str
    p: str
    T: int
    ap: str = "0"
    z: str = "0"
    X: str = ""


class ForceOrderMsg(msgspec.Struct, tag="forceOrder", tag_field="e", gc=False):
    o: ForceOrderDetail
    E: int = 0


class MarkPriceMsg(msgspec.Struct, tag="markPriceUpdate", tag_field="e", gc=False):
    """``<symbol>@markPrice[@1s]``: mark ``p``, index ``i``, funding rate ``r`` (for the settlement
    at ``T``, the next funding time), event time ``E``."""

    s: str
    p: str
    E: int = 0
    i: str = ""
    r: str = ""
    T: int = 0


class KlineMsg(msgspec.Struct, tag="kline", tag_field="e", gc=False):
    """Recognised and ignored (bars are built from trades)."""


class ContinuousKlineMsg(msgspec.Struct, tag="continuous_kline", tag_field="e", gc=False):
    """Recognised and ignored."""


WsEvent = (
    DepthUpdateMsg | AggTradeMsg | TradeMsg | BookTickerMsg | ForceOrderMsg | KlineMsg | ContinuousKlineMsg
    | MarkPriceMsg
)


class Envelope(msgspec.Struct, gc=False):
    """Combined-stream frame ``{"stream": "...", "data": {...}}``; ``stream`` is not needed (the
    event carries its type and symbol), so it is skipped rather than decoded."""

    data: WsEvent


class ProbeData(msgspec.Struct, gc=False):
    e: str | None = None
    s: object = None  # the symbol, when a bad frame still names it


class Probe(msgspec.Struct, gc=False):
    """Loose shape used only to classify frames the typed decoders rejected."""

    stream: str | None = None
    data: ProbeData | None = None
    e: str | None = None
    s: object = None
    result: object = msgspec.UNSET
    id: object = msgspec.UNSET
    lastUpdateId: int | None = None
    code: int | None = None
    msg: str | None = None


class DepthSnapshotMsg(msgspec.Struct, gc=False):
    """REST ``GET /fapi/v1/depth`` body."""

    lastUpdateId: int
    bids: list[WireLevel]
    asks: list[WireLevel]
    E: int = 0
    T: int = 0


class RestProbe(msgspec.Struct, gc=False):
    lastUpdateId: int | None = None
    symbols: object = msgspec.UNSET
    rateLimits: object = msgspec.UNSET
    code: int | None = None
    msg: str | None = None
