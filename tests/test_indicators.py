from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.indicators import (
    Atr,
    Obv,
    ObvCliff,
    Resampler,
    Rsi,
    atr_series,
    obv_cliff_series,
    obv_series,
    resample,
    rsi_series,
    true_range,
)
from core.models import Bar

M = 60_000


def bar(
    minute: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    buy: float = 1.0,
    sell: float = 1.0,
    cvd: float = 0.0,
    vwap: float | None = None,
) -> Bar:
    return Bar("SOLUSDT", minute * M, o, h, lo, c, buy, sell, cvd, c if vwap is None else vwap, 3, True)


@st.composite
def bar_series(draw: st.DrawFn, max_size: int = 60) -> list[Bar]:
    n = draw(st.integers(0, max_size))
    minute = draw(st.integers(0, 10))
    out = []
    px = 100.0
    for _ in range(n):
        minute += draw(st.integers(1, 7))
        px += draw(st.floats(-2, 2, allow_nan=False))
        h = px + draw(st.floats(0, 1, allow_nan=False))
        lo = px - draw(st.floats(0, 1, allow_nan=False))
        buy = draw(st.floats(0, 50, allow_nan=False))
        sell = draw(st.floats(0, 50, allow_nan=False))
        out.append(bar(minute, px, h, lo, px, buy, sell))
    return out


# ------------------------------------------------------------------ resampling
def test_resample_groups_by_five_minutes() -> None:
    bars = [
        bar(0, 10, 11, 9, 10.5, 1, 2, cvd=-1, vwap=10.2),
        bar(1, 10.5, 12, 10, 11, 3, 0, cvd=2, vwap=10.6),
        bar(4, 11, 11.5, 8, 9, 0, 1, cvd=1, vwap=10.1),
        bar(5, 9, 9.5, 8.5, 9.2),
        bar(7, 9.2, 9.3, 9, 9.1),
    ]
    out = resample(bars, 5)
    assert [b.timestamp for b in out] == [0, 5 * M]
    first = out[0]
    assert (first.open, first.high, first.low, first.close) == (10, 12, 8, 9)
    assert (first.buy_vol, first.sell_vol, first.cvd, first.vwap, first.trades) == (4, 3, 1, 10.1, 9)
    assert first.closed and not out[1].closed


def test_resampler_closes_on_last_minute_or_on_next_bucket() -> None:
    r = Resampler(5)
    assert r.add(bar(0, 1, 1, 1, 1)) == []
    assert r.add(bar(3, 1, 2, 1, 2)) == []
    closed = r.add(bar(6, 2, 2, 2, 2))  # bucket 0 had no minute-4 bar: closed by the next bucket
    assert [b.timestamp for b in closed] == [0]
    closed = r.add(bar(9, 2, 3, 2, 3))  # minute 9 is the last minute of bucket 5
    assert [b.timestamp for b in closed] == [5 * M] and closed[0].close == 3
    assert r.current() is None
    assert r.add(bar(9, 2, 3, 2, 3)) == [] and r.ignored == 1  # not later: ignored


@given(bar_series())
@settings(max_examples=80)
def test_resampler_matches_batch(bars: list[Bar]) -> None:
    r = Resampler(5)
    streamed = [b for x in bars for b in r.add(x)]
    assert streamed == [b for b in resample(bars, 5) if b.closed]


# ------------------------------------------------------------------ ATR
def test_true_range_uses_previous_close() -> None:
    assert true_range(10, 9, None) == 1
    assert true_range(10, 9, 12) == 3
    assert true_range(10, 9, 7) == 3


def test_atr_known_values() -> None:
    bars = [
        bar(i, 0, h, lo, c)
        for i, (h, lo, c) in enumerate([(10, 8, 9), (11, 9, 10), (13, 10, 12), (12, 11, 11)])
    ]
    # TR: 2, 2, 3, 1 ; period 3: first = 7/3 ; then (7/3*2 + 1)/3
    assert atr_series(bars, 3) == [None, None, pytest.approx(7 / 3), pytest.approx((7 / 3 * 2 + 1) / 3)]
    a = Atr(3)
    assert [a.update_bar(b) for b in bars] == atr_series(bars, 3)


