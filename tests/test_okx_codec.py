"""OKX v5 codec: the cryptofeed recording plus hand-written frames in OKX's documented format."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from core.models import Instrument, Liquidation, MarketEvent, Side, Trade
from feeds.okx.codec import OkxCodec
from tests.conftest import CRYPTOFEED_DIR

SAMPLE = CRYPTOFEED_DIR / "OKX.jsonl.zst"
SAMPLE_INSTS = ["BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"]
INST_URL = "https://www.okx.com/api/v5/public/instruments?instType=SWAP"
SOL = "SOL-USDC-SWAP"


def approx(x: float) -> float:
    """``pytest.approx`` typed as a float, for comparing whole structs."""
    return cast(float, pytest.approx(x))


def iter_recording(path: Path) -> Iterator[dict[str, str]]:
    with path.open("rb") as fh:
        reader = zstandard.ZstdDecompressor().stream_reader(fh)
        for line in io.TextIOWrapper(reader, encoding="utf-8"):
            if line.strip():
                yield json.loads(line)


def ws(codec: OkxCodec, msg: object, recv_ns: int = 7) -> list[MarketEvent]:
    return codec.feed_ws(json.dumps(msg), recv_ns)


def instruments_body(*items: dict[str, str], code: str = "0", msg: str = "") -> str:
    return json.dumps({"code": code, "msg": msg, "data": list(items)})


# Contract values below are test values, in the REST shape OKX documents.
SOL_INST = {
    "instId": SOL,
    "instType": "SWAP",
    "ctVal": "0.1",
    "ctMult": "1",
    "ctValCcy": "SOL",
    "ctType": "linear",
    "tickSz": "0.01",
    "lotSz": "0.01",
    "settleCcy": "USDC",
    "state": "live",
}
BTC_INV = {
    "instId": "BTC-USD-SWAP",
    "instType": "SWAP",
    "ctVal": "100",
    "ctMult": "1",
    "ctValCcy": "USD",
    "ctType": "inverse",
    "tickSz": "0.1",
    "lotSz": "1",
    "settleCcy": "BTC",
}


def trades_msg(inst_id: str, *rows: tuple[str, str, str, str]) -> dict[str, object]:
    return {
        "arg": {"channel": "trades", "instId": inst_id},
        "data": [
            {"instId": inst_id, "tradeId": tid, "px": px, "sz": sz, "side": side, "ts": "1700000000000"}
            for tid, px, sz, side in rows
        ],
    }


def liq_msg(*items: dict[str, object]) -> dict[str, object]:
    return {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": list(items)}


# ---------------------------------------------------------------------------- recording


def test_sample_parses_with_no_unknown_or_malformed() -> None:
    codec = OkxCodec(SAMPLE_INSTS)
    events: list[MarketEvent] = []
    recv_trades = 0
    for rec in iter_recording(SAMPLE):
        if rec["t"] == "recv":
            events += codec.feed_ws(rec["data"], 1)
            msg = json.loads(rec["data"])
            if msg.get("arg", {}).get("channel") == "trades" and "data" in msg:
                recv_trades += len(msg["data"])
        elif rec["t"] == "http":
            events += codec.feed_http(rec["url"], rec["data"], 1)
    s = codec.stats
    assert s.unknown == 0, s.unknown_kinds
    assert s.malformed == 0, s.last_error
    assert s.errors == 0
    assert s.ignored > 0  # books / tickers
    assert codec.pending == 0
    trades = [e for e in events if isinstance(e, Trade)]
    assert len(trades) == recv_trades > 0
    assert {t.symbol for t in trades} == set(SAMPLE_INSTS)
    assert all(t.qty > 0 and t.price > 0 for t in trades)
    insts = {e.symbol: e for e in events if isinstance(e, Instrument)}
    assert insts["BTC-USD-220527"].ct_val == 100.0
    # BTC-USD-220527 is inverse (ctVal 100 USD): qty in BTC = sz × 100 / px
    first = next(t for t in trades if t.symbol == "BTC-USD-220527")
    assert (first.trade_id, first.price, first.side) == ("7849", 30218.8, Side.BUY)
    assert first.qty == pytest.approx(1 * 100 / 30218.8)


def test_default_instruments_are_the_sol_usdt_and_usdc_swaps() -> None:
    codec = OkxCodec()
    assert codec.inst_ids == frozenset({SOL, "SOL-USDT-SWAP"})
    assert ws(codec, trades_msg("BTC-USDT", ("1", "30000", "1", "buy"))) == []
    assert codec.stats.ignored == 1


# ---------------------------------------------------------------------------- trades and ctVal


def test_trades_use_ct_val_from_rest() -> None:
    codec = OkxCodec()
    out = codec.feed_http(INST_URL, instruments_body(BTC_INV, SOL_INST), 0)
    assert out == [Instrument("okx", SOL, 0.1, 0.01, 0.01, 0)]
    out = ws(codec, trades_msg(SOL, ("42", "150.5", "30", "sell")))
    assert out == [Trade("okx", SOL, 1700000000000, 150.5, approx(3.0), Side.SELL, "42", 7)]


def test_inverse_contracts_convert_usd_to_base() -> None:
    codec = OkxCodec(["BTC-USD-SWAP"])
    codec.feed_http(INST_URL, instruments_body(BTC_INV), 0)
    (t,) = ws(codec, trades_msg("BTC-USD-SWAP", ("1", "50000", "5", "buy")))
    assert isinstance(t, Trade)
    assert t.qty == pytest.approx(5 * 100 / 50000)


def test_trades_before_ct_val_are_buffered_then_released() -> None:
    codec = OkxCodec()
    assert ws(codec, trades_msg(SOL, ("1", "150", "10", "buy"), ("2", "151", "20", "sell")), 11) == []
    assert codec.pending == 2
    assert codec.stats.errors == 0
    out = codec.feed_http(INST_URL, instruments_body(SOL_INST), 0)
    assert isinstance(out[0], Instrument)
    assert [(e.trade_id, e.qty, e.recv_ns) for e in out[1:] if isinstance(e, Trade)] == [
        ("1", approx(1.0), 11),
        ("2", approx(2.0), 11),
    ]
    assert codec.pending == 0


def test_pending_buffer_is_bounded_and_overflow_counted() -> None:
    codec = OkxCodec(max_pending=3)
    for i in range(5):
        ws(codec, trades_msg(SOL, (str(i), "150", "10", "buy")))
    assert codec.pending == 3
    assert codec.stats.errors == 2
    assert "ctVal unknown" in codec.stats.last_error
    out = codec.feed_http(INST_URL, instruments_body(SOL_INST), 0)
    assert [e.trade_id for e in out if isinstance(e, Trade)] == ["2", "3", "4"]


# ---------------------------------------------------------------------------- liquidations


def test_liquidation_orders_filter_side_and_order() -> None:
    codec = OkxCodec()
    codec.feed_http(INST_URL, instruments_body(SOL_INST), 0)
    out = ws(
        codec,
        liq_msg(
            {
                "details": [
                    {
                        "bkLoss": "0",
                        "bkPx": "0.007831",
                        "ccy": "",
                        "posSide": "short",
                        "side": "buy",
                        "sz": "13",
                        "ts": "1692266434010",
                    }
                ],
                "instFamily": "IOST-USDT",
                "instId": "IOST-USDT-SWAP",
                "instType": "SWAP",
                "uly": "IOST-USDT",
            },
            {
                "details": [
                    {
                        "bkLoss": "0",
                        "bkPx": "140",
                        "ccy": "",
                        "posSide": "net",
                        "side": "buy",
                        "sz": "50",
                        "ts": "1692266434030",
                    },
                    {
                        "bkLoss": "0",
                        "bkPx": "150",
                        "ccy": "",
                        "posSide": "long",
                        "side": "sell",
                        "sz": "20",
                        "ts": "1692266434000",
                    },
                    {
                        "bkLoss": "0",
                        "bkPx": "145",
                        "ccy": "",
                        "posSide": "net",
                        "side": "sell",
                        "sz": "10",
                        "ts": "1692266434020",
                    },
                ],
                "instFamily": "SOL-USDC",
                "instId": SOL,
                "instType": "SWAP",
                "uly": "SOL-USDC",
            },
        ),
    )
    assert out == [
        Liquidation("okx", SOL, 1692266434000, "long", 150.0, approx(2.0), approx(300.0), 7),
        Liquidation("okx", SOL, 1692266434020, "long", 145.0, approx(1.0), approx(145.0), 7),
        Liquidation("okx", SOL, 1692266434030, "short", 140.0, approx(5.0), approx(700.0), 7),
    ]


def test_liquidations_before_ct_val_are_buffered() -> None:
    codec = OkxCodec()
    msg = liq_msg(
        {
            "details": [
                {"bkPx": "150", "posSide": "short", "side": "buy", "sz": "10", "ts": "1692266434000"}
            ],
            "instId": SOL,
            "instType": "SWAP",
        }
    )
    assert ws(codec, msg) == []
    assert codec.pending == 1
    out = codec.feed_http(INST_URL, instruments_body(SOL_INST), 0)
    liqs = [e for e in out if isinstance(e, Liquidation)]
    assert len(liqs) == 1 and liqs[0].side == "short" and liqs[0].qty == pytest.approx(1.0)


# ---------------------------------------------------------------------------- control and errors


def test_events_pong_and_known_channels() -> None:
    codec = OkxCodec()
    ws(codec, {"event": "subscribe", "arg": {"channel": "trades", "instId": SOL}, "connId": "a"})
    ws(codec, {"event": "subscribe", "arg": {"channel": "liquidation-orders", "instType": "SWAP"}})
    assert codec.feed_ws("pong", 0) == [] and codec.feed_ws(b"pong", 0) == []
    assert codec.stats.errors == 0
    ws(
        codec,
        {
            "event": "error",
            "code": "60012",
            "msg": 'Invalid request: {"op": "subscribe"}',
            "connId": "a4d3ae55",
        },
    )
    assert codec.stats.errors == 1 and "60012" in codec.stats.last_error
    for ch in ("books", "tickers", "books5", "bbo-tbt", "candle1m", "index-tickers", "mark-price"):
        ws(codec, {"arg": {"channel": ch, "instId": SOL}, "data": []})
    assert codec.stats.ignored == 7
    ws(codec, {"arg": {"channel": "brand-new", "instId": SOL}, "data": []})
    ws(codec, {"event": "surprise"})
    ws(codec, {"foo": 1})
    assert codec.stats.unknown == 3
    assert codec.stats.unknown_kinds == {"channel:brand-new": 1, "event:surprise": 1, "frame": 1}
    assert codec.stats.malformed == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage{",
        b"[]",
        b'{"arg": {"channel": 5}}',
        json.dumps({"arg": {"channel": "trades", "instId": SOL}, "data": {"not": "a list"}}).encode(),
        json.dumps(trades_msg(SOL, ("1", "abc", "1", "buy"))).encode(),
        json.dumps(trades_msg(SOL, ("1", "150", "1", "hold"))).encode(),
        json.dumps(
            liq_msg(
                {
                    "instId": SOL,
                    "details": [{"bkPx": "150", "posSide": "net", "side": "", "sz": "1", "ts": "1"}],
                }
            )
        ).encode(),
        json.dumps(
            liq_msg({"instId": SOL, "details": [{"bkPx": "", "posSide": "long", "sz": "1", "ts": "1"}]})
        ).encode(),
    ],
)
def test_malformed_frames_are_counted_not_raised(raw: bytes) -> None:
    codec = OkxCodec()
    codec.feed_http(INST_URL, instruments_body(SOL_INST), 0)
    assert codec.feed_ws(raw, 1) == []
    assert codec.stats.malformed == 1
    assert codec.pending == 0


def test_rest_errors() -> None:
    codec = OkxCodec()
    assert codec.feed_http(INST_URL, instruments_body(code="50011", msg="Too Many Requests"), 0) == []
    assert codec.stats.errors == 1 and "50011" in codec.stats.last_error
    assert codec.feed_http(INST_URL, b"<html>", 0) == []
    bad = dict(SOL_INST, ctVal="")
    assert codec.feed_http(INST_URL, instruments_body(bad), 0) == []
    assert codec.stats.malformed == 2
    assert SOL not in codec.contracts
    assert (
        codec.feed_http("https://www.okx.com/api/v5/public/mark-price?instId=X", instruments_body(), 0)
        == []
    )
    assert codec.stats.unknown_kinds == {"http:/api/v5/public/mark-price": 1}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_fuzz_never_raises(raw: bytes | str) -> None:
    codec = OkxCodec()
    codec.feed_ws(raw, 0)
    codec.feed_http(INST_URL, raw, 0)
    assert codec.stats.frames == 2
