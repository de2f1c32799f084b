"""Open interest, funding and liquidations from every venue, on frames and REST bodies in each
venue's documented format (field names, string/number types and nesting as documented; values are
test values): OKX ``open-interest`` / ``funding-rate`` / ``liquidation-orders`` (SOL-USDT-SWAP and
SOL-USDC-SWAP), Binance ``markPriceUpdate`` / ``forceOrder`` and ``/fapi/v1/premiumIndex``,
``/fapi/v1/openInterest``, ``/fapi/v1/fundingInfo``, Bybit REST open interest before a mark."""

from __future__ import annotations

import json

import pytest

from core.models import Funding, Liquidation, MarketEvent, OpenInterest
from feeds.binance.codec import BinanceCodec
from feeds.bybit.codec import BybitCodec
from feeds.okx.codec import OkxCodec

USDT, USDC = "SOL-USDT-SWAP", "SOL-USDC-SWAP"
OKX = "https://www.okx.com"
BINANCE = "https://fapi.binance.com"


def okx_instruments(*rows: tuple[str, str]) -> str:
    return json.dumps({"code": "0", "msg": "", "data": [
        {"instId": i, "instType": "SWAP", "ctVal": ct, "ctMult": "1", "ctValCcy": "SOL",
         "ctType": "linear", "tickSz": "0.01", "lotSz": "0.01", "settleCcy": i.split("-")[1],
         "state": "live"} for i, ct in rows]})


def okx_ready() -> OkxCodec:
    codec = OkxCodec([USDT, USDC])
    codec.feed_http(f"{OKX}/api/v5/public/instruments?instType=SWAP&instId={USDT}",
                    okx_instruments((USDT, "1"), (USDC, "0.1")), 0)
    return codec


def of(kind: type, out: list[MarketEvent]) -> list:  # type: ignore[type-arg]
    return [e for e in out if isinstance(e, kind)]


# ------------------------------------------------------------------------------------------ OKX


def test_okx_usdt_and_usdc_liquidations_in_base_units_and_usd() -> None:
    codec = okx_ready()
    frame = {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [
        {"details": [{"bkLoss": "0", "bkPx": "150.5", "ccy": "", "posSide": "short", "side": "buy",
                      "sz": "20", "ts": "1700000000100"}],
         "instFamily": "SOL-USDT", "instId": USDT, "instType": "SWAP", "uly": "SOL-USDT"},
        {"details": [{"bkLoss": "0", "bkPx": "151", "ccy": "", "posSide": "long", "side": "sell",
                      "sz": "30", "ts": "1700000000050"}],
         "instFamily": "SOL-USDC", "instId": USDC, "instType": "SWAP", "uly": "SOL-USDC"},
        {"details": [{"bkLoss": "0", "bkPx": "3000", "ccy": "", "posSide": "long", "side": "sell",
                      "sz": "5", "ts": "1700000000000"}],
         "instFamily": "ETH-USDT", "instId": "ETH-USDT-SWAP", "instType": "SWAP", "uly": "ETH-USDT"},
    ]}
    out = codec.feed_ws(json.dumps(frame), 9)
    assert out == [
        Liquidation("okx", USDC, 1700000000050, "long", 151.0, 3.0, 453.0, 9),  # 30 × ctVal 0.1
        Liquidation("okx", USDT, 1700000000100, "short", 150.5, 20.0, 3010.0, 9),  # 20 × ctVal 1
    ]
    assert codec.stats.malformed == 0


def test_okx_open_interest_channel_and_rest() -> None:
    codec = okx_ready()
    push = {"arg": {"channel": "open-interest", "instId": USDT}, "data": [
        {"instId": USDT, "instType": "SWAP", "oi": "2500000", "oiCcy": "2500000", "oiUsd": "375000000",
         "ts": "1700000000000"}]}
    assert codec.feed_ws(json.dumps(push), 1) == [
        OpenInterest("okx", USDT, 1700000000000, 5_000_000.0, 2_500_000.0, 375_000_000.0)]
    body = json.dumps({"code": "0", "msg": "", "data": [
        {"instId": USDC, "instType": "SWAP", "oi": "100000", "oiCcy": "10000", "oiUsd": "1500000",
         "ts": "1700000060000"}]})
    out = codec.feed_http(f"{OKX}/api/v5/public/open-interest?instType=SWAP&instId={USDC}", body, 2)
    assert out == [OpenInterest("okx", USDC, 1700000060000, 20_000.0, 10_000.0, 1_500_000.0)]
    # no oiUsd: no notional, so nothing is published (missing stays missing, never 0)
    bare = {"arg": {"channel": "open-interest", "instId": USDT}, "data": [
        {"instId": USDT, "instType": "SWAP", "oi": "1", "oiCcy": "1", "ts": "1700000000000"}]}
    assert codec.feed_ws(json.dumps(bare), 3) == []
    assert codec.stats.malformed == 0


