"""Per-venue connection specs and REST URLs, all built from config (defaults = mainnet)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from core.config_schema import Config
from feeds.transport.ws import Kind, WsSpec

_any = msgspec.json.Decoder().decode


def _obj(raw: bytes | str) -> dict[str, object] | None:
    try:
        obj = _any(raw)
    except msgspec.DecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def classify_binance(raw: bytes | str) -> Kind:
    """Combined-stream data frames start with ``{"stream"``; ``{"result":null,"id":n}`` acks."""
    if raw[:9] in ('{"stream"', b'{"stream"'):
        return Kind.DATA
    obj = _obj(raw)
    if obj is not None and "id" in obj and "stream" not in obj:
        return Kind.NACK if obj.get("error") or obj.get("code") else Kind.ACK
    return Kind.DATA


def classify_bybit(raw: bytes | str) -> Kind:
    """``{"topic":..}`` data; ``{"success":..,"op":"subscribe"}`` ack; ``op: ping/pong`` pong."""
    if raw[:9] in ('{"topic":', b'{"topic":'):
        return Kind.DATA
    obj = _obj(raw)
    if obj is None or "topic" in obj:
        return Kind.DATA
    op = obj.get("op")
    if op in ("ping", "pong") or obj.get("ret_msg") == "pong":
        return Kind.PONG
    if op == "subscribe":
        return Kind.ACK if obj.get("success") is True else Kind.NACK
    return Kind.DATA


def classify_okx(raw: bytes | str) -> Kind:
    """Text ``pong``; ``{"event":"subscribe"}`` ack; ``{"event":"error"}`` nack; else data."""
    if raw == "pong" or raw == b"pong":
        return Kind.PONG
    if raw[:8] not in ('{"event"', b'{"event"'):
        return Kind.DATA
    obj = _obj(raw)
    if obj is None:
        return Kind.DATA
    ev = obj.get("event")
    if ev == "subscribe":
        return Kind.ACK
    if ev == "error":
        return Kind.NACK
    return Kind.PONG  # notice / channel-conn-count: control, not market data


@dataclass(frozen=True, slots=True)
class Endpoints:
    binance_depth_url: str
    bybit_oi_url: str
    bybit_funding_url: str
    bybit_instruments_url: str
    okx_instruments_url: str


def okx_inst_type(inst: str) -> str:
    if inst.endswith("-SWAP"):
        return "SWAP"
    return "SPOT" if inst.count("-") == 1 else "FUTURES"


def endpoints(cfg: Config) -> Endpoints:
    m, v = cfg.market, cfg.venues
    b, y, o = v.binance.rest_url.rstrip("/"), v.bybit.rest_url.rstrip("/"), v.okx.rest_url.rstrip("/")
    return Endpoints(
        binance_depth_url=f"{b}/fapi/v1/depth?symbol={m.binance_symbol}&limit=1000",
        bybit_oi_url=(f"{y}/v5/market/open-interest?category=linear&symbol={m.bybit_symbol}"
                      "&intervalTime=5min&limit=1"),
        bybit_funding_url=f"{y}/v5/market/funding/history?category=linear&symbol={m.bybit_symbol}&limit=1",
        bybit_instruments_url=f"{y}/v5/market/instruments-info?category=linear&symbol={m.bybit_symbol}",
        okx_instruments_url=(f"{o}/api/v5/public/instruments?instType={okx_inst_type(m.okx_usdc_inst)}"
                             f"&instId={m.okx_usdc_inst}"),
    )


def ws_specs(cfg: Config, max_conn_age_s: float = 23.5 * 3600) -> list[WsSpec]:
    """The four connections: Binance public (depth + bookTicker), Binance market (aggTrade +
    liquidations), Bybit linear (tickers + allLiquidation), OKX public (trades + liquidations)."""
    m, v, f = cfg.market, cfg.venues, cfg.feeds
    sym = m.binance_symbol.lower()
    bmax = f.binance_max_age_s
    public = f"{v.binance.ws_public_url}?streams={sym}@depth@100ms/{sym}@bookTicker"
    market = f"{v.binance.ws_market_url}?streams={sym}@aggTrade/!forceOrder@arr"
    bybit_sub = msgspec.json.encode(
        {"op": "subscribe", "args": [f"tickers.{m.bybit_symbol}", f"allLiquidation.{m.bybit_symbol}"]}
    ).decode()
    okx_sub = msgspec.json.encode({"op": "subscribe", "args": [
        {"channel": "trades", "instId": m.okx_usdc_inst},
        {"channel": "liquidation-orders", "instType": "SWAP"},
    ]}).decode()
    return [
        WsSpec("binance.public", "binance", public, bmax, classify=classify_binance,
               dead_after_s=max(3 * bmax, 15.0), max_conn_age_s=max_conn_age_s),
        WsSpec("binance.market", "binance", market, bmax, classify=classify_binance,
               dead_after_s=max(12 * bmax, 60.0), max_conn_age_s=max_conn_age_s),
        WsSpec("bybit.linear", "bybit", v.bybit.ws_url, f.bybit_max_age_s, subscribe=(bybit_sub,),
               expected_acks=1, classify=classify_bybit, ping_payload='{"op":"ping"}',
               ping_interval_s=20.0, dead_after_s=45.0, max_conn_age_s=max_conn_age_s),
        WsSpec("okx.public", "okx", v.okx.ws_url, f.okx_max_age_s, subscribe=(okx_sub,),
               expected_acks=2, classify=classify_okx, ping_payload="ping", ping_interval_s=20.0,
               ping_when_idle=True, dead_after_s=40.0, max_conn_age_s=max_conn_age_s),
    ]
