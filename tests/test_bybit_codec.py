"""Bybit V5 linear codec: the cryptofeed recording plus hand-written frames in Bybit's format."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from core.models import Funding, Instrument, Liquidation, MarketEvent, OpenInterest, Side, Trade
from feeds.bybit.codec import BybitCodec
from feeds.bybit.rest import (
    BybitErrorKind,
    BybitIpBannedError,
    BybitParamsError,
    BybitRateLimitError,
    BybitServerError,
    classify_bybit_response,
)
from tests.conftest import CRYPTOFEED_DIR

SAMPLE = CRYPTOFEED_DIR / "BYBIT.jsonl.zst"
OI_URL = "https://api.bybit.com/v5/market/open-interest?category=linear&symbol=SOLUSDT&intervalTime=5min"
FH_URL = "https://api.bybit.com/v5/market/funding/history?category=linear&symbol=SOLUSDT"
INST_URL = "https://api.bybit.com/v5/market/instruments-info?category=linear&symbol=SOLUSDT"
TICKERS_URL = "https://api.bybit.com/v5/market/tickers?category=linear&symbol=SOLUSDT"


def approx(x: float) -> float:
    """``pytest.approx`` typed as a float, for comparing whole structs."""
    return cast(float, pytest.approx(x))


def iter_recording(path: Path) -> Iterator[dict[str, str]]:
    with path.open("rb") as fh:
        reader = zstandard.ZstdDecompressor().stream_reader(fh)
        for line in io.TextIOWrapper(reader, encoding="utf-8"):
            if line.strip():
                yield json.loads(line)


def replay(codec: BybitCodec, path: Path) -> tuple[list[MarketEvent], list[dict[str, Any]]]:
    events: list[MarketEvent] = []
    sol_tickers: list[dict[str, Any]] = []
    for rec in iter_recording(path):
        if rec["t"] == "recv":
            events += codec.feed_ws(rec["data"], 1)
            msg = json.loads(rec["data"])
            if msg.get("topic") == "tickers.SOLUSDT":
                sol_tickers.append(msg)
        elif rec["t"] == "http":
            events += codec.feed_http(rec["url"], rec["data"], 1)
    return events, sol_tickers


def ws(codec: BybitCodec, msg: object) -> list[MarketEvent]:
    return codec.feed_ws(json.dumps(msg), 123)


def envelope(result: object, ret_code: int = 0, msg: str = "OK") -> str:
    return json.dumps(
        {"retCode": ret_code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": 1_700_000_000_000}
    )


# ---------------------------------------------------------------------------- recording


def test_sample_sol_funding_and_oi_from_tickers() -> None:
    codec = BybitCodec(["SOLUSDT"])
    events, tickers = replay(codec, SAMPLE)
    assert codec.stats.malformed == 0
    assert codec.stats.unknown == 0
    latest: dict[str, Any] = {}
    for msg in tickers:
        latest.update(msg["data"])
    assert latest["fundingIntervalHour"] == "8"

    funding = [e for e in events if isinstance(e, Funding)]
    assert funding
    last = funding[-1]
    assert last.symbol == "SOLUSDT" and last.venue == "bybit"
    assert last.interval_hours == 8
    rate = float(str(latest["fundingRate"]))
    assert last.rate == rate
    assert last.apr_pct == pytest.approx(rate * 3 * 365 * 100)
    assert last.next_funding_ts == int(str(latest["nextFundingTime"]))
    assert last.mark_px == float(str(latest["markPrice"]))
    funding_keys = {"fundingRate", "fundingIntervalHour", "nextFundingTime", "markPrice", "indexPrice"}
    last_funding_msg = [m for m in tickers if funding_keys & set(m["data"])][-1]
    assert last.ts == last_funding_msg["ts"]

    ois = [e for e in events if isinstance(e, OpenInterest)]
    assert ois
    oi = ois[-1]
    assert oi.oi_base == float(str(latest["openInterest"]))
    assert oi.oi_single == float(str(latest["singleOpenInterest"]))
    assert oi.oi_notional == pytest.approx(oi.oi_single * float(str(latest["markPrice"])))
    # one side is half of both sides (rounded by the venue)
    assert oi.oi_single == pytest.approx(oi.oi_base / 2, rel=1e-6)

    insts = [e for e in events if isinstance(e, Instrument)]
    assert insts == [Instrument("bybit", "SOLUSDT", 1.0, 0.01, 0.1, 480)]
    assert codec.instruments["SOLUSDT"].funding_interval_min == 480
    trades = [e for e in events if isinstance(e, Trade)]
    assert trades and all(t.symbol == "SOLUSDT" and t.qty > 0 for t in trades)


def test_sample_all_symbols_no_unknown_or_malformed() -> None:
    codec = BybitCodec()
    replay(codec, SAMPLE)
    s = codec.stats
    assert (s.unknown, s.malformed, s.errors) == (0, 0, 0)
    assert s.frames == s.decoded + s.ignored


# ---------------------------------------------------------------------------- websocket frames


def test_all_liquidation_side_is_the_liquidated_position() -> None:
    codec = BybitCodec(["SOLUSDT"])
    out = ws(
        codec,
        {
            "topic": "allLiquidation.SOLUSDT",
            "type": "snapshot",
            "ts": 1739502303204,
            "data": [
                {"T": 1739502302929, "s": "SOLUSDT", "S": "Buy", "v": "20", "p": "150.5"},
                {"T": "1739502302930", "s": "SOLUSDT", "S": "Sell", "v": "1.5", "p": "151"},
            ],
        },
    )
    assert out == [
        Liquidation("bybit", "SOLUSDT", 1739502302929, "long", 150.5, 20.0, 3010.0, 123),
        Liquidation("bybit", "SOLUSDT", 1739502302930, "short", 151.0, 1.5, 226.5, 123),
    ]


def test_public_trade_taker_side() -> None:
    codec = BybitCodec(["SOLUSDT"])
    out = ws(
        codec,
        {
            "topic": "publicTrade.SOLUSDT",
            "type": "snapshot",
            "ts": 1,
            "data": [
                {
                    "T": 1786310821322,
                    "s": "SOLUSDT",
                    "S": "Buy",
                    "v": "5.1",
                    "p": "77.30",
                    "i": "abc",
                    "BT": False,
                    "RPI": False,
                    "seq": 1,
                },
            ],
        },
    )
    assert out == [Trade("bybit", "SOLUSDT", 1786310821322, 77.3, 5.1, Side.BUY, "abc", 123)]


def _snapshot(**over: str) -> dict[str, object]:
    data = {
        "symbol": "SOLUSDT",
        "markPrice": "100",
        "indexPrice": "100.1",
        "openInterest": "2000",
        "singleOpenInterest": "1000",
        "fundingIntervalHour": "4",
        "nextFundingTime": "1786320000000",
        "fundingRate": "0.0001",
        "bid1Price": "99.9",
        **over,
    }
    return {"topic": "tickers.SOLUSDT", "type": "snapshot", "data": data, "cs": 1, "ts": 1000}


def test_ticker_delta_merges_and_uses_the_stated_interval() -> None:
    codec = BybitCodec(["SOLUSDT"])
    out = ws(codec, _snapshot())
    f = next(e for e in out if isinstance(e, Funding))
    assert (f.rate, f.interval_hours, f.ts) == (0.0001, 4.0, 1000)
    assert f.apr_pct == pytest.approx(0.0001 * 6 * 365 * 100)
    oi = next(e for e in out if isinstance(e, OpenInterest))
    assert (oi.oi_base, oi.oi_single, oi.oi_notional) == (2000.0, 1000.0, 100_000.0)

    # a delta with only book fields changes nothing we publish
    assert (
        ws(
            codec,
            {
                "topic": "tickers.SOLUSDT",
                "type": "delta",
                "ts": 1100,
                "data": {"symbol": "SOLUSDT", "bid1Price": "99.8"},
            },
        )
        == []
    )
    # a delta with only the rate keeps the interval and prices from the snapshot
    out = ws(
        codec,
        {
            "topic": "tickers.SOLUSDT",
            "type": "delta",
            "ts": 1200,
            "data": {"symbol": "SOLUSDT", "fundingRate": "-0.0002"},
        },
    )
    assert out == [
        Funding(
            "bybit",
            "SOLUSDT",
            1200,
            -0.0002,
            4.0,
            approx(-0.0002 * 6 * 365 * 100),
            1786320000000,
            100.0,
            100.1,
        )
    ]
    out = ws(
        codec,
        {
            "topic": "tickers.SOLUSDT",
            "type": "delta",
            "ts": 1300,
            "data": {"symbol": "SOLUSDT", "openInterest": "3000", "singleOpenInterest": "1500"},
        },
    )
    assert out == [OpenInterest("bybit", "SOLUSDT", 1300, 3000.0, 1500.0, 150_000.0)]


def test_spot_ticker_snapshot_is_ignored_and_keeps_state() -> None:
    codec = BybitCodec(["SOLUSDT"])
    ws(codec, _snapshot())
    assert (
        ws(
            codec,
            {
                "topic": "tickers.SOLUSDT",
                "ts": 2,
                "type": "snapshot",
                "cs": 1,
                "data": {"symbol": "SOLUSDT", "lastPrice": "100", "usdIndexPrice": "100"},
            },
        )
        == []
    )
    assert codec.tickers["SOLUSDT"].funding_rate == 0.0001
    assert codec.stats.ignored == 1


def test_ops_known_and_ignored_topics() -> None:
    codec = BybitCodec(["SOLUSDT"])
    ws(codec, {"success": True, "ret_msg": "", "conn_id": "x", "req_id": "", "op": "subscribe"})
    ws(codec, {"success": True, "ret_msg": "pong", "conn_id": "x", "op": "ping"})
    ws(codec, {"req_id": "1", "op": "pong", "args": ["1675418560633"], "conn_id": "x"})
    assert codec.stats.errors == 0
    ws(codec, {"success": False, "ret_msg": "error:handler not found", "conn_id": "x", "op": "subscribe"})
    assert codec.stats.errors == 1
    assert "handler not found" in codec.stats.last_error
    ws(codec, {"topic": "orderbook.50.SOLUSDT", "type": "delta", "ts": 1, "data": {}})
    ws(codec, {"topic": "kline.1.SOLUSDT", "type": "snapshot", "ts": 1, "data": []})
    ws(codec, {"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1, "data": []})
    assert codec.stats.ignored == 3
    ws(codec, {"topic": "mystery.SOLUSDT", "data": {}})
    ws(codec, {"hello": 1})
    assert codec.stats.unknown == 2
    assert codec.stats.unknown_kinds == {"topic:mystery": 1, "frame": 1}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1,2,3]",
        b'{"topic": 5}',
        b'{"topic":"tickers.SOLUSDT","data":[]}',
        json.dumps(_snapshot(fundingRate="abc")).encode(),
        json.dumps(_snapshot(fundingIntervalHour="0")).encode(),
        json.dumps(
            {
                "topic": "allLiquidation.SOLUSDT",
                "data": [{"T": 1, "s": "SOLUSDT", "S": "Up", "v": "1", "p": "1"}],
            }
        ).encode(),
        json.dumps({"topic": "allLiquidation.SOLUSDT", "data": [{"T": 1, "s": "SOLUSDT"}]}).encode(),
        json.dumps(
            {
                "topic": "publicTrade.SOLUSDT",
                "data": [{"T": 1, "s": "SOLUSDT", "S": "Buy", "v": "nan", "p": "1"}],
            }
        ).encode(),
    ],
)
def test_malformed_frames_are_counted_not_raised(raw: bytes) -> None:
    codec = BybitCodec(["SOLUSDT"])
    assert codec.feed_ws(raw, 1) == []
    assert codec.stats.malformed == 1
    assert codec.stats.last_error


def test_malformed_ticker_leaves_state_untouched() -> None:
    codec = BybitCodec(["SOLUSDT"])
    ws(codec, _snapshot())
    ws(
        codec,
        {
            "topic": "tickers.SOLUSDT",
            "type": "delta",
            "ts": 5,
            "data": {"symbol": "SOLUSDT", "fundingRate": "0.0005", "markPrice": "x"},
        },
    )
    assert codec.tickers["SOLUSDT"].funding_rate == 0.0001


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_fuzz_never_raises(raw: bytes | str) -> None:
    codec = BybitCodec()
    codec.feed_ws(raw, 0)
    codec.feed_http(OI_URL, raw, 0)
    assert codec.stats.frames == 2


# ---------------------------------------------------------------------------- REST


def test_instruments_then_funding_history_uses_instrument_interval() -> None:
    codec = BybitCodec(["SOLUSDT"])
    history = envelope(
        {
            "category": "linear",
            "list": [
                {"symbol": "SOLUSDT", "fundingRate": "0.0001", "fundingRateTimestamp": "1700000000000"},
                {"symbol": "SOLUSDT", "fundingRate": "0.0002", "fundingRateTimestamp": "1699985600000"},
            ],
        }
    )
    assert codec.feed_http(FH_URL, history, 0) == []  # interval unknown: not assumed
    assert codec.stats.errors == 1 and "interval unknown" in codec.stats.last_error

    inst = envelope(
        {
            "category": "linear",
            "list": [
                {
                    "symbol": "SOLUSDT",
                    "contractType": "LinearPerpetual",
                    "status": "Trading",
                    "priceFilter": {"minPrice": "0.010", "maxPrice": "199999.980", "tickSize": "0.010"},
                    "lotSizeFilter": {"maxOrderQty": "96000.0", "minOrderQty": "0.1", "qtyStep": "0.1"},
                    "fundingInterval": 240,
                    "settleCoin": "USDT",
                }
            ],
            "nextPageCursor": "",
        }
    )
    assert codec.feed_http(INST_URL, inst, 0) == [Instrument("bybit", "SOLUSDT", 1.0, 0.01, 0.1, 240)]
    out = codec.feed_http(FH_URL, history, 0)
    assert [(e.ts, e.rate, e.interval_hours) for e in out if isinstance(e, Funding)] == [
        (1699985600000, 0.0002, 4.0),
        (1700000000000, 0.0001, 4.0),
    ]
    assert isinstance(out[0], Funding)
    assert out[0].apr_pct == pytest.approx(0.0002 * 6 * 365 * 100)


def test_spot_instruments_are_not_linear_instruments() -> None:
    codec = BybitCodec(["SOLUSDT"])
    body = envelope(
        {
            "category": "spot",
            "list": [
                {
                    "symbol": "SOLUSDT",
                    "priceFilter": {"tickSize": "0.01"},
                    "lotSizeFilter": {"basePrecision": "0.0001"},
                }
            ],
        }
    )
    assert codec.feed_http("https://api.bybit.com/v5/market/instruments-info?category=spot", body, 0) == []
    assert "SOLUSDT" not in codec.instruments


def test_rest_open_interest_and_tickers() -> None:
    codec = BybitCodec(["SOLUSDT"])
    ws(codec, _snapshot())  # mark 100
    body = envelope(
        {
            "symbol": "SOLUSDT",
            "category": "linear",
            "list": [
                {"openInterest": "6000.5", "timestamp": "1700000300000"},
                {"openInterest": "6000", "timestamp": "1700000000000"},
            ],
            "nextPageCursor": "",
        }
    )
    out = codec.feed_http(OI_URL, body, 0)
    assert out == [
        OpenInterest("bybit", "SOLUSDT", 1700000000000, 6000.0, 3000.0, 300_000.0),
        OpenInterest("bybit", "SOLUSDT", 1700000300000, 6000.5, 3000.25, 300_025.0),
    ]
    tick = envelope(
        {
            "category": "linear",
            "list": [
                {"symbol": "SOLUSDT", "markPrice": "101", "fundingRate": "0.0003", "openInterest": "10"}
            ],
        }
    )
    out = codec.feed_http(TICKERS_URL, tick, 0)
    f = next(e for e in out if isinstance(e, Funding))
    assert (f.ts, f.rate, f.interval_hours, f.mark_px) == (1_700_000_000_000, 0.0003, 4.0, 101.0)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (10001, BybitErrorKind.PARAMS),
        (10006, BybitErrorKind.RATE_LIMIT),
        (10016, BybitErrorKind.SERVER),
        (10429, BybitErrorKind.RATE_LIMIT),
        (12345, BybitErrorKind.API),
    ],
)
def test_rest_ret_code_errors_are_counted(code: int, kind: BybitErrorKind) -> None:
    codec = BybitCodec(["SOLUSDT"])
    body = envelope({}, code, "Too many visits!")
    assert codec.feed_http(OI_URL, body, 0) == []
    assert codec.stats.errors == 1
    assert str(code) in codec.stats.last_error and kind.value in codec.stats.last_error
    assert classify_bybit_response(200, body).kind is kind


def test_rest_malformed_and_unknown() -> None:
    codec = BybitCodec()
    assert codec.feed_http(OI_URL, b"<html>502</html>", 0) == []
    assert codec.feed_http(OI_URL, envelope({"list": [{"openInterest": "x", "timestamp": 1}]}), 0) == []
    assert codec.stats.malformed == 2
    assert codec.feed_http("https://api.bybit.com/v5/market/kline?symbol=SOLUSDT", envelope({}), 0) == []
    assert codec.stats.unknown_kinds == {"http:/v5/market/kline": 1}


def test_classify_bybit_response() -> None:
    ok = classify_bybit_response(200, envelope({"list": []}))
    assert ok.ok and ok.error() is None
    ok.raise_for_error()

    ban = classify_bybit_response(403, b"access denied")
    assert ban.kind is BybitErrorKind.IP_BANNED and ban.stop_host and not ban.retryable
    with pytest.raises(BybitIpBannedError):
        ban.raise_for_error()

    limited = classify_bybit_response(429, b"")
    assert limited.kind is BybitErrorKind.RATE_LIMIT and limited.retryable and not limited.stop_host
    assert isinstance(limited.error(), BybitRateLimitError)
    assert isinstance(classify_bybit_response(200, envelope({}, 10429)).error(), BybitRateLimitError)
    assert isinstance(classify_bybit_response(200, envelope({}, 10006)).error(), BybitRateLimitError)

    params = classify_bybit_response(200, envelope({}, 10001, "params error"))
    assert params.ret_code == 10001 and not params.retryable
    err = params.error()
    assert isinstance(err, BybitParamsError) and err.ret_code == 10001 and "params error" in str(err)

    server = classify_bybit_response(200, envelope({}, 10016, "Internal server error"))
    assert server.retryable and isinstance(server.error(), BybitServerError)
    assert classify_bybit_response(502, b"<html>bad gateway</html>").kind is BybitErrorKind.SERVER
    assert classify_bybit_response(200, b"garbage").kind is BybitErrorKind.MALFORMED
    assert classify_bybit_response(404, b"not found").kind is BybitErrorKind.HTTP
    assert classify_bybit_response(400, envelope({}, 10001)).kind is BybitErrorKind.PARAMS
