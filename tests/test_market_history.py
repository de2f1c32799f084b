"""History on restart, piece by piece: the bar builder resumes the day's CVD/VWAP (and a bar left
open), the Parquet loader (unreadable days skipped, a failing loader never stops a start), the
market state and the UI model warm from history, the windows do not depend on arrival order."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.bars import BarBuilder
from core.bus import Bus
from core.market_history import HISTORY, MarketHistory, MarketWindows, dedupe_bars
from core.market_state import MarketState
from core.models import Bar, Funding, Liquidation, OpenInterest
from storage.market_history import load_history
from storage.parquet_store import ParquetStore
from tui.state import BusFeed

DAY = 1_741_564_800_000  # 2025-03-10 00:00 UTC
MIN = 60_000

trades_st = st.lists(
    st.tuples(st.integers(0, 3 * 3600_000), st.floats(100, 200), st.floats(0.001, 50), st.booleans()),
    min_size=2, max_size=300)


def run(trades: list[tuple[int, float, float, bool]], b: Any) -> list[Bar]:
    out = []
    for ts, px, q, sell in trades:
        bar = b.add(DAY + ts, px, q, sell)
        if bar is not None:
            out.append(bar)
    return out


def _builders() -> list[Any]:
    from feeds.binance import fast

    return [BarBuilder] + ([fast.compiled.Bars] if fast.compiled is not None else [])


@pytest.mark.parametrize("builder", _builders())
@settings(max_examples=200, deadline=None)
@given(trades=trades_st, cut=st.integers(1, 299))
def test_resumed_builder_equals_an_uninterrupted_one(builder: Any,
                                                     trades: list[tuple[int, float, float, bool]],
                                                     cut: int) -> None:
    """Both bar builders (core.bars and the compiled one) resume the same way."""
    trades = sorted(trades)
    cut = min(cut, len(trades) - 1)
    whole = builder("S")
    expected = run(trades, whole)
    first = builder("S")
    stored = run(trades[:cut], first)
    partial = first.current()  # the bar in progress, stored unclosed at shutdown
    if partial is not None:
        stored.append(partial)
    resumed = builder("S")
    resumed.resume(stored)
    got = stored[:-1] if partial is not None else stored
    got = got + run(trades[cut:], resumed)
    assert [b.timestamp for b in got] == [b.timestamp for b in expected]
    for g, e in zip(got, expected, strict=True):
        assert (g.open, g.high, g.low, g.close, g.trades) == (e.open, e.high, e.low, e.close, e.trades)
        for name in ("buy_vol", "sell_vol", "cvd", "vwap"):
            assert getattr(g, name) == pytest.approx(getattr(e, name), rel=1e-9, abs=1e-9), name
    last_g, last_e = resumed.current(), whole.current()
    assert (last_g is None) == (last_e is None)
    if last_g is not None and last_e is not None:
        assert last_g.cvd == pytest.approx(last_e.cvd, abs=1e-9)
        assert last_g.vwap == pytest.approx(last_e.vwap, rel=1e-9)


def bar(minute: int, closed: bool = True, close: float = 100.0) -> Bar:
    return Bar("SOLUSDT", DAY + minute * MIN, close, close + 1, close - 1, close, 1.0, 2.0, -1.0 * minute,
               close, 3, closed)


def test_dedupe_prefers_the_closed_bar_of_a_minute() -> None:
    got = dedupe_bars([bar(1), bar(2, closed=False, close=5), bar(2, close=7), bar(3, closed=False)])
    assert [(b.timestamp, b.close, b.closed) for b in got] == [
        (DAY + MIN, 100.0, True), (DAY + 2 * MIN, 7.0, True), (DAY + 3 * MIN, 100.0, False)]


def liq(ts: int, venue: str = "binance", symbol: str = "SOLUSDT") -> Liquidation:
    return Liquidation(venue, symbol, ts, "long", 100.0, 2.0, 200.0, 7)


def test_loader_reads_each_window_and_instrument(tmp_path: Path) -> None:
    now = DAY + 20 * 3600_000
    with ParquetStore(tmp_path, auto_flush=False) as store:
        for m in range(0, 20 * 60, 7):  # bars over 20 h: 24 h lookback keeps all of them
            store.add("bars", "binance", "SOLUSDT", bar(m))
        store.add("bars", "binance", "SOLUSDT", bar(20 * 60 - 1, closed=False))
        usdt = ("okx", "SOL-USDT-SWAP")
        store.add("liquidations", *usdt, liq(now - 7 * 3600_000, *usdt))  # older than 6 h
        store.add("liquidations", *usdt, liq(now - 3600_000, *usdt))
        store.add("liquidations", "bybit", "SOLUSDT", liq(now - 60_000, "bybit"))
        store.add("liquidations", "binance", "BTCUSDT", liq(now - 60_000, "binance", "BTCUSDT"))  # not ours
        oi = OpenInterest("bybit", "SOLUSDT", now - 3600_000, 2, 1, 9e7)
        store.add("open_interest", "bybit", "SOLUSDT", oi)
        for i in range(3):
            store.add("funding", "okx", "SOL-USDC-SWAP",
                      Funding("okx", "SOL-USDC-SWAP", now - (3 - i) * 60_000, 0.0001 * i, 8, 10.95 * i))
    insts = [("binance", "SOLUSDT"), ("bybit", "SOLUSDT"), ("okx", "SOL-USDT-SWAP"), ("okx", "SOL-USDC-SWAP")]
    h = load_history(tmp_path, ("binance", "SOLUSDT"), insts, now)
    assert len(h.bars) == len(range(0, 20 * 60, 7)) + 1 and not h.bars[-1].closed
    assert [(x.venue, x.ts) for x in h.liquidations] == [("okx", now - 3600_000), ("bybit", now - 60_000)]
    assert h.liquidations[0].symbol == "SOL-USDT-SWAP" and h.liquidations[0].recv_ns == 7
    assert [(o.venue, o.oi_notional) for o in h.open_interest] == [("bybit", 9e7)]
    assert [(f.symbol, f.apr_pct) for f in h.funding] == [("SOL-USDC-SWAP", 21.9)]  # the latest only
    assert load_history(tmp_path / "nothing", ("binance", "SOLUSDT"), insts, now) == MarketHistory(now_ms=now)


def test_loader_skips_unreadable_days_and_keeps_the_rest(tmp_path: Path) -> None:
    """A truncated file (a crash, a full disk) or a file without the kind's columns loses its day
    of that kind only: the other days and kinds still load, and nothing raises."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    now = DAY + 2 * 3600_000
    with ParquetStore(tmp_path, auto_flush=False) as store:
        for m in range(0, 120, 10):
            store.add("bars", "binance", "SOLUSDT", bar(m))
        store.add("liquidations", "bybit", "SOLUSDT", liq(now - 60_000, "bybit"))
    bars_dir = tmp_path / "binance" / "SOLUSDT" / "bars"
    (bars_dir / "20250309.parquet").write_bytes(b"PAR1 truncated by a crash")  # yesterday: garbage
    liq_dir = tmp_path / "okx" / "SOL-USDT-SWAP" / "liquidations"
    liq_dir.mkdir(parents=True)
    pq.write_table(pa.table({"ts": [now - 60_000], "foo": [1.0]}), liq_dir / "20250310.parquet")
    insts = [("binance", "SOLUSDT"), ("bybit", "SOLUSDT"), ("okx", "SOL-USDT-SWAP")]
    h = load_history(tmp_path, ("binance", "SOLUSDT"), insts, now)
    assert [b.timestamp for b in h.bars] == [bar(m).timestamp for m in range(0, 120, 10)]
    assert [(x.venue, x.ts) for x in h.liquidations] == [("bybit", now - 60_000)]


