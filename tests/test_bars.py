"""1-minute bars: acceptance against the real BTCUSDT recording, property test, out-of-order rule."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.bars import DAY_MS, MINUTE_MS, BarBuilder
from core.bus import Bus, Topics
from core.models import Bar
from feeds.pipeline import MarketPipeline, drive
from feeds.replay import open_recording

Trade4 = tuple[int, float, float, bool]  # ts_ms, price, qty, aggressor sold


def reference_bars(trades: list[Trade4]) -> list[dict[str, Any]]:
    """Naive resample, written independently of core.bars: group by minute, day-anchored cvd/vwap."""
    bars: list[dict[str, Any]] = []
    day = None
    cvd = pq = vol = 0.0
    for ts, p, q, sold in trades:
        minute = ts // 60000 * 60000
        if minute // 86_400_000 != day:
            day = minute // 86_400_000
            cvd = pq = vol = 0.0
        if not bars or bars[-1]["timestamp"] != minute:
            bars.append(
                {
                    "timestamp": minute,
                    "open": p,
                    "high": p,
                    "low": p,
                    "close": p,
                    "buy_vol": 0.0,
                    "sell_vol": 0.0,
                    "trades": 0,
                }
            )
        b = bars[-1]
        b["high"] = max(b["high"], p)
        b["low"] = min(b["low"], p)
        b["close"] = p
        if sold:
            b["sell_vol"] += q
            cvd -= q
        else:
            b["buy_vol"] += q
            cvd += q
        pq += p * q
        vol += q
        b["trades"] += 1
        b["cvd"] = cvd
        b["vwap"] = pq / vol if vol > 0 else p
    return bars


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_same(got: list[Bar], want: list[dict[str, Any]]) -> None:
    assert [b.timestamp for b in got] == [w["timestamp"] for w in want]
    for b, w in zip(got, want, strict=True):
        assert (b.open, b.high, b.low, b.close, b.trades) == (
            w["open"],
            w["high"],
            w["low"],
            w["close"],
            w["trades"],
        ), b.timestamp
        for name in ("buy_vol", "sell_vol", "cvd", "vwap"):
            assert close(getattr(b, name), w[name]), (b.timestamp, name, getattr(b, name), w[name])


def run_add(trades: list[Trade4]) -> list[Bar]:
    bb = BarBuilder("X")
    out = [bar for t in trades if (bar := bb.add(*t)) is not None]
    last = bb.flush()
    return [*out, last] if last is not None else out


# ------------------------------------------------------------------------------ acceptance
def raw_trades(path: Path) -> list[Trade4]:
    """Trades straight from the raw file with json.loads (no project code involved)."""
    out: list[Trade4] = []
    with gzip.open(path, "rb") as fh:
        for line in fh:
            msg = json.loads(line.split(b" ", 1)[1])
            if msg.get("stream", "").endswith("@trade"):
                d = msg["data"]
                out.append((d["T"], float(d["p"]), float(d["q"]), d["m"] is True))
    return out


def test_acceptance_btcusdt_bars_match_reference(btc_file: Path) -> None:
    trades = raw_trades(btc_file)
    assert len(trades) == 21_313
    want = reference_bars(trades)

    # 1) the product path over ALL frames (depth/bookTicker mixed in, the REST snapshot too):
    #    recording reader -> BinanceCodec -> MarketPipeline -> bus -> bars, as replay and live run it
    bus = Bus()
    got: list[Bar] = []
    bus.on(Topics.BARS, got.append)
    pipeline = MarketPipeline(bus, binance_symbol=None)
    drive(pipeline, open_recording(btc_file).frames())
    pipeline.flush()
    assert_same(got, want)
    assert all(b.symbol == "BTCUSDT" for b in got) and all(b.closed for b in got[:-1])
    assert pipeline.stats.trades == 21_313

    # 2) BarBuilder.add directly on the same trades
    assert_same(run_add(trades), want)

    # The file's RECEIVE clock crosses 00:00 UTC only for depth frames: its last trade is at
    # 23:59:59.643 (T), so every trade bar is on 2024-08-08 and cvd/vwap accumulate from the first
    # trade through the last bar (no reset inside the file).
    midnight = 1723161600000
    assert max(t[0] for t in trades) < midnight
    assert close(got[-1].cvd, sum(-q if s else q for _, _, q, s in trades))
    assert close(got[-1].vwap, sum(p * q for _, p, q, _ in trades) / sum(q for _, _, q, _ in trades))


def test_acceptance_day_reset_on_real_trades_shifted_across_midnight(btc_file: Path) -> None:
    """The same real trades moved 3 minutes later, so the last ~3 minutes fall on 2024-08-09."""
    shift = 3 * MINUTE_MS
    trades = [(ts + shift, p, q, s) for ts, p, q, s in raw_trades(btc_file)]
    want = reference_bars(trades)
    got = run_add(trades)
    assert_same(got, want)
    midnight = 1723161600000
    assert want[0]["timestamp"] < midnight <= want[-1]["timestamp"]
    first = next(i for i, b in enumerate(got) if b.timestamp >= midnight)
    b = got[first]
    assert b.timestamp == midnight
    in_bar = [t for t in trades if midnight <= t[0] < midnight + MINUTE_MS]
    assert b.trades == len(in_bar) > 0
    assert close(b.cvd, b.buy_vol - b.sell_vol)
    assert close(b.vwap, sum(p * q for _, p, q, _ in in_bar) / sum(q for _, _, q, _ in in_bar))
    before = [t for t in trades if t[0] < midnight]
    prev = got[first - 1]
    assert close(prev.cvd, sum(-q if s else q for _, _, q, s in before))
    assert not close(prev.cvd, prev.buy_vol - prev.sell_vol)  # before midnight it accumulated


# ------------------------------------------------------------------------------ property
DAY_EDGE = 20_000 * DAY_MS  # a UTC midnight


@st.composite
def trade_seqs(draw: st.DrawFn) -> list[Trade4]:
    start = DAY_EDGE - draw(st.integers(0, 5 * MINUTE_MS))
    gaps = draw(st.lists(st.integers(0, 90_000), min_size=1, max_size=120))
    price = st.sampled_from([99.5, 100.0, 100.25, 101.0, 0.1, 1e-8]) | st.floats(1.0, 1e5)
    qty = st.sampled_from([0.0, 0.001, 1.0, 3.5]) | st.floats(1e-6, 1e3)
    out: list[Trade4] = []
    ts = start
    for g in gaps:
        ts += g
        out.append((ts, draw(price), draw(qty), draw(st.booleans())))
    return out


@settings(max_examples=300, deadline=None)
@given(trades=trade_seqs(), split=st.integers(0, 200))
def test_property_matches_naive_resample(trades: list[Trade4], split: int) -> None:
    want = reference_bars(trades)
    assert_same(run_add(trades), want)
    # the same trades with a current() peek after `split` of them, then flush: same bars
    bb = BarBuilder("X")
    a, b = trades[:split], trades[split:]
    got = [bar for t in a if (bar := bb.add(*t)) is not None]
    cur = bb.current()
    if a:
        assert cur is not None and not cur.closed
        assert cur.timestamp == a[-1][0] // MINUTE_MS * MINUTE_MS
    got += [bar for t in b if (bar := bb.add(*t)) is not None]
    last = bb.flush()
    assert last is not None and last.closed
    assert_same([*got, last], want)
    assert bb.current() is None and bb.flush() is None


# ------------------------------------------------------------------------------ out of order
def test_out_of_order_trade_folds_into_current_bar() -> None:
    bb = BarBuilder("X")
    assert bb.add(120_000, 10.0, 1.0, False) is None
    closed = bb.add(180_500, 11.0, 2.0, True)  # opens minute 3, closes minute 2
    assert closed is not None and closed.timestamp == 120_000 and closed.closed
    # late print from minute 2 (already closed) and from minute 1: folded into minute 3
    assert bb.add(150_000, 9.0, 1.0, False) is None
    assert bb.add(60_000, 12.0, 0.5, True) is None
    assert bb.late == 2
    cur = bb.current()
    assert cur is not None
    assert (cur.timestamp, cur.open, cur.high, cur.low, cur.close) == (180_000, 11.0, 12.0, 9.0, 12.0)
    assert (cur.buy_vol, cur.sell_vol, cur.trades) == (1.0, 2.5, 3)
    assert cur.cvd == 1.0 - 2.0 + 1.0 - 0.5
    assert math.isclose(cur.vwap, (10 + 22 + 9 + 6) / 4.5)
    # the closed bar was not touched, and a late trade across midnight never resets the day
    assert closed.trades == 1 and closed.cvd == 1.0
    bb2 = BarBuilder("X")
    bb2.add(DAY_EDGE + 1_000, 5.0, 1.0, False)
    bb2.add(DAY_EDGE - 1_000, 7.0, 1.0, True)  # yesterday's print arrives late
    b = bb2.flush()
    assert b is not None and b.timestamp == DAY_EDGE and b.cvd == 0.0 and b.vwap == 6.0
    # after flush, a late trade of the flushed minute opens a new bar at that same minute
    bb2.add(DAY_EDGE - 5_000, 8.0, 2.0, False)
    again = bb2.flush()
    assert again is not None and again.timestamp == DAY_EDGE and again.cvd == 2.0
    assert bb2.late == 2


def test_zero_quantity_vwap_is_last_price() -> None:
    bb = BarBuilder("X")
    bb.add(0, 3.0, 0.0, False)
    bb.add(1, 4.0, 0.0, True)
    b = bb.current()
    assert b is not None and b.vwap == 4.0 and b.cvd == 0.0
