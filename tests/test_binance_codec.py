"""feeds.binance: the wire codec, replayed against real recordings and hand-written frames."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
import zstandard

from core.models import BookTicker, BookTop, Liquidation, MarketEvent, ResyncNeeded, Side, Trade
from feeds.base import Codec
from feeds.binance.codec import BinanceCodec


def env(stream: str, data: dict[str, object]) -> bytes:
    return json.dumps({"stream": stream, "data": data}).encode()


def depth(u_first: int, u: int, pu: int, b: list[list[str]] | None = None, a: list[list[str]] | None = None,
          symbol: str = "SOLUSDT", with_t: bool = True) -> dict[str, object]:
    d: dict[str, object] = {"e": "depthUpdate", "E": u * 10 + 1, "s": symbol, "U": u_first, "u": u,
                            "pu": pu, "b": b or [], "a": a or []}
    if with_t:
        d["T"] = u * 10
    return d


SNAPSHOT = json.dumps({"lastUpdateId": 100, "E": 1, "T": 1, "bids": [["150.00", "10"], ["149.99", "5"]],
                       "asks": [["150.01", "7"], ["150.02", "3"]]})


# --- THE ACCEPTANCE TEST -------------------------------------------------------------------------


def test_replay_btcusdt_book_matches_venue_book_ticker(btc_file: Path) -> None:
    """Every bookTicker whose u is the final u of an applied diff agrees exactly with our BookTop."""
    codec = BinanceCodec()
    tops: dict[int, BookTop] = {}
    tickers: list[BookTicker] = []
    resyncs_after_snapshot: list[ResyncNeeded] = []
    snapshot_seen = False
    with gzip.open(btc_file, "rb") as fh:
        for line in fh:
            ns, _, frame = line.rstrip(b"\r\n").partition(b" ")
            if b'"lastUpdateId"' in frame and b'"stream"' not in frame:
                out = codec.feed_http("", frame, int(ns))
                snapshot_seen = True
            else:
                out = codec.feed_ws(frame, int(ns))
            for ev in out:
                if isinstance(ev, BookTop):
                    tops[ev.update_id] = ev
                elif isinstance(ev, BookTicker):
                    tickers.append(ev)
                elif isinstance(ev, ResyncNeeded) and snapshot_seen:
                    resyncs_after_snapshot.append(ev)
    assert snapshot_seen
    assert resyncs_after_snapshot == []
    st = codec.stats
    assert (st.gaps, st.malformed, st.unknown, st.resyncs) == (0, 0, 0, 1)  # 1 = the initial request
    matches = 0
    for t in tickers:
        top = tops.get(t.update_id)
        if top is None:
            continue
        matches += 1
        ours = (top.bid_px, top.bid_qty, top.ask_px, top.ask_qty)
        assert ours == (t.bid_px, t.bid_qty, t.ask_px, t.ask_qty), (top, t)
        assert top.timestamp == t.timestamp  # both are the transaction time T of the same update
    print(f"bookTicker/BookTop exact matches: {matches} (BookTops: {len(tops)}, tickers: {len(tickers)})")
    assert len(tops) > 6000
    assert matches >= 500


def test_float_depth_decoder_matches_the_strict_path(btc_file: Path) -> None:
    """Combined-stream depth frames take the float decoder; bare payloads the strict string path:
    the same recording fed both ways gives the same events, bit for bit."""
    fast, strict = BinanceCodec(), BinanceCodec()
    n = 0
    with gzip.open(btc_file, "rb") as fh:
        for line in fh:
            _ns, _, frame = line.rstrip(b"\r\n").partition(b" ")
            if b'"lastUpdateId"' in frame and b'"stream"' not in frame:
                assert fast.feed_http("", frame, 0) == strict.feed_http("", frame, 0)
            elif b"depthUpdate" in frame[:80]:
                bare = frame[frame.index(b'"data":') + 7:-1]  # the payload without the envelope
                assert b"@depth" not in bare[:48]
                assert repr(fast.feed_ws(frame, 0)) == repr(strict.feed_ws(bare, 0))
                n += 1
    assert n > 6000
    assert fast.stats.decoded == strict.stats.decoded and fast.stats.malformed == strict.stats.malformed == 0


def test_float_depth_decoder_leaves_odd_levels_to_the_strict_path() -> None:
    """A level the float decoder rejects (here: padded with a space, which float() accepts) is
    handled exactly as before."""
    codec = BinanceCodec(default_symbol="solusdt")
    codec.feed_http("", SNAPSHOT, 0)
    out = codec.feed_ws(env("solusdt@depth@0ms", depth(99, 101, 98, b=[[" 150.00", "4"]])), 0)
    assert len(out) == 1 and isinstance(out[0], BookTop) and out[0].bid_qty == 4.0
    out = codec.feed_ws(env("solusdt@depth@0ms", depth(102, 103, 101, b=[["oops", "1"]])), 0)
    assert len(out) == 1 and isinstance(out[0], ResyncNeeded)
    assert codec.stats.malformed == 1


# --- the cryptofeed sample ---------------------------------------------------------------------


def test_cryptofeed_sample_parses_cleanly(data_dir: Path) -> None:
    codec = BinanceCodec()
    counts: dict[str, int] = {}
    with (data_dir / "cryptofeed" / "BINANCE_FUTURES.jsonl.zst").open("rb") as fh:
        text = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh), encoding="utf-8")
        for line in text:
            rec = json.loads(line)
            recv_ns = int(float(rec.get("ts", 0)) * 1e9)
            if rec["t"] == "recv":
                out = codec.feed_ws(rec["data"], recv_ns)
            elif rec["t"] == "http":
                out = codec.feed_http(rec["url"], rec["data"], recv_ns)
            else:
                continue
            for ev in out:
                counts[type(ev).__name__] = counts.get(type(ev).__name__, 0) + 1
    st = codec.stats
    assert st.unknown == 0, st.unknown_kinds
    assert st.malformed == 0, st.last_error
    assert st.gaps == 0
    assert st.ignored >= 68  # 67 kline_1m frames + exchangeInfo
    assert counts.get("Trade", 0) == 91 and counts.get("BookTicker", 0) == 613
    assert counts.get("BookTop", 0) > 500
    assert set(codec.books) == {"SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"}
    assert all(b.synced for b in codec.books.values())


# --- messages ------------------------------------------------------------------------------------


def test_is_a_codec() -> None:
    codec: Codec = BinanceCodec()
    assert codec.venue == "binance"


@pytest.mark.parametrize("kind, id_key", [("aggTrade", "a"), ("trade", "t")])
def test_trades_aggressor_side(kind: str, id_key: str) -> None:
    codec = BinanceCodec()
    base = {"e": kind, "E": 2, "T": 1, "s": "SOLUSDT", id_key: 42, "p": "150.25", "q": "3.5", "X": "MARKET"}
    sold = codec.feed_ws(env(f"solusdt@{kind}", {**base, "m": True}), 99)
    bought = codec.feed_ws(json.dumps({**base, "m": False}), 100)  # bare payload
    assert sold == [Trade("binance", "SOLUSDT", 1, 150.25, 3.5, Side.SELL, "42", 99)]
    assert bought == [Trade("binance", "SOLUSDT", 1, 150.25, 3.5, Side.BUY, "42", 100)]
    assert codec.stats.decoded == 2 and codec.stats.frames == 2


def test_book_ticker() -> None:
    codec = BinanceCodec()
    out = codec.feed_ws(env("solusdt@bookTicker", {"e": "bookTicker", "u": 7, "s": "SOLUSDT", "b": "150.00",
                                                    "B": "1.5", "a": "150.01", "A": "2", "T": 5, "E": 6}), 0)
    assert out == [BookTicker("binance", "SOLUSDT", 5, 7, 150.0, 1.5, 150.01, 2.0)]


def test_force_order() -> None:
    codec = BinanceCodec()
    o = {"s": "SOLUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "10", "p": "140.00", "ap": "141.00",
         "X": "FILLED", "l": "4", "z": "8", "T": 123}
    out = codec.feed_ws(env("!forceOrder@arr", {"e": "forceOrder", "E": 124, "o": o}), 5)
    assert out == [Liquidation("binance", "SOLUSDT", 123, "long", 141.0, 8.0, 141.0 * 8.0, 5)]
    o2 = {**o, "S": "BUY", "ap": "0", "z": "0"}
    out = codec.feed_ws(json.dumps({"e": "forceOrder", "E": 124, "o": o2}), 6)
    assert out == [Liquidation("binance", "SOLUSDT", 123, "short", 140.0, 10.0, 1400.0, 6)]


def test_ignored_garbage_and_unknown_never_raise() -> None:
    codec = BinanceCodec()
    frames: list[bytes | str] = [
        '{"result":null,"id":1}',
        env("solusdt@kline_1m", {"e": "kline", "E": 1, "s": "SOLUSDT", "k": {"t": 1}}),
        env("solusdt@compositeIndex", {"e": "compositeIndex", "E": 1, "s": "SOLUSDT"}),
        '{"e":"somethingNew"}',
        b"\x00\xffnot json",
        "",
        "[1,2,3]",
        '{"stream":"solusdt@trade","data":{"e":"trade","s":"SOLUSDT"}}',  # known type, missing fields
        env("solusdt@trade", {"e": "trade", "E": 1, "T": 1, "s": "SOLUSDT", "t": 1, "p": "x", "q": "1",
                              "m": True}),  # not a number
        env("solusdt@trade", {"e": "trade", "E": 1, "T": 1, "s": "SOLUSDT", "t": 1, "p": 1.5, "q": "1",
                              "m": True}),  # price must be a string
        '{"foo": 1}',
    ]
    for f in frames:
        assert codec.feed_ws(f, 0) == []
    st = codec.stats
    assert st.frames == len(frames)
    assert st.ignored == 2
    assert st.unknown_kinds == {"compositeIndex": 1, "somethingNew": 1, "?": 1}
    assert st.malformed == 6
    assert st.decoded == 0
    # HTTP side
    assert codec.feed_http("https://fapi.binance.com/fapi/v1/exchangeInfo", '{"timezone":"UTC"}', 0) == []
    assert codec.feed_http("", '{"timezone":"UTC","rateLimits":[],"symbols":[]}', 0) == []
    assert codec.feed_http("https://fapi.binance.com/fapi/v1/depth?symbol=SOLUSDT", "garbage", 0) == []
    assert codec.feed_http("https://fapi.binance.com/fapi/v1/depth?symbol=SOLUSDT",
                           '{"code":-1121,"msg":"Invalid symbol."}', 0) == []
    assert codec.feed_http("https://fapi.binance.com/fapi/v1/ticker/price", "{}", 0) == []
    assert codec.feed_http("", SNAPSHOT, 0) == []  # no symbol= and no book awaiting one
    assert (st.ignored, st.malformed, st.errors) == (4, 8, 1)
    assert st.unknown_kinds["http:/fapi/v1/ticker/price"] == 1


def test_depth_sync_through_the_codec_with_gap_and_recovery() -> None:
    codec = BinanceCodec(symbols=["SOLUSDT"])
    events: list[MarketEvent] = []
    events += codec.feed_ws(env("solusdt@depth@100ms", depth(95, 99, 94, b=[["150.00", "99"]])), 0)
    events += codec.feed_ws(env("solusdt@depth@100ms", depth(100, 105, 99, b=[["150.00", "11"]])), 0)
    assert [type(e) for e in events] == [ResyncNeeded]
    assert codec.stats.resyncs == 1
    # symbol from the url query, even though two books might exist later
    out = codec.feed_http("https://fapi.binance.com/fapi/v1/depth?symbol=solusdt&limit=1000", SNAPSHOT, 0)
    assert len(out) == 1 and isinstance(out[0], BookTop)
    top = out[0]
    assert (top.bid_px, top.bid_qty, top.ask_px, top.ask_qty, top.update_id, top.timestamp) == (
        150.0, 11.0, 150.01, 7.0, 105, 1050)
    mid = (150.0 + 150.01) / 2
    assert top.bid_usd == 150.0 * 11 + 149.99 * 5 and top.ask_usd == 150.01 * 7 + 150.02 * 3
    assert top.spread_bps == (150.01 - 150.0) / mid * 1e4

    # E is the timestamp when T is absent; a bare payload works too
    out = codec.feed_ws(json.dumps(depth(106, 110, 105, a=[["150.01", "0"]], with_t=False)), 0)
    assert isinstance(out[0], BookTop) and out[0].timestamp == 1101 and out[0].ask_px == 150.02

    out = codec.feed_ws(env("solusdt@depth@100ms", depth(120, 125, 118)), 0)  # pu 118 != 110
    assert len(out) == 1 and isinstance(out[0], ResyncNeeded)
    assert (codec.stats.gaps, codec.stats.resyncs) == (1, 2)
    assert codec.feed_ws(env("solusdt@depth@100ms", depth(126, 130, 125, b=[["150.00", "1"]])), 0) == []
    snap2 = json.dumps({"lastUpdateId": 127, "bids": [["150.00", "3"]], "asks": [["150.05", "1"]]})
    out = codec.feed_http("", snap2, 0)  # the only book awaiting a snapshot
    assert len(out) == 1 and isinstance(out[0], BookTop)
    assert (out[0].bid_qty, out[0].ask_px, out[0].update_id) == (1.0, 150.05, 130)
    assert codec.stats.gaps == 1 and codec.books["SOLUSDT"].synced

    # other symbols are filtered out
    assert codec.feed_ws(env("btcusdt@depth@100ms", depth(1, 2, 0, symbol="BTCUSDT")), 0) == []
    assert "BTCUSDT" not in codec.books


def test_default_symbol_and_malformed_depth_level() -> None:
    codec = BinanceCodec(default_symbol="solusdt")
    assert codec.feed_http("", SNAPSHOT, 0) == []
    assert codec.books["SOLUSDT"].state == "await_first"
    out = codec.feed_ws(env("solusdt@depth@0ms", depth(99, 101, 98, b=[["oops", "1"]])), 0)
    assert len(out) == 1 and isinstance(out[0], ResyncNeeded)
    assert codec.stats.malformed == 1 and codec.stats.resyncs == 1


def _ticker_frames() -> list[bytes]:
    ok = {"e": "bookTicker", "u": 7, "s": "SOLUSDT", "b": "150.00", "B": "3", "a": "150.01", "A": "4",
          "T": 5, "E": 6}
    return [
        env("solusdt@bookTicker", ok),
        env("solusdt@bookTicker", {**ok, "b": "nope"}),  # float() rejects it: malformed
        env("solusdt@bookTicker", {**ok, "a": 150.01}),  # a JSON number: the strict decoder rejects it
        env("solusdt@bookTicker", {**ok, "s": "BTCUSDT"}),  # filtered out: ignored
        env("solusdt@bookTicker", {k: v for k, v in ok.items() if k != "u"}),  # missing field
        json.dumps(ok).encode(),  # a bare payload
        env("solusdt@depth", depth(1, 2, 0)),
    ]


def test_dropped_book_tickers_are_counted_exactly_as_built_ones() -> None:
    """drop_book_ticker builds no model but classifies and counts every frame the same way."""
    built, dropped = BinanceCodec(symbols=["SOLUSDT"]), BinanceCodec(symbols=["SOLUSDT"])
    dropped.drop_book_ticker = True
    out_built: list[MarketEvent] = []
    out_dropped: list[MarketEvent] = []
    for i, raw in enumerate(_ticker_frames()):
        out_built += built.feed_ws(raw, i)
        out_dropped += dropped.feed_ws(raw, i)
    assert [e for e in out_built if not isinstance(e, BookTicker)] == out_dropped
    assert sum(isinstance(e, BookTicker) for e in out_built) == 2
    assert built.stats.as_dict() == dropped.stats.as_dict()
    assert built.stats.malformed == 3 and built.stats.ignored == 1


def test_pipeline_builds_book_tickers_only_while_someone_listens() -> None:
    """The first book ticker still locks the primary symbol; a listener added later gets them."""
    from core.bus import Bus, Topics
    from feeds.pipeline import MarketPipeline

    bus = Bus()
    pipe = MarketPipeline(bus, binance_symbol=None)
    tick = {"e": "bookTicker", "u": 7, "s": "BTCUSDT", "b": "1", "B": "2", "a": "3", "A": "4", "T": 5}
    pipe.on_ws("binance", env("btcusdt@bookTicker", tick), 1)
    assert pipe.primary == "BTCUSDT"
    pipe.on_ws("binance", env("btcusdt@bookTicker", tick), 2)
    got: list[BookTicker] = []
    off = bus.on(Topics.BOOK_TICKER, got.append)
    pipe.on_ws("binance", env("btcusdt@bookTicker", {**tick, "u": 8}), 3)
    assert [t.update_id for t in got] == [8]
    off()
    pipe.on_ws("binance", env("btcusdt@bookTicker", {**tick, "u": 9}), 4)
    assert [t.update_id for t in got] == [8]
    assert pipe.codecs["binance"].stats.decoded == 4
