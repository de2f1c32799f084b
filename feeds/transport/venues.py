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
    binance_oi_url: str = ""
    binance_premium_url: str = ""
    binance_funding_info_url: str = ""
    okx_instruments_urls: tuple[str, ...] = ()  # one per configured instrument (ctVal)
    okx_oi_urls: tuple[str, ...] = ()
    okx_funding_urls: tuple[str, ...] = ()


def okx_insts(cfg: Config) -> tuple[str, ...]:
    """The OKX instruments followed: the USDC swap (trades, basis) and the USDT swap."""
    m = cfg.market
    return tuple(dict.fromkeys((m.okx_usdc_inst, m.okx_usdt_inst)))


def okx_inst_type(inst: str) -> str:
    if inst.endswith("-SWAP"):
        return "SWAP"
    return "SPOT" if inst.count("-") == 1 else "FUTURES"


def endpoints(cfg: Config) -> Endpoints:
    m, v = cfg.market, cfg.venues
    b, y, o = v.binance.rest_url.rstrip("/"), v.bybit.rest_url.rstrip("/"), v.okx.rest_url.rstrip("/")
    insts = okx_insts(cfg)
    return Endpoints(
        binance_depth_url=f"{b}/fapi/v1/depth?symbol={m.binance_symbol}&limit=1000",
        bybit_oi_url=(f"{y}/v5/market/open-interest?category=linear&symbol={m.bybit_symbol}"
                      "&intervalTime=5min&limit=1"),
        bybit_funding_url=f"{y}/v5/market/funding/history?category=linear&symbol={m.bybit_symbol}&limit=1",
        bybit_instruments_url=f"{y}/v5/market/instruments-info?category=linear&symbol={m.bybit_symbol}",
        okx_instruments_url=(f"{o}/api/v5/public/instruments?instType={okx_inst_type(m.okx_usdc_inst)}"
                             f"&instId={m.okx_usdc_inst}"),
        binance_oi_url=f"{b}/fapi/v1/openInterest?symbol={m.binance_symbol}",
        binance_premium_url=f"{b}/fapi/v1/premiumIndex?symbol={m.binance_symbol}",
        binance_funding_info_url=f"{b}/fapi/v1/fundingInfo",
        okx_instruments_urls=tuple(f"{o}/api/v5/public/instruments?instType={okx_inst_type(i)}&instId={i}"
                                   for i in insts),
        okx_oi_urls=tuple(f"{o}/api/v5/public/open-interest?instType={okx_inst_type(i)}&instId={i}"
                          for i in insts if okx_inst_type(i) != "SPOT"),
        okx_funding_urls=tuple(f"{o}/api/v5/public/funding-rate?instId={i}" for i in insts
                               if okx_inst_type(i) == "SWAP"),
    )


def ws_specs(cfg: Config, max_conn_age_s: float = 23.5 * 3600) -> list[WsSpec]:
    """The four connections: Binance public (depth + bookTicker), Binance market (aggTrade,
    liquidations, mark price + funding), Bybit linear (tickers + allLiquidation), OKX public
    (trades, liquidations, open interest and funding of each instrument)."""
    m, v, f = cfg.market, cfg.venues, cfg.feeds
    sym = m.binance_symbol.lower()
    bmax = f.binance_max_age_s
    public = f"{v.binance.ws_public_url}?streams={sym}@depth@100ms/{sym}@bookTicker"
    market = f"{v.binance.ws_market_url}?streams={sym}@aggTrade/!forceOrder@arr/{sym}@markPrice"
    bybit_sub = msgspec.json.encode(
        {"op": "subscribe", "args": [f"tickers.{m.bybit_symbol}", f"allLiquidation.{m.bybit_symbol}"]}
    ).decode()
    swaps = [i for i in okx_insts(cfg) if okx_inst_type(i) == "SWAP"]
    okx_args: list[dict[str, str]] = [
        {"channel": "trades", "instId": m.okx_usdc_inst},
        {"channel": "liquidation-orders", "instType": "SWAP"},
        *({"channel": "open-interest", "instId": i} for i in swaps),
        *({"channel": "funding-rate", "instId": i} for i in swaps),
    ]
    okx_sub = msgspec.json.encode({"op": "subscribe", "args": okx_args}).decode()
    return [
        WsSpec("binance.public", "binance", public, bmax, classify=classify_binance,
               dead_after_s=max(3 * bmax, 15.0), max_conn_age_s=max_conn_age_s),
        WsSpec("binance.market", "binance", market, bmax, classify=classify_binance,
               dead_after_s=max(12 * bmax, 60.0), max_conn_age_s=max_conn_age_s),
        WsSpec("bybit.linear", "bybit", v.bybit.ws_url, f.bybit_max_age_s, subscribe=(bybit_sub,),
               expected_acks=1, classify=classify_bybit, ping_payload='{"op":"ping"}',
               ping_interval_s=20.0, dead_after_s=45.0, max_conn_age_s=max_conn_age_s),
        WsSpec("okx.public", "okx", v.okx.ws_url, f.okx_max_age_s, subscribe=(okx_sub,),
               expected_acks=len(okx_args), classify=classify_okx, ping_payload="ping", ping_interval_s=20.0,
               ping_when_idle=True, dead_after_s=40.0, max_conn_age_s=max_conn_age_s),
    ]
