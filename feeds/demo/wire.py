"""Frame builders in each venue's wire format (key order and number formatting as the venues send).

Prices are integer ticks of 0.01. Binance USDⓈ-M SOLUSDT prints prices with 4 decimals
("151.2300") and whole-SOL quantities; Bybit linear SOLUSDT prices with 3 decimals and sizes in
steps of 0.1; OKX SOL-USDC-SWAP prices with 2 decimals and sizes in contracts (``ctVal`` 1 SOL,
``lotSz`` 0.01).
"""

from __future__ import annotations

from typing import Any

import orjson

SYMBOL = "SOLUSDT"
OKX_INST = "SOL-USDC-SWAP"

BINANCE_WS_URL = (
    "wss://fstream.binance.com/stream?streams="
    "solusdt@aggTrade/solusdt@depth@100ms/solusdt@bookTicker/!forceOrder@arr"
)
BINANCE_DEPTH_URL = "https://fapi.binance.com/fapi/v1/depth?symbol=SOLUSDT&limit=1000"
BYBIT_WS_URL = "wss://stream.bybit.com/v5/public/linear"
OKX_WS_URL = "wss://ws.okx.com:8443/ws/v5/public"
OKX_INSTRUMENTS_URL = "https://www.okx.com/api/v5/public/instruments?instType=SWAP"


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def px4(tick: int) -> str:
    return f"{tick // 100}.{tick % 100:02d}00"


def px3(tick: int) -> str:
    return f"{tick // 100}.{tick % 100:02d}0"


def px2(tick: int) -> str:
    return f"{tick // 100}.{tick % 100:02d}"


def dec(value: float, places: int) -> str:
    return f"{value:.{places}f}"


def rate(value: float) -> str:
    """A funding rate as Bybit prints it: up to 8 decimals, no trailing zeros ("0.0001")."""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


# --------------------------------------------------------------------------- Binance
def _envelope(stream: str, data: dict[str, Any]) -> str:
    return dumps({"stream": stream, "data": data})


def binance_agg_trade(
    agg_id: int, first_id: int, last_id: int, tick: int, qty: int, sell: bool, trade_ms: int, event_ms: int
) -> str:
    return _envelope(
        "solusdt@aggTrade",
        {
            "e": "aggTrade",
            "E": event_ms,
            "a": agg_id,
            "s": SYMBOL,
            "p": px4(tick),
            "q": str(qty),
            "f": first_id,
            "l": last_id,
            "T": trade_ms,
            "m": sell,
        },
    )


def binance_depth(
    first: int,
    final: int,
    prev: int,
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
    trans_ms: int,
    event_ms: int,
) -> str:
    return _envelope(
        "solusdt@depth@100ms",
        {
            "e": "depthUpdate",
            "E": event_ms,
            "T": trans_ms,
            "s": SYMBOL,
            "U": first,
            "u": final,
            "pu": prev,
            "b": [[px4(t), str(q)] for t, q in bids],
            "a": [[px4(t), str(q)] for t, q in asks],
        },
    )


def binance_book_ticker(
    update_id: int, bid: int, bid_qty: int, ask: int, ask_qty: int, trans_ms: int, event_ms: int
) -> str:
    return _envelope(
        "solusdt@bookTicker",
        {
            "e": "bookTicker",
            "u": update_id,
            "s": SYMBOL,
            "b": px4(bid),
            "B": str(bid_qty),
            "a": px4(ask),
            "A": str(ask_qty),
            "T": trans_ms,
            "E": event_ms,
        },
    )


def binance_snapshot(
    last_update_id: int,
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
    trans_ms: int,
    event_ms: int,
) -> str:
    return dumps(
        {
            "lastUpdateId": last_update_id,
            "E": event_ms,
            "T": trans_ms,
            "bids": [[px4(t), str(q)] for t, q in bids],
            "asks": [[px4(t), str(q)] for t, q in asks],
        }
    )


def binance_force_order(
    order_side: str, bankrupt_tick: int, avg_tick: int, qty: int, trade_ms: int, event_ms: int
) -> str:
    """``order_side`` is the liquidation ORDER's side: SELL closes a long."""
    return _envelope(
        "!forceOrder@arr",
        {
            "e": "forceOrder",
            "E": event_ms,
            "o": {
                "s": SYMBOL,
                "S": order_side,
                "o": "LIMIT",
                "f": "IOC",
                "q": str(qty),
                "p": px4(bankrupt_tick),
                "ap": px4(avg_tick),
                "X": "FILLED",
                "l": str(qty),
                "z": str(qty),
                "T": trade_ms,
            },
        },
    )


# --------------------------------------------------------------------------- Bybit
def bybit_subscribe(req_id: str, args: list[str]) -> str:
    return dumps({"req_id": req_id, "op": "subscribe", "args": args})


def bybit_ack(req_id: str, conn_id: str) -> str:
    return dumps({"success": True, "ret_msg": "", "conn_id": conn_id, "req_id": req_id, "op": "subscribe"})


def bybit_ticker(kind: str, fields: dict[str, str], cs: int, ts_ms: int) -> str:
    return dumps(
        {
            "topic": f"tickers.{SYMBOL}",
            "type": kind,
            "data": {"symbol": SYMBOL, **fields},
            "cs": cs,
            "ts": ts_ms,
        }
    )


def bybit_liquidations(items: list[tuple[int, str, float, int]], ts_ms: int) -> str:
    """``items``: ``(T, S, size, bankruptcy tick)``; ``S`` = "Buy" when a LONG was liquidated."""
    return dumps(
        {
            "topic": f"allLiquidation.{SYMBOL}",
            "type": "snapshot",
            "ts": ts_ms,
            "data": [
                {"T": t, "s": SYMBOL, "S": side, "v": dec(v, 1), "p": px3(tick)} for t, side, v, tick in items
            ],
        }
    )