def test_okx_funding_interval_from_the_settlement_times() -> None:
    codec = okx_ready()
    push = {"arg": {"channel": "funding-rate", "instId": USDT}, "data": [
        {"formulaType": "withRate", "fundingRate": "0.0001", "fundingTime": "1700006400000",
         "impactValue": "20000", "instId": USDT, "instType": "SWAP", "interestRate": "0.0001",
         "maxFundingRate": "0.0075", "method": "current_period", "minFundingRate": "-0.0075",
         "nextFundingRate": "", "nextFundingTime": "1700020800000", "premium": "0.0002",
         "settFundingRate": "0.00009", "settState": "settled", "ts": "1700000000000"}]}
    [f] = codec.feed_ws(json.dumps(push), 1)
    assert f == Funding("okx", USDT, 1700000000000, 0.0001, 4.0, pytest.approx(0.0001 * 6 * 365 * 100),
                        next_funding_ts=1700006400000)
    # the interval is remembered for an item that lacks nextFundingTime
    again = {"arg": {"channel": "funding-rate", "instId": USDT}, "data": [
        {"fundingRate": "-0.0002", "fundingTime": "1700006400000", "instId": USDT, "ts": "1700000030000"}]}
    [g] = codec.feed_ws(json.dumps(again), 2)
    assert (g.rate, g.interval_hours, g.ts) == (-0.0002, 4.0, 1700000030000)
    # REST body, same item shape; an unknown interval is never assumed
    body = json.dumps({"code": "0", "msg": "", "data": [
        {"fundingRate": "0.0003", "fundingTime": "1700006400000", "instId": USDC, "instType": "SWAP",
         "method": "current_period", "nextFundingTime": "1700035200000", "ts": "1700000000500"}]})
    [h] = codec.feed_http(f"{OKX}/api/v5/public/funding-rate?instId={USDC}", body, 3)
    assert (h.symbol, h.interval_hours) == (USDC, 8.0)
    fresh = OkxCodec([USDT])
    unknown = {"arg": {"channel": "funding-rate", "instId": USDT}, "data": [
        {"fundingRate": "0.0001", "fundingTime": "1700006400000", "instId": USDT, "ts": "1"}]}
    assert fresh.feed_ws(json.dumps(unknown), 4) == []
    assert fresh.stats.errors == 1 and "not assuming 8 h" in fresh.stats.last_error


@pytest.mark.parametrize("item", [
    {"instId": USDT, "oiCcy": "abc", "oiUsd": "1", "ts": "1"},
    {"instId": USDT, "oiCcy": "-5", "oiUsd": "1", "ts": "1"},
    {"instId": USDT, "oiCcy": "5", "oiUsd": "1"},
])
def test_okx_bad_open_interest_is_malformed(item: dict[str, str]) -> None:
    codec = okx_ready()
    frame = {"arg": {"channel": "open-interest", "instId": USDT}, "data": [item]}
    assert codec.feed_ws(json.dumps(frame), 1) == []
    assert codec.stats.malformed == 1


# -------------------------------------------------------------------------------------- Binance

MARK = {"stream": "solusdt@markPrice", "data": {
    "e": "markPriceUpdate", "E": 1700000000000, "s": "SOLUSDT", "p": "150.10000000", "i": "150.05000000",
    "P": "150.20000000", "r": "0.00010000", "T": 1700006400000}}


def test_binance_funding_needs_the_interval_from_funding_info() -> None:
    codec = BinanceCodec(["SOLUSDT"])
    assert codec.feed_ws(json.dumps(MARK), 1) == []  # interval unknown yet: no funding, no guess
    info = json.dumps([{"symbol": "SOLUSDT", "adjustedFundingRateCap": "0.02",
                        "adjustedFundingRateFloor": "-0.02", "fundingIntervalHours": 4, "disclaimer": False}])
    assert codec.feed_http(f"{BINANCE}/fapi/v1/fundingInfo", info, 2) == []
    [f] = codec.feed_ws(json.dumps(MARK), 3)
    apr = pytest.approx(0.0001 * 6 * 365 * 100)
    assert f == Funding("binance", "SOLUSDT", 1700000000000, 0.0001, 4.0, apr,
                        next_funding_ts=1700006400000, mark_px=150.1, index_px=150.05)
    # a symbol fundingInfo does not list settles every 8 h (Binance's default)
    other = BinanceCodec(["SOLUSDT"])
    listed = json.dumps([{"symbol": "BLZUSDT", "fundingIntervalHours": 4}])
    other.feed_http(f"{BINANCE}/fapi/v1/fundingInfo", listed, 1)
    [g] = other.feed_ws(json.dumps(MARK), 2)
    assert g.interval_hours == 8.0
    assert codec.stats.malformed == other.stats.malformed == 0


