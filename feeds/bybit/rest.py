"""Bybit V5 REST: response envelope, result shapes and error classification (sans-I/O).

Every V5 REST body is an envelope ``{"retCode": 0, "retMsg": "OK", "result": {...},
"retExtInfo": {}, "time": 1672053548579}``; ``retCode != 0`` is an application error even under
HTTP 200. Transports call :func:`classify_bybit_response` with the HTTP status and body and act on
the returned :class:`BybitResponseStatus` (retry, back off, stop polling the host); they hand
successful bodies to ``BybitCodec.feed_http``, which never raises and only counts errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import msgspec

# ---------------------------------------------------------------------------------------------
# Error classification


class BybitErrorKind(StrEnum):
    OK = "ok"
    PARAMS = "params"  # retCode 10001: bad request parameters, do not retry unchanged
    RATE_LIMIT = "rate_limit"  # retCode 10006 / 10018 / 10429, HTTP 429: back off, then retry
    SERVER = "server"  # retCode 10000 / 10016, HTTP 5xx: transient, retry with backoff
    IP_BANNED = "ip_banned"  # HTTP 403: the IP is banned; stop polling this host for a while
    HTTP = "http"  # other non-2xx status without a usable envelope
    API = "api"  # any other non-zero retCode
    MALFORMED = "malformed"  # 2xx body that is not a V5 envelope


RET_CODE_KINDS: dict[int, BybitErrorKind] = {
    10000: BybitErrorKind.SERVER,  # server timeout
    10001: BybitErrorKind.PARAMS,  # request parameter error
    10006: BybitErrorKind.RATE_LIMIT,  # too many visits (per-UID / per-endpoint limit)
    10016: BybitErrorKind.SERVER,  # server error
    10018: BybitErrorKind.RATE_LIMIT,  # exceeded the IP rate limit
    10429: BybitErrorKind.RATE_LIMIT,  # system-level frequency protection
}


class BybitApiError(Exception):
    """A classified Bybit REST failure; subclasses name the kind."""

    kind: BybitErrorKind = BybitErrorKind.API

    def __init__(self, message: str, *, http_status: int = 200, ret_code: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.ret_code = ret_code


class BybitParamsError(BybitApiError):
    kind = BybitErrorKind.PARAMS


class BybitRateLimitError(BybitApiError):
    kind = BybitErrorKind.RATE_LIMIT


class BybitServerError(BybitApiError):
    kind = BybitErrorKind.SERVER


class BybitIpBannedError(BybitApiError):
    kind = BybitErrorKind.IP_BANNED


class BybitHttpError(BybitApiError):
    kind = BybitErrorKind.HTTP


class BybitMalformedResponse(BybitApiError):
    kind = BybitErrorKind.MALFORMED


_EXC_BY_KIND: dict[BybitErrorKind, type[BybitApiError]] = {
    BybitErrorKind.PARAMS: BybitParamsError,
    BybitErrorKind.RATE_LIMIT: BybitRateLimitError,
    BybitErrorKind.SERVER: BybitServerError,
    BybitErrorKind.IP_BANNED: BybitIpBannedError,
    BybitErrorKind.HTTP: BybitHttpError,
    BybitErrorKind.API: BybitApiError,
    BybitErrorKind.MALFORMED: BybitMalformedResponse,
}


@dataclass(frozen=True, slots=True)
class BybitResponseStatus:
    """Outcome of one REST response. ``ok`` bodies go to ``BybitCodec.feed_http``."""

    kind: BybitErrorKind
    http_status: int
    ret_code: int | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.kind is BybitErrorKind.OK

    @property
    def retryable(self) -> bool:
        """Worth retrying the same request later (after a backoff)."""
        return self.kind in (BybitErrorKind.RATE_LIMIT, BybitErrorKind.SERVER)

    @property
    def rate_limited(self) -> bool:
        return self.kind in (BybitErrorKind.RATE_LIMIT, BybitErrorKind.IP_BANNED)

    @property
    def stop_host(self) -> bool:
        """The IP is banned: stop polling this host (every endpoint) until an operator/timer resumes."""
        return self.kind is BybitErrorKind.IP_BANNED

    def error(self) -> BybitApiError | None:
        if self.ok:
            return None
        return _EXC_BY_KIND[self.kind](self.describe(), http_status=self.http_status, ret_code=self.ret_code)

    def raise_for_error(self) -> None:
        err = self.error()
        if err is not None:
            raise err

    def describe(self) -> str:
        code = f" retCode {self.ret_code}" if self.ret_code is not None else ""
        return f"bybit {self.kind.value} (HTTP {self.http_status}{code}): {self.message}".rstrip(": ")


class Envelope(msgspec.Struct):
    retCode: int
    retMsg: str = ""
    result: msgspec.Raw = msgspec.Raw()
    time: int | str | None = None


ENVELOPE_DECODER = msgspec.json.Decoder(Envelope)


def kind_for_ret_code(ret_code: int) -> BybitErrorKind:
    if ret_code == 0:
        return BybitErrorKind.OK
    return RET_CODE_KINDS.get(ret_code, BybitErrorKind.API)


def classify_bybit_response(status: int, body: bytes | str) -> BybitResponseStatus:
    """Classify an HTTP status and body from a Bybit V5 REST endpoint. Never raises.

    HTTP 403 -> ``IP_BANNED`` (stop polling the host), HTTP 429 -> ``RATE_LIMIT``, 5xx -> ``SERVER``;
    otherwise the envelope's ``retCode`` decides (see :data:`RET_CODE_KINDS`); a 2xx body that is
    not an envelope is ``MALFORMED``.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    snippet = text[:200]
    if status == 403:
        return BybitResponseStatus(BybitErrorKind.IP_BANNED, status, None, snippet or "forbidden")
    if status == 429:
        return BybitResponseStatus(BybitErrorKind.RATE_LIMIT, status, None, snippet or "too many requests")
    if status >= 500:
        return BybitResponseStatus(BybitErrorKind.SERVER, status, None, snippet or "server error")
    try:
        env = ENVELOPE_DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        if 200 <= status < 300:
            return BybitResponseStatus(BybitErrorKind.MALFORMED, status, None, f"not a V5 envelope: {exc}")
        return BybitResponseStatus(BybitErrorKind.HTTP, status, None, snippet or "http error")
    kind = kind_for_ret_code(env.retCode)
    if kind is BybitErrorKind.OK and not 200 <= status < 300:
        kind = BybitErrorKind.HTTP
    return BybitResponseStatus(kind, status, env.retCode, env.retMsg)


