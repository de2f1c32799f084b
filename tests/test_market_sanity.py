"""Market-data sanity (core/sanity.py) and where it runs: the rules, the band and its reference,
the pipeline's drops (counted per venue and kind, logged once per burst), the Binance book (crossed
tops, bad levels, garbage frames resync it), the Bybit and OKX codecs, the guards (``book
crossed``, a resyncing book), feed health and ``status``."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotrader.status_text import render_status
from core.bus import Bus, Topics
from core.clock import EventClock
from core.guard_config import GuardsConfig
from core.guard_monitor import GuardMonitor
from core.guard_status import StatusCache, status_now
from core.guards import allows_entry, evaluate
from core.market_state import MarketState
from core.models import (
    BadData,
    BookTop,
    FeedStatus,
    Funding,
    Liquidation,
    OpenInterest,
    ResyncNeeded,
    Trade,
)
from core.sanity import MarketSanity, base_asset, dropped_by_venue, dropped_text, sane_levels
from feeds.binance.codec import BinanceCodec
from feeds.bybit.codec import BybitCodec
from feeds.okx.codec import OkxCodec
from feeds.pipeline import MarketPipeline
from feeds.replay_health import ReplayHealth
from feeds.transport.health import FeedHealth, HealthMonitor
from tests.test_binance_codec import SNAPSHOT, depth, env
from tests.test_guards import NOW, book, feed

NAN, INF = math.nan, math.inf


# ------------------------------------------------------------------ the rules
S = "SOLUSDT"


def test_band_and_reference_freshness() -> None:
    s = MarketSanity(band_pct=10.0, reference_max_age_s=10.0)
    s.adopt("SOL")
    # no reference: only finite and positive
    assert s.in_band(1e9, NOW, S) and s.price_problem("price", 1e9, NOW, S) == ""
    for bad in (0.0, -150.0, NAN, INF, -INF):
        assert not s.in_band(bad, NOW, S)
        assert "not a positive number" in s.price_problem("price", bad, NOW, S)
    s.set_reference(100.0, NOW)
    assert s.in_band(90.01, NOW, S) and s.in_band(109.99, NOW + 10_000, S)
    assert not s.in_band(89.9, NOW, S) and not s.in_band(110.1, NOW, S) and not s.in_band(1e9, NOW, S)
    assert "outside 90..110 (reference 100" in s.price_problem("price", 1e9, NOW, S)
    # a reference more than its max age away (later or earlier) does not count: finite/positive only
    assert s.in_band(1e9, NOW + 10_001, S) and not s.in_band(NAN, NOW + 10_001, S)
    assert s.in_band(1e9, NOW - 10_001, S) and not s.in_band(1e9, NOW - 10_000, S)
    # another asset is never compared with this one's reference
    assert s.in_band(60_000.0, NOW, "BTCUSDT") and not s.in_band(60_000.0, NOW, "SOL-USDC-SWAP")
    s.set_reference(NAN, NOW + 20_000)  # ignored
    assert s.ref == 100.0
    s.adopt("BTC")  # the primary market changed: the reference goes
    assert s.in_band(60_000.0, NOW, "BTCUSDT") and s.in_band(100.0, NOW, "BTCUSDT")


def test_base_asset_and_marks_as_reference() -> None:
    assert [base_asset(x) for x in ("SOLUSDT", "solusdc", "SOL-USDC-SWAP", "BTC-USDT", "1000PEPEUSDT",
                                    "ETHUSD", "USDT")] == ["SOL", "SOL", "SOL", "BTC", "1000PEPE", "ETH",
                                                          "USDT"]
    s = MarketSanity()
    s.offer_mark(100.0, NOW, S)  # no primary known: the first mark's asset is adopted
    assert (s.asset, s.ref) == ("SOL", 100.0)
    s.offer_mark(60_000.0, NOW + 1, "BTCUSDT")  # another asset: not a reference
    s.offer_mark(101.0, NOW - 1, S)  # older than the reference
    assert s.ref == 100.0
    s.offer_mark(101.0, NOW + 2, S)
    assert s.ref == 101.0


def test_rules_per_kind() -> None:
    s = MarketSanity()
    s.adopt("SOL")
    s.set_reference(100.0, NOW)
    assert s.trade_problem(100.0, 1.0, NOW, S) == ""
    assert "qty" in s.trade_problem(100.0, 0.0, NOW, S) and "qty" in s.trade_problem(100.0, NAN, NOW, S)
    assert s.liquidation_problem(100.0, 1.0, 100.0, NOW, S) == ""
    assert "notional" in s.liquidation_problem(100.0, 1.0, INF, NOW, S)
    assert s.funding_problem(-0.001, 8.0, -109.5) == ""  # negative funding is normal
    assert s.funding_problem(NAN, 8.0, 1.0) and s.funding_problem(0.0001, 0.0, 1.0)
    assert s.mark_problem(0.0, 0.0, NOW, S) == ""  # unknown
    assert "mark" in s.mark_problem(-5.0, 0.0, NOW, S) and "index" in s.mark_problem(100.0, 500.0, NOW, S)
    assert s.oi_problem(2e6, 1e6, 1e8, NOW, S) == ""  # implies 100
    assert s.oi_problem(2e6, 1e6, 0.0, NOW, S) == ""  # no mark known yet
    assert s.oi_problem(0.0, 1e6, 1e8, NOW, S) and s.oi_problem(2e6, 1e6, -1.0, NOW, S)
    assert "OI notional / OI" in s.oi_problem(2e6, 1e6, 5e8, NOW, S)  # implies a mark of 500
    assert s.ticker_problem(None, None, None, None, NOW, S) == (None, "")
    assert s.ticker_problem(0.0, None, None, None, NOW, S)[0] == "mark"
    assert s.ticker_problem(None, 250.0, None, None, NOW, S)[0] == "mark"
    assert s.ticker_problem(100.0, 100.0, 0.0, None, NOW, S)[0] == "oi"
    with pytest.raises(ValueError, match="band_pct"):
        MarketSanity(band_pct=0.0)
    with pytest.raises(ValueError, match="reference_max_age_s"):
        MarketSanity(reference_max_age_s=INF)


def test_sane_levels() -> None:
    assert sane_levels([("150.00", "1"), (" 149.5", "0")]) == [(150.0, 1.0), (149.5, 0.0)]
    for bad in (("nan", "1"), ("inf", "1"), ("0", "1"), ("-1", "1"), ("1", "-1"), ("1", "nan"), ("x", "1")):
        with pytest.raises(ValueError):
            sane_levels([bad])


@settings(max_examples=300, deadline=None)
@given(ref=st.floats(min_value=1e-3, max_value=1e6), band=st.floats(min_value=0.01, max_value=100.0),
       px=st.floats(allow_nan=True, allow_infinity=True), dt=st.integers(-20_000, 20_000))
def test_a_usable_price_is_finite_positive_and_in_band_while_the_reference_is_fresh(
        ref: float, band: float, px: float, dt: int) -> None:
    s = MarketSanity(band_pct=band, reference_max_age_s=10.0)
    s.adopt("SOL")
    s.set_reference(ref, NOW)
    ok = s.in_band(px, NOW + dt, S)
    if s.lo < px < s.hi and NOW + dt <= s.ref_until:  # the pipeline's fast path accepts only usable prices
        assert ok
    if ok:
        assert math.isfinite(px) and px > 0
        if -10_000 <= dt <= 10_000:
            assert ref * (1 - band / 100) * (1 - 1e-12) <= px <= ref * (1 + band / 100) * (1 + 1e-12)


def test_counters_and_bursts() -> None:
    s = MarketSanity()
    assert s.count("binance", "trade", 0)  # the first drop starts a burst
    assert not s.count("binance", "trade", 9_000_000_000)  # within 10 s of the previous one
    assert not s.count("binance", "trade", 18_000_000_000)
    assert s.count("binance", "trade", 29_000_000_000)  # 11 s of silence: a new burst
    assert s.count("bybit", "mark", 29_000_000_000)  # per venue and kind
    assert s.dropped == {"binance": {"trade": 4}, "bybit": {"mark": 1}} and s.total() == 5
    assert s.dropped_of("okx") == {}
    by = dropped_by_venue([("binance.public", {"book": 1}), ("binance.market", {"book": 2, "trade": 3}),
                           ("bybit", {})])
    assert by == {"binance": {"book": 2, "trade": 3}}
    assert dropped_text(by) == "binance book 2, trade 3"


# ------------------------------------------------------------------ the pipeline
def trade_frame(px: str, qty: str = "1", t: int = 1, ts: int = NOW) -> bytes:
    return env("solusdt@trade", {"e": "trade", "E": ts, "T": ts, "s": "SOLUSDT", "t": t, "p": px, "q": qty,
                                 "m": False, "X": "MARKET"})


def book_frames(bid: str = "100.00", ask: str = "100.02") -> list[tuple[str, bytes]]:
    snap = json.dumps({"lastUpdateId": 100, "bids": [[bid, "10"]], "asks": [[ask, "10"]]}).encode()
    return [("http", snap), ("ws", env("solusdt@depth@100ms", depth(99, 101, 98) | {"T": NOW}))]


def pipe_with_book(bus: Bus | None = None) -> tuple[MarketPipeline, Bus]:
    bus = bus or Bus()
    p = MarketPipeline(bus, binance_symbol="SOLUSDT", okx_usdc_inst="SOL-USDC-SWAP")
    p.on_ws("binance", env("solusdt@depth@100ms", depth(99, 101, 98) | {"T": NOW}), 1)
    p.on_http("binance", "https://x/fapi/v1/depth?symbol=SOLUSDT", book_frames()[0][1], 2)
    assert p.sanity.ref == pytest.approx(100.01)
    return p, bus


def test_pipeline_drops_bad_trades_counts_them_and_logs_once_per_burst(caplog: pytest.LogCaptureFixture
                                                                       ) -> None:
    p, bus = pipe_with_book()
    trades: list[Trade] = []
    bars: list[Any] = []
    bus.on(Topics.TRADES, trades.append)
    bus.on(Topics.BARS, bars.append)
    caplog.set_level(logging.WARNING, logger="feeds.pipeline")
    bad = ["0", "-150", "NaN", "1e9", "inf", "150.5"]  # 150.5 is 50 % away from the mid
    for i, px in enumerate(bad):
        p.on_ws("binance", trade_frame(px, t=i), 10 + i)
    p.on_ws("binance", trade_frame("100.01", qty="0", t=9), 20)
    p.on_ws("binance", trade_frame("100.01", t=10), 21)
    assert [t.price for t in trades] == [100.01]
    assert p.dropped("binance") == {"trade": 7}
    assert p.stats.trades == 1
    logged = [r for r in caplog.records if "dropped a trade from binance" in r.getMessage()]
    assert len(logged) == 1 and "'0'" not in logged[0].getMessage() and "0.0" in logged[0].getMessage()
    p.flush()
    assert [(b.open, b.high, b.low, b.trades) for b in bars] == [(100.01, 100.01, 100.01, 1)]


def test_pipeline_drops_bad_liquidations_funding_marks_and_oi() -> None:
    p, bus = pipe_with_book()
    got: list[Any] = []
    for topic in (Topics.LIQUIDATIONS, Topics.FUNDING, Topics.OPEN_INTEREST):
        bus.on(topic, got.append)
    route = p._routes  # the codecs' output path, as a codec would return these events
    events = [
        Liquidation("binance", "SOLUSDT", NOW, "long", 0.0, 1.0, 0.0),  # bad
        Liquidation("binance", "SOLUSDT", NOW, "long", 100.0, 1.0, 100.0),
        Liquidation("binance", "BTCUSDT", NOW, "long", 60_000.0, 1.0, 6e4),  # not ours: not checked
        Funding("bybit", "SOLUSDT", NOW, NAN, 8.0, NAN),  # bad rate
        Funding("bybit", "SOLUSDT", NOW, 0.0001, 8.0, 10.95, mark_px=300.0),  # bad mark
        Funding("bybit", "SOLUSDT", NOW, 0.0001, 8.0, 10.95, mark_px=100.0, index_px=100.0),
        OpenInterest("bybit", "SOLUSDT", NOW, -1.0, 1.0, 1.0),  # bad
        OpenInterest("bybit", "SOLUSDT", NOW, 2e6, 1e6, 1e8),
    ]
    for ev in events:
        route[ev.__class__](ev.venue, ev)
    assert got == [events[1], events[5], events[7]]
    assert p.dropped("binance") == {"liquidation": 1}
    assert p.dropped("bybit") == {"funding": 1, "mark": 1, "oi": 1}


def test_a_fresh_mark_is_a_reference_without_a_book() -> None:
    p = MarketPipeline(Bus(), binance_symbol="SOLUSDT")
    p._routes[Funding]("bybit", Funding("bybit", "SOLUSDT", NOW, 0.0001, 8.0, 10.95, mark_px=100.0))
    assert p.sanity.ref == 100.0
    p.on_ws("binance", trade_frame("1e9"), 1)
    p.on_ws("binance", trade_frame("100.5"), 2)
    assert p.dropped("binance") == {"trade": 1} and p.stats.trades == 1


def test_bybit_refuses_a_bad_ticker_before_merging_it() -> None:
    bus = Bus()
    p = MarketPipeline(bus, bybit_symbol="SOLUSDT")
    funding: list[Funding] = []
    bus.on(Topics.FUNDING, funding.append)

    def ticker(ts: int, typ: str = "delta", **data: str) -> bytes:
        return json.dumps({"topic": "tickers.SOLUSDT", "type": typ, "ts": ts,
                           "data": {"symbol": "SOLUSDT", **data}}).encode()

    p.on_ws("bybit", ticker(NOW, "snapshot", markPrice="100", indexPrice="100", fundingRate="0.0001",
                            fundingIntervalHour="8", openInterest="2000", singleOpenInterest="1000"), 1)
    for bad in ({"markPrice": "0"}, {"markPrice": "-5"}, {"markPrice": "250"}, {"indexPrice": "1e9"},
                {"openInterest": "0"}):
        p.on_ws("bybit", ticker(NOW + 100, **bad), 2)
    p.on_ws("bybit", ticker(NOW + 200, fundingRate="0.0002"), 3)
    codec = p.codecs["bybit"]
    assert isinstance(codec, BybitCodec)
    assert codec.tickers["SOLUSDT"].mark_px == 100.0 and codec.tickers["SOLUSDT"].oi == 2000.0
    assert [(f.rate, f.mark_px) for f in funding] == [(0.0001, 100.0), (0.0002, 100.0)]
    assert p.dropped("bybit") == {"mark": 4, "oi": 1}
    assert codec.stats.malformed == 0


def test_okx_drops_one_bad_trade_not_the_frame() -> None:
    codec = OkxCodec()
    codec.feed_http("https://www.okx.com/api/v5/public/instruments", json.dumps(
        {"code": "0", "data": [{"instId": "SOL-USDC-SWAP", "instType": "SWAP", "ctVal": "1"}]}), 0)
    frame = json.dumps({"arg": {"channel": "trades", "instId": "SOL-USDC-SWAP"}, "data": [
        {"instId": "SOL-USDC-SWAP", "px": "0", "sz": "1", "side": "buy", "ts": "1"},
        {"instId": "SOL-USDC-SWAP", "px": "100", "sz": "1", "side": "sell", "ts": "2"}]})
    out = codec.feed_ws(frame, 0)
    assert [type(e) for e in out] == [BadData, Trade]
    assert isinstance(out[0], BadData) and out[0].kind == "trade"
    liq = json.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [
        {"instId": "SOL-USDC-SWAP", "details": [{"bkPx": "-1", "sz": "1", "ts": "5", "posSide": "long"}]}]})
    out = codec.feed_ws(liq, 0)
    assert [type(e) for e in out] == [BadData] and codec.stats.malformed == 0


# ------------------------------------------------------------------ the Binance book
def test_a_crossed_diff_is_published_then_the_book_resyncs() -> None:
    codec = BinanceCodec(default_symbol="solusdt")
    codec.feed_http("", SNAPSHOT, 0)
    out = codec.feed_ws(env("solusdt@depth@100ms", depth(99, 101, 98)), 0)
    assert [type(e) for e in out] == [BookTop]
    out = codec.feed_ws(env("solusdt@depth@100ms", depth(102, 103, 101, b=[["150.05", "1"]])), 0)
    assert [type(e) for e in out] == [BookTop, ResyncNeeded]
    top, resync = out
    assert isinstance(top, BookTop) and isinstance(resync, ResyncNeeded)
    assert (top.bid_px, top.ask_px) == (150.05, 150.01) and top.spread_bps < 0
    assert resync.reason.startswith("book crossed: best bid 150.05 >= best ask 150.01")
    sync = codec.books["SOLUSDT"]
    assert sync.crossed == 1 and not sync.synced and len(sync.book) == 0
    assert codec.feed_ws(env("solusdt@depth@100ms", depth(104, 105, 103)), 0) == []  # buffered
    # locked (bid == ask) is crossed too
    codec.feed_http("", json.dumps({"lastUpdateId": 104, "bids": [["150.00", "1"]],
                                    "asks": [["150.00", "1"]]}), 0)
    assert sync.crossed == 2


def test_bad_levels_never_reach_the_book() -> None:
    """Non-finite or non-positive prices (a NaN key would corrupt the sorted book) and negative or
    non-finite quantities are malformed, in either decoder path and in a snapshot; the book resyncs."""
    for level in (["nan", "1"], ["inf", "1"], ["-150", "1"], ["0", "1"], ["150.00", "-1"], ["150.00", "NaN"]):
        for frame in (env("solusdt@depth@100ms", depth(102, 103, 101, b=[level])),  # float decoder first
                      json.dumps(depth(102, 103, 101, b=[level])).encode()):  # bare: the strict path
            codec = BinanceCodec(default_symbol="solusdt")
            codec.feed_http("", SNAPSHOT, 0)
            codec.feed_ws(env("solusdt@depth@100ms", depth(99, 101, 98)), 0)
            out = codec.feed_ws(frame, 0)
            assert [type(e) for e in out] == [ResyncNeeded], (level, frame)
            assert codec.stats.malformed == 1 and len(codec.books["SOLUSDT"].book) == 0
        codec = BinanceCodec(default_symbol="solusdt")
        out = codec.feed_http("", json.dumps({"lastUpdateId": 1, "bids": [level], "asks": []}), 0)
        assert [type(e) for e in out] == [ResyncNeeded] and codec.stats.malformed == 1


@pytest.mark.parametrize("garbage", [
    b'{"stream":"solusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"SOLUSDT","U":1',  # cut
    b'{"stream":"solusdt@depth@100ms","data":{"e":"depthUpdate","s":"SOLUSDT"}}',  # fields missing
    b'\x00\xff\x13garbage',  # cannot tell what it was
])
def test_a_garbage_frame_resyncs_the_book_at_once(garbage: bytes) -> None:
    codec = BinanceCodec(default_symbol="solusdt")
    codec.feed_http("", SNAPSHOT, 0)
    codec.feed_ws(env("solusdt@depth@100ms", depth(99, 101, 98)), 0)
    out = codec.feed_ws(garbage, 0)
    assert [type(e) for e in out] == [ResyncNeeded] and not codec.books["SOLUSDT"].synced
    assert codec.stats.malformed == 1
    assert codec.feed_ws(garbage, 0) == []  # already waiting for a snapshot: no second request
    # a garbage trade frame leaves the book alone
    codec = BinanceCodec(default_symbol="solusdt")
    codec.feed_http("", SNAPSHOT, 0)
    codec.feed_ws(env("solusdt@depth@100ms", depth(99, 101, 98)), 0)
    assert codec.feed_ws(b'{"stream":"solusdt@trade","data":{"e":"trade"', 0) == []
    assert codec.books["SOLUSDT"].synced


# ------------------------------------------------------------------ the guards
def test_a_crossed_book_is_a_named_guard_failure_whatever_blocking_says() -> None:
    cfg = GuardsConfig(blocking=[])  # not even the spread guard listed as blocking
    ms = MarketState(cfg)
    feed(ms, NOW)
    assert evaluate(ms.snapshot(NOW), cfg, NOW, "live").status == "passing"
    for bid, ask in ((100.03, 100.02), (100.02, 100.02)):
        ms.on_book(book(NOW + 1, bid=bid, ask=ask, uid=2))
        r = evaluate(ms.snapshot(NOW + 1), cfg, NOW + 1, "live")
        assert r.status == "stale" and not allows_entry(r)
        assert any(b.startswith("book crossed: best bid 100.0") for b in r.blocks), r.blocks
        assert status_now(ms, NOW + 1) == StatusCache().status(ms, NOW + 1) == "stale"
    ms.on_book(book(NOW + 2, uid=3))
    assert evaluate(ms.snapshot(NOW + 2), cfg, NOW + 2, "live").status == "passing"


def test_a_resyncing_book_blocks_at_once_and_names_why() -> None:
    ms = MarketState()
    feed(ms, NOW)
    cache = StatusCache()
    assert cache.status(ms, NOW) == "passing"
    ms.on_book_resync(ResyncNeeded("binance", "SOLUSDT", "gap: pu=5 != last u=4"))
    r = evaluate(ms.snapshot(NOW), ms.cfg, NOW, "live")
    assert r.status == "stale" and "book not live: resyncing (gap: pu=5 != last u=4)" in r.blocks
    assert cache.status(ms, NOW) == status_now(ms, NOW) == "stale"
    ms.on_book(book(NOW + 100, uid=9))  # the first top after the new snapshot
    assert cache.status(ms, NOW + 100) == status_now(ms, NOW + 100) == "passing"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["top", "crossed", "resync", "tick"]), st.integers(0, 3_000)),
                max_size=40))
def test_status_cache_equals_the_full_evaluation_around_crossed_and_resyncing_books(
        steps: list[tuple[str, int]]) -> None:
    """From a passing market (so the book's checks decide), tops, crossed tops, resyncs and time."""
    ms = MarketState()
    feed(ms, NOW)
    cache = StatusCache()
    now, uid = NOW, 10
    for kind, dt in steps:
        now += dt
        uid += 1
        if kind == "top":
            ms.on_book(book(now, uid=uid))
        elif kind == "crossed":
            ms.on_book(book(now, bid=100.05, ask=100.02, uid=uid))
        elif kind == "resync":
            ms.on_book_resync(ResyncNeeded("binance", "SOLUSDT", "gap"))
        full = evaluate(ms.snapshot(now), ms.cfg, now, "live").status
        assert cache.status(ms, now) == status_now(ms, now) == full


def test_the_monitor_hears_book_resyncs_from_the_pipeline() -> None:
    bus = Bus()
    clock = EventClock()
    monitor = GuardMonitor(bus, GuardsConfig(), clock, "replay")
    p = MarketPipeline(bus, binance_symbol="SOLUSDT", clock=clock)
    p.on_ws("binance", env("solusdt@depth@100ms", depth(99, 101, 98) | {"T": NOW}), 1)
    p.on_http("binance", "https://x/fapi/v1/depth?symbol=SOLUSDT", book_frames()[0][1], 2)
    assert monitor.state.book is not None and monitor.state.book_resync == ""
    p.on_ws("binance", env("solusdt@depth@100ms", depth(110, 111, 109) | {"T": NOW + 5}), 3)  # a gap
    assert monitor.state.book_resync.startswith("gap")
    assert any("resyncing (gap" in b for b in monitor.check().blocks)


# ------------------------------------------------------------------ feed health and status
def test_replay_health_and_the_live_monitor_carry_the_venues_drops() -> None:
    p, bus = pipe_with_book()
    p.on_ws("binance", trade_frame("0"), 3)
    p.on_ws("binance", b"\x00garbage", 4)
    health = ReplayHealth(p, {"binance": 5.0})
    st_binance = next(s for s in health.statuses(NOW) if s.feed == "binance")
    assert st_binance.dropped == {"trade": 1, "frame": 1}
    got: list[FeedStatus] = []
    bus.on(Topics.FEED_STATUS, got.append)
    mon = HealthMonitor(bus, dropped=p.dropped)
    mon.add(FeedHealth("binance.market", 5.0))
    mon.add(FeedHealth("okx.public", 5.0))
    mon.publish_all()
    assert {s.feed: s.dropped for s in got} == {"binance.market": {"trade": 1, "frame": 1}, "okx.public": {}}
    wire = msgspec.json.decode(msgspec.json.encode(got[0]), type=FeedStatus)  # the control socket's form
    assert wire.dropped == {"trade": 1, "frame": 1}


def test_status_text_names_the_drops() -> None:
    d = {"data_source": "live", "feeds": {
        "binance.public": {"state": "live", "age_s": 0.1, "dropped": {"book": 1}},
        "binance.market": {"state": "live", "age_s": 0.2, "dropped": {"book": 1, "trade": 3}},
        "bybit.linear": {"state": "live", "age_s": 0.3, "dropped": {}}}}
    text = render_status(d)
    assert "  dropped    binance book 1, trade 3\n" in text + "\n"
    assert "dropped" not in render_status({"feeds": {"okx": {"state": "live", "dropped": {}}}})


def test_trades_of_other_symbols_are_not_checked_against_our_reference() -> None:
    p, bus = pipe_with_book()
    out: list[Trade] = []
    bus.on(Topics.TRADES, out.append)
    p.on_ws("binance", env("btcusdt@trade", {"e": "trade", "E": NOW, "T": NOW, "s": "BTCUSDT", "t": 1,
                                              "p": "60000", "q": "1", "m": True}), 5)
    assert p.dropped("binance") == {} and out == []