# --------------------------------------------------------------------------- OKX
def okx_subscribe() -> str:
    return dumps({"op": "subscribe", "args": [{"channel": "trades", "instId": OKX_INST}]})


def okx_ack(conn_id: str) -> str:
    return dumps({"event": "subscribe", "arg": {"channel": "trades", "instId": OKX_INST}, "connId": conn_id})


def okx_trade(trade_id: int, tick: int, sz: float, side: str, ts_ms: int) -> str:
    return dumps(
        {
            "arg": {"channel": "trades", "instId": OKX_INST},
            "data": [
                {
                    "instId": OKX_INST,
                    "tradeId": str(trade_id),
                    "px": px2(tick),
                    "sz": dec(sz, 2),
                    "side": side,
                    "ts": str(ts_ms),
                    "count": "1",
                },
            ],
        }
    )


def _okx_swap(inst: str, settle: str, ct_val: str, lot: str, tick: str, lever: str) -> dict[str, str]:
    uly = inst.removesuffix("-SWAP")
    return {
        "alias": "",
        "baseCcy": "",
        "category": "1",
        "ctMult": "1",
        "ctType": "linear",
        "ctVal": ct_val,
        "ctValCcy": inst.split("-")[0],
        "expTime": "",
        "instFamily": uly,
        "instId": inst,
        "instType": "SWAP",
        "lever": lever,
        "listTime": "1611916828000",
        "lotSz": lot,
        "maxIcebergSz": "100000000.0000000000",
        "maxLmtSz": "100000000",
        "maxMktSz": "20000",
        "maxStopSz": "20000",
        "maxTriggerSz": "100000000",
        "maxTwapSz": "100000000",
        "minSz": lot,
        "optType": "",
        "quoteCcy": "",
        "settleCcy": settle,
        "state": "live",
        "stk": "",
        "tickSz": tick,
        "uly": uly,
    }


def okx_instruments() -> str:
    return dumps(
        {
            "code": "0",
            "msg": "",
            "data": [
                _okx_swap("BTC-USDT-SWAP", "USDT", "0.01", "0.01", "0.1", "100"),
                _okx_swap("SOL-USDT-SWAP", "USDT", "1", "0.01", "0.01", "50"),
                _okx_swap("BTC-USDC-SWAP", "USDC", "0.0001", "0.01", "0.1", "100"),
                _okx_swap(OKX_INST, "USDC", "1", "0.01", "0.01", "50"),
            ],
        }
    )


# --------------------------------------------------------------------------- OI, funding (issue 19)
OKX_USDT_INST = "SOL-USDT-SWAP"
BINANCE_MARKET_URL = "wss://fstream.binance.com/market/stream?streams=solusdt@markPrice"
BINANCE_OI_URL = "https://fapi.binance.com/fapi/v1/openInterest?symbol=SOLUSDT"
BINANCE_FUNDING_INFO_URL = "https://fapi.binance.com/fapi/v1/fundingInfo"


def binance_mark_price(mark: float, index: float, funding: float, next_ms: int, event_ms: int) -> str:
    """``<symbol>@markPrice``: mark ``p``, index ``i``, estimated settle ``P``, funding ``r``, ``T``."""
    return _envelope("solusdt@markPrice", {
        "e": "markPriceUpdate", "E": event_ms, "s": SYMBOL, "p": dec(mark, 8), "P": dec(index, 8),
        "i": dec(index, 8), "r": dec(funding, 8), "T": next_ms})


def binance_open_interest(oi: float, time_ms: int) -> str:
    return dumps({"openInterest": dec(oi, 3), "symbol": SYMBOL, "time": time_ms})


def binance_funding_info() -> str:
    """Only symbols whose funding parameters Binance adjusted are listed (SOLUSDT is not)."""
    return dumps([{"symbol": "BLZUSDT", "adjustedFundingRateCap": "0.02000000",
                   "adjustedFundingRateFloor": "-0.02000000", "fundingIntervalHours": 4,
                   "disclaimer": False}])


def okx_open_interest(inst: str, oi_ccy: float, px: float, ts_ms: int) -> str:
    return dumps({"arg": {"channel": "open-interest", "instId": inst}, "data": [
        {"instId": inst, "instType": "SWAP", "oi": dec(oi_ccy, 2), "oiCcy": dec(oi_ccy, 2),
         "oiUsd": dec(oi_ccy * px, 2), "ts": str(ts_ms)}]})


def okx_funding_rate(inst: str, funding: float, settle_ms: int, ts_ms: int) -> str:
    return dumps({"arg": {"channel": "funding-rate", "instId": inst}, "data": [
        {"formulaType": "withRate", "fundingRate": dec(funding, 16), "fundingTime": str(settle_ms),
         "impactValue": "20000.0000000000000000", "instId": inst, "instType": "SWAP",
         "interestRate": "0.0001000000000000", "maxFundingRate": "0.015", "method": "current_period",
         "minFundingRate": "-0.015", "nextFundingRate": "", "nextFundingTime": str(settle_ms + 28_800_000),
         "premium": "0.0001035", "settFundingRate": dec(funding, 16), "settState": "settled",
         "ts": str(ts_ms)}]})


def okx_liquidation(inst: str, pos_side: str, bankrupt: float, sz: float, ts_ms: int) -> str:
    uly = inst.removesuffix("-SWAP")
    return dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [
        {"details": [{"bkLoss": "0", "bkPx": dec(bankrupt, 2), "ccy": "", "posSide": pos_side,
                      "side": "sell" if pos_side == "long" else "buy", "sz": dec(sz, 2), "ts": str(ts_ms)}],
         "instFamily": uly, "instId": inst, "instType": "SWAP", "uly": uly}]})