# ---------------------------------------------------------------------------------------------
# Result shapes (decimals arrive as strings; timestamps as strings or ints; unknown keys ignored)


class OpenInterestItem(msgspec.Struct):
    openInterest: str
    timestamp: int | str


class OpenInterestResult(msgspec.Struct):
    symbol: str = ""
    category: str = ""
    items: list[OpenInterestItem] = msgspec.field(default_factory=list, name="list")


class FundingHistoryItem(msgspec.Struct):
    symbol: str
    fundingRate: str
    fundingRateTimestamp: int | str


class FundingHistoryResult(msgspec.Struct):
    category: str = ""
    items: list[FundingHistoryItem] = msgspec.field(default_factory=list, name="list")


class PriceFilter(msgspec.Struct):
    tickSize: str = ""


class LotSizeFilter(msgspec.Struct):
    qtyStep: str = ""
    basePrecision: str = ""  # spot's step


class InstrumentItem(msgspec.Struct):
    symbol: str
    contractType: str = ""
    status: str = ""
    fundingInterval: int | str | None = None  # MINUTES (480 = 8 h)
    priceFilter: PriceFilter | None = None
    lotSizeFilter: LotSizeFilter | None = None


class InstrumentsResult(msgspec.Struct):
    category: str = ""
    items: list[InstrumentItem] = msgspec.field(default_factory=list, name="list")
    nextPageCursor: str = ""


OI_DECODER = msgspec.json.Decoder(OpenInterestResult)
FUNDING_HISTORY_DECODER = msgspec.json.Decoder(FundingHistoryResult)
INSTRUMENTS_DECODER = msgspec.json.Decoder(InstrumentsResult)