def test_binance_premium_index_object_and_list() -> None:
    codec = BinanceCodec(["SOLUSDT"])
    codec.feed_http(f"{BINANCE}/fapi/v1/fundingInfo", "[]", 0)
    one = json.dumps({"symbol": "SOLUSDT", "markPrice": "149.50000000", "indexPrice": "149.40000000",
                      "estimatedSettlePrice": "149.41", "lastFundingRate": "-0.00005000",
                      "interestRate": "0.00010000", "nextFundingTime": 1700006400000, "time": 1700000001000})
    [f] = codec.feed_http(f"{BINANCE}/fapi/v1/premiumIndex?symbol=SOLUSDT", one, 1)
    assert (f.ts, f.rate, f.interval_hours) == (1700000001000, -0.00005, 8.0)
    assert (f.mark_px, f.index_px) == (149.5, 149.4)
    many = json.dumps([json.loads(one) | {"symbol": "BTCUSDT"}, json.loads(one) | {"time": 1700000002000}])
    out = codec.feed_http(f"{BINANCE}/fapi/v1/premiumIndex", many, 2)
    assert [e.ts for e in out] == [1700000002000]  # BTCUSDT is not a configured symbol


def test_binance_open_interest_waits_for_a_mark() -> None:
    codec = BinanceCodec(["SOLUSDT"])
    body = json.dumps({"openInterest": "12000000.500", "symbol": "SOLUSDT", "time": 1700000000500})
    assert codec.feed_http(f"{BINANCE}/fapi/v1/openInterest?symbol=SOLUSDT", body, 1) == []
    out = codec.feed_ws(json.dumps(MARK), 2)  # the first mark publishes it (no interval: no funding)
    assert out == [OpenInterest("binance", "SOLUSDT", 1700000000500, 24_000_001.0, 12_000_000.5,
                                pytest.approx(12_000_000.5 * 150.1))]
    later = json.dumps({"openInterest": "12000001", "symbol": "SOLUSDT", "time": 1700000060000})
    [oi] = codec.feed_http(f"{BINANCE}/fapi/v1/openInterest?symbol=SOLUSDT", later, 3)
    assert oi.oi_notional == pytest.approx(12_000_001 * 150.1)


def test_binance_force_order_all_market_stream() -> None:
    codec = BinanceCodec(["SOLUSDT"])
    frame = {"stream": "!forceOrder@arr", "data": {"e": "forceOrder", "E": 1700000000100, "o": {
        "s": "SOLUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "12", "p": "149.00", "ap": "149.20",
        "X": "FILLED", "l": "12", "z": "12", "T": 1700000000090}}}
    assert codec.feed_ws(json.dumps(frame), 5) == [
        Liquidation("binance", "SOLUSDT", 1700000000090, "long", 149.2, 12.0, pytest.approx(1790.4), 5)]


@pytest.mark.parametrize(("path", "body", "errors", "malformed"), [
    ("/fapi/v1/openInterest", '{"code": -1121, "msg": "Invalid symbol."}', 1, 0),
    ("/fapi/v1/openInterest", '{"openInterest": "x", "symbol": "SOLUSDT", "time": 1}', 0, 1),
    ("/fapi/v1/premiumIndex", '{"symbol": "SOLUSDT", "markPrice": "0", "time": 1}', 0, 1),
    ("/fapi/v1/fundingInfo", '[{"symbol": "SOLUSDT", "fundingIntervalHours": 0}]', 0, 1),
    ("/fapi/v1/fundingInfo", "<html>", 0, 1),
])
def test_binance_bad_bodies_are_counted(path: str, body: str, errors: int, malformed: int) -> None:
    codec = BinanceCodec(["SOLUSDT"])
    assert codec.feed_http(BINANCE + path, body, 0) == []
    assert (codec.stats.errors, codec.stats.malformed) == (errors, malformed)


# ---------------------------------------------------------------------------------------- Bybit


def test_bybit_rest_open_interest_before_the_first_mark_is_held_not_zero() -> None:
    codec = BybitCodec(["SOLUSDT"])
    body = json.dumps({"retCode": 0, "retMsg": "OK", "result": {
        "symbol": "SOLUSDT", "category": "linear",
        "list": [{"openInterest": "6000", "timestamp": "1700000000000"}], "nextPageCursor": ""},
        "retExtInfo": {}, "time": 1700000000100})
    url = "https://api.bybit.com/v5/market/open-interest?category=linear&symbol=SOLUSDT&intervalTime=5min"
    assert codec.feed_http(url, body, 0) == []
    ticker = {"topic": "tickers.SOLUSDT", "type": "snapshot", "ts": 1700000001000, "cs": 1, "data": {
        "symbol": "SOLUSDT", "markPrice": "100", "indexPrice": "100", "fundingRate": "0.0001",
        "fundingIntervalHour": "8"}}
    out = codec.feed_ws(json.dumps(ticker), 1)
    expected = OpenInterest("bybit", "SOLUSDT", 1700000000000, 6000.0, 3000.0, 300_000.0)
    assert of(OpenInterest, out) == [expected]
    # a ticker delta with openInterest but no mark yet known publishes nothing
    fresh = BybitCodec(["SOLUSDT"])
    delta = {"topic": "tickers.SOLUSDT", "type": "delta", "ts": 1, "cs": 2,
             "data": {"symbol": "SOLUSDT", "openInterest": "10"}}
    assert of(OpenInterest, fresh.feed_ws(json.dumps(delta), 2)) == []