def test_loader_keeps_the_last_open_interest_of_each_minute(tmp_path: Path) -> None:
    """Bybit tickers and OKX pushes give ~10^5 OI rows a day; the loader hands back the last of
    each minute per instrument, and the windows built from it equal those built from every row."""
    rnd = random.Random(5)
    now = DAY + 3 * 3600_000
    rows = [OpenInterest(v, s, DAY + rnd.randrange(0, 3 * 3600_000, 250), 2, 1, rnd.uniform(1e8, 2e8))
            for v, s in (("bybit", "SOLUSDT"), ("okx", "SOL-USDT-SWAP")) for _ in range(3000)]
    with ParquetStore(tmp_path, auto_flush=False) as store:
        for o in rows:
            store.add("open_interest", o.venue, o.symbol, o)
    insts = [("bybit", "SOLUSDT"), ("okx", "SOL-USDT-SWAP")]
    h = load_history(tmp_path, ("binance", "SOLUSDT"), insts, now)
    minutes = {(o.venue, o.ts // MIN) for o in rows}
    assert len(h.open_interest) == len(minutes) < len(rows)
    full = MarketWindows()
    for o in sorted(rows, key=lambda o: o.ts):
        full.on_open_interest(o)
    loaded = MarketWindows()
    loaded.load(h)
    assert loaded.oi_series() == full.oi_series() and loaded.to_json() == full.to_json()


def test_market_state_history_is_no_sign_of_life() -> None:
    ms = MarketState()
    bars = [bar(m) for m in range(30)]
    ms.load_history(bars, [liq(DAY + 29 * MIN)], [], [])
    assert ms.bars_seen == 30 and ms.liq_count(DAY + 30 * MIN) == 1
    assert ms.snapshot(DAY + 30 * MIN).ages_s["liquidations"] is None  # the feeds still have to speak


@settings(max_examples=50, deadline=None)
@given(st.randoms(use_true_random=False))
def test_windows_do_not_depend_on_arrival_order(rnd: random.Random) -> None:
    insts = [("bybit", "SOLUSDT"), ("okx", "SOL-USDT-SWAP"), ("binance", "SOLUSDT")]
    ois = [OpenInterest(v, s, DAY + t * 17_000, 1, 1, float(t * 1000 + i))
           for i, (v, s) in enumerate(insts) for t in range(0, 200, 3)]
    liqs = [liq(DAY + t * 1000, v) for t in range(0, 3000, 37) for v in ("binance", "okx")]
    a, b = MarketWindows(oi_max_age_s=120), MarketWindows(oi_max_age_s=120)
    for o in ois:
        a.on_open_interest(o)
    for x in liqs:
        a.on_liquidation(x)
    shuffled_oi, shuffled_liq = ois[:], liqs[:]
    rnd.shuffle(shuffled_oi)
    rnd.shuffle(shuffled_liq)
    for o in shuffled_oi:
        b.on_open_interest(o)
    for x in shuffled_liq:
        b.on_liquidation(x)
    assert a.to_json() == b.to_json()
    series = a.oi_series()
    assert series[-1][1] > 0 and all(t % MIN == 0 for t, _ in series)


def test_ui_model_prefills_from_the_history_topic_before_live_values() -> None:
    bus = Bus()
    feed = BusFeed(bus)
    h = MarketHistory(now_ms=DAY + 40 * MIN, bars=[bar(m) for m in range(40)],
                      liquidations=[liq(DAY + 39 * MIN, "okx", "SOL-USDT-SWAP")],
                      open_interest=[OpenInterest("bybit", "SOLUSDT", DAY + 39 * MIN, 2, 1, 5e8)])
    bus.publish(HISTORY, h)
    feed.drain()
    m = feed.model
    assert len(m.bars) == 40 and len(m.liqs) == 1 and m.oi_series() == [5e8]
    assert m.oi_total() == 5e8


async def test_a_start_goes_on_without_history_it_cannot_load(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """History is a head start, never a reason not to start (the daemon recovers orders and
    stops at start): an unexpected loader error is logged and the windows start empty."""
    import logging

    import storage.market_history
    from autotrader.data_plane import DataPlane
    from core.clock import EventClock
    from core.config_schema import Config
    from core.guard_config import GuardsConfig, RiskConfig, SignalConfig
    from core.guard_monitor import GuardMonitor, SignalRunner
    from feeds.pipeline import MarketPipeline

    def broken(*_: object) -> MarketHistory:
        raise RuntimeError("a schema from the future")

    monkeypatch.setattr(storage.market_history, "load_history", broken)
    bus, clock = Bus(), EventClock()
    guards = GuardMonitor(bus, GuardsConfig(), clock, "replay")
    sig = SignalRunner(bus, guards, SignalConfig(), RiskConfig(), lambda: 10_000.0)
    plane = DataPlane(Config(), bus, MarketPipeline(bus, binance_symbol=None, clock=clock), guards, sig,
                      clock, logging.getLogger("test.data_plane"), tmp_path)
    assert await plane.load_history(DAY) is None
    assert plane.windows_json()["guards"]["bars_seen"] == 0
