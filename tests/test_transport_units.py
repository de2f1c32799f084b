"""Backoff, classifiers and config-built endpoints (defaults are the real mainnet endpoints)."""

from __future__ import annotations

import random

from core.config_schema import Config
from feeds.bybit.rest import classify_bybit_response  # noqa: F401  (the classifier we delegate to)
from feeds.transport.backoff import Backoff
from feeds.transport.rest import Outcome, classify_bybit, classify_generic
from feeds.transport.venues import classify_bybit as ws_bybit
from feeds.transport.venues import classify_okx, endpoints, ws_specs
from feeds.transport.ws import Kind


def test_backoff_full_jitter_capped() -> None:
    b = Backoff(1.0, 60.0, rng=random.Random(1))
    delays = [b.next() for _ in range(50)]
    assert all(1.0 <= d <= 60.0 for d in delays)  # 1 s to 60 s, as the issue asks
    assert max(delays[10:]) > 10  # grows
    b.reset()
    assert b.ceiling() == 1.0


def test_default_endpoints_are_mainnet_and_from_config() -> None:
    cfg = Config()
    urls = [s.url for s in ws_specs(cfg)]
    assert urls == [
        "wss://fstream.binance.com/public/stream?streams=solusdt@depth@100ms/solusdt@bookTicker",
        "wss://fstream.binance.com/market/stream?streams=solusdt@aggTrade/!forceOrder@arr/solusdt@markPrice",
        "wss://stream.bybit.com/v5/public/linear",
        "wss://ws.okx.com:8443/ws/v5/public",
    ]
    ep = endpoints(cfg)
    assert ep.binance_depth_url == "https://fapi.binance.com/fapi/v1/depth?symbol=SOLUSDT&limit=1000"
    assert ep.bybit_oi_url.startswith("https://api.bybit.com/v5/market/open-interest?category=linear&symbol=SOLUSDT")
    assert ep.okx_instruments_url == "https://www.okx.com/api/v5/public/instruments?instType=SWAP&instId=SOL-USDC-SWAP"
    specs = {s.name: s for s in ws_specs(cfg)}
    assert '"tickers.SOLUSDT"' in specs["bybit.linear"].subscribe[0]
    assert '"allLiquidation.SOLUSDT"' in specs["bybit.linear"].subscribe[0]
    assert specs["bybit.linear"].ping_payload == '{"op":"ping"}'
    assert specs["bybit.linear"].ping_interval_s == 20
    assert specs["okx.public"].ping_payload == "ping" and specs["okx.public"].dead_after_s > 30
    assert '"liquidation-orders"' in specs["okx.public"].subscribe[0]
    okx_sub = specs["okx.public"].subscribe[0]
    for ch in ("open-interest", "funding-rate"):
        for inst in ("SOL-USDT-SWAP", "SOL-USDC-SWAP"):
            assert f'{{"channel":"{ch}","instId":"{inst}"}}' in okx_sub
    assert specs["okx.public"].expected_acks == 6
    assert ep.binance_oi_url == "https://fapi.binance.com/fapi/v1/openInterest?symbol=SOLUSDT"
    assert ep.binance_premium_url == "https://fapi.binance.com/fapi/v1/premiumIndex?symbol=SOLUSDT"
    assert ep.okx_oi_urls == tuple(
        f"https://www.okx.com/api/v5/public/open-interest?instType=SWAP&instId={i}"
        for i in ("SOL-USDC-SWAP", "SOL-USDT-SWAP"))
    assert ep.okx_funding_urls == tuple(
        f"https://www.okx.com/api/v5/public/funding-rate?instId={i}"
        for i in ("SOL-USDC-SWAP", "SOL-USDT-SWAP"))
    assert all(s.max_conn_age_s < 24 * 3600 for s in specs.values())


def test_ws_classifiers() -> None:
    assert ws_bybit('{"success":true,"ret_msg":"","conn_id":"x","req_id":"","op":"subscribe"}') is Kind.ACK
    assert ws_bybit('{"success":false,"ret_msg":"bad","op":"subscribe"}') is Kind.NACK
    assert ws_bybit('{"success":true,"ret_msg":"pong","conn_id":"x","req_id":"","op":"ping"}') is Kind.PONG
    assert ws_bybit('{"topic":"tickers.SOLUSDT","data":{}}') is Kind.DATA
    assert classify_okx("pong") is Kind.PONG
    assert classify_okx('{"event":"subscribe","arg":{"channel":"trades"}}') is Kind.ACK
    assert classify_okx('{"event":"error","code":"60012","msg":"x"}') is Kind.NACK
    assert classify_okx('{"arg":{"channel":"trades"},"data":[]}') is Kind.DATA


def test_rest_classifiers() -> None:
    assert classify_generic(200, b"{}")[0] is Outcome.OK
    assert classify_generic(429, b"")[0] is Outcome.RATE_LIMIT
    assert classify_generic(418, b"")[0] is Outcome.BANNED
    assert classify_generic(403, b"")[0] is Outcome.BANNED
    assert classify_generic(503, b"")[0] is Outcome.RETRY
    busy = b'{"retCode":10006,"retMsg":"Too many visits","result":{}}'
    assert classify_bybit(200, busy)[0] is Outcome.RATE_LIMIT
    assert classify_bybit(200, b'{"retCode":10429,"retMsg":"x","result":{}}')[0] is Outcome.RATE_LIMIT
    assert classify_bybit(403, b"")[0] is Outcome.BANNED
    assert classify_bybit(200, b'{"retCode":0,"retMsg":"OK","result":{}}')[0] is Outcome.OK