def test_atr_of_constant_range_is_exact() -> None:
    bars = [bar(i * 5, 100, 100.25, 99.75, 100) for i in range(20)]
    a = Atr(14)
    values = [a.update_bar(b) for b in bars]
    assert values[12] is None and values[13] == 0.5 and values[-1] == 0.5


@given(bar_series(), st.integers(1, 20))
@settings(max_examples=80)
def test_atr_streaming_matches_batch(bars: list[Bar], period: int) -> None:
    a = Atr(period)
    streamed = [a.update_bar(b) for b in bars]
    assert streamed == pytest.approx(atr_series(bars, period))


# ------------------------------------------------------------------ RSI
def test_rsi_extremes_and_known_value() -> None:
    assert rsi_series([1, 2, 3, 4], 3)[-1] == 100.0
    assert rsi_series([5, 4, 3, 2], 3)[-1] == 0.0
    assert rsi_series([5, 5, 5, 5], 3)[-1] == 50.0
    # changes +2, -1, +1 → gain 1, loss 1/3 → RS 3 → RSI 75
    assert rsi_series([10, 12, 11, 12], 3) == [None, None, None, pytest.approx(75.0)]
    # next change -2: gain (1*2+0)/3, loss (1/3*2+2)/3 → RS 0.75
    assert rsi_series([10, 12, 11, 12, 10], 3)[-1] == pytest.approx(100 - 100 / 1.75)


@given(st.lists(st.floats(50, 150, allow_nan=False), max_size=60), st.integers(1, 20))
@settings(max_examples=80)
def test_rsi_streaming_matches_batch(closes: list[float], period: int) -> None:
    r = Rsi(period)
    streamed = [r.update(c) for c in closes]
    batch = rsi_series(closes, period)
    assert streamed == pytest.approx(batch)
    assert all(v is None or 0.0 <= v <= 100.0 for v in batch)


# ------------------------------------------------------------------ OBV and cliffs
def test_obv_modes() -> None:
    bars = [
        bar(0, 1, 1, 1, 10, 3, 1),
        bar(1, 1, 1, 1, 11, 2, 2),
        bar(2, 1, 1, 1, 9, 1, 4),
        bar(3, 1, 1, 1, 9, 5, 0),
    ]
    assert obv_series(bars, "close") == [0, 4, -1, -1]
    assert obv_series(bars, "flow") == [2, 2, -1, 4]


@given(bar_series(), st.sampled_from(["close", "flow"]))
@settings(max_examples=60)
def test_obv_streaming_matches_batch(bars: list[Bar], mode: str) -> None:
    o = Obv(mode)  # type: ignore[arg-type]
    assert [o.update(b) for b in bars] == pytest.approx(obv_series(bars, mode))  # type: ignore[arg-type]


def test_obv_cliff_detects_a_drop_and_a_surge() -> None:
    obv = [float(i) for i in range(1, 6)]  # five changes of +1
    assert obv_cliff_series([*obv, 5 - 3.5], lookback=5, mult=3) == [0] * 5 + [-1]
    assert obv_cliff_series([*obv, 5 - 3.0], lookback=5, mult=3) == [0] * 6  # exactly 3x: not a cliff
    assert obv_cliff_series([*obv, 9.5], lookback=5, mult=3) == [0] * 5 + [1]
    assert obv_cliff_series([0.0] * 6 + [-100.0], lookback=5, mult=3) == [0] * 7  # no activity: no baseline


@given(
    st.lists(st.floats(-1000, 1000, allow_nan=False), max_size=60),
    st.integers(1, 10),
    st.floats(0.5, 5, allow_nan=False),
)
@settings(max_examples=80)
def test_obv_cliff_streaming_matches_batch(changes: list[float], lookback: int, mult: float) -> None:
    obv, total = [], 0.0
    for c in changes:
        total += c
        obv.append(total)
    det = ObvCliff(lookback, mult)
    base = [0.0, *obv]
    streamed = [det.update(base[i + 1] - base[i]) for i in range(len(obv))]
    assert streamed == obv_cliff_series(obv, lookback, mult)


def test_bad_periods_are_refused() -> None:
    for make in (lambda: Atr(0), lambda: Rsi(0), lambda: ObvCliff(0), lambda: Resampler(0)):
        with pytest.raises(ValueError):
            make()
