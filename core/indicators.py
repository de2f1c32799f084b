"""Indicators on 1-minute bars (pure, no I/O): 5-minute resampling, ATR, RSI, OBV and OBV cliffs.

Every indicator exists twice: a streaming class (``update`` one value at a time, O(1) memory apart
from the cliff window) used by :class:`core.market_state.MarketState`, and a batch function over a
whole series, written independently so the tests can compare the two.

Definitions
-----------
* **Resampling.** 1-minute bars are grouped into ``minutes``-minute buckets by
  ``timestamp // (minutes·60000)``. A bucket's bar has the first open, the max high, the min low,
  the last close, summed ``buy_vol``/``sell_vol``/``trades`` and the ``cvd``/``vwap`` of its last
  1-minute bar (both are day-anchored running values). A bucket is *closed* when its last minute's
  bar arrives (``timestamp == bucket + (minutes-1)·60000``) or when a bar of a later bucket arrives
  (minutes without trades have no bar). Bars not later than the previous one are ignored.
* **True range.** ``max(high - low, |high - prev_close|, |low - prev_close|)``; the first bar,
  having no previous close, has ``high - low``.
* **ATR (Wilder).** The first value is the mean of the first ``period`` true ranges (so it exists
  from the ``period``-th bar on); then ``atr = (atr·(period-1) + tr) / period``.
* **RSI (Wilder).** On close-to-close changes: the first average gain/loss is the mean of the first
  ``period`` changes (so RSI exists from the ``period+1``-th close on); then Wilder smoothing.
  ``RSI = 100 - 100/(1 + avg_gain/avg_loss)``; 100 when there are no losses and some gains, 50 when
  price did not move at all.
* **OBV.** ``mode="close"`` (default, Granville's): the bar's total volume (``buy_vol + sell_vol``)
  is added when the close is above the previous close, subtracted when below, ignored when equal;
  the first bar contributes 0. ``mode="flow"``: each bar adds ``buy_vol - sell_vol`` (aggressor
  flow, i.e. the per-bar CVD change, immune to the 00:00 UTC CVD reset).
* **OBV cliff.** With ``d`` the latest OBV change (OBV starts at 0, so the first bar's change is its
  own contribution) and ``m`` the mean of ``|change|`` over the
  ``lookback`` changes *before* it, a cliff is ``|d| > mult·m`` with ``m > 0``; it is reported as
  ``-1`` for a drop (the classic cliff), ``+1`` for a surge, else ``0``. No cliff is reported until
  ``lookback`` earlier changes exist.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Literal

from core.models import Bar

MINUTE_MS = 60_000
ObvMode = Literal["close", "flow"]


# --------------------------------------------------------------------------- resampling
def _merge(acc: Bar, bar: Bar) -> None:
    acc.high = max(acc.high, bar.high)
    acc.low = min(acc.low, bar.low)
    acc.close = bar.close
    acc.buy_vol += bar.buy_vol
    acc.sell_vol += bar.sell_vol
    acc.cvd = bar.cvd
    acc.vwap = bar.vwap
    acc.trades += bar.trades


def _start(bar: Bar, bucket: int) -> Bar:
    return Bar(
        symbol=bar.symbol, timestamp=bucket, open=bar.open, high=bar.high, low=bar.low, close=bar.close,
        buy_vol=bar.buy_vol, sell_vol=bar.sell_vol, cvd=bar.cvd, vwap=bar.vwap, trades=bar.trades,
        closed=False,
    )


def resample(bars: Sequence[Bar], minutes: int = 5) -> list[Bar]:
    """All ``minutes``-minute bars of a time-ordered 1-minute series; the last one is ``closed=False``
    unless its last minute is present."""
    if minutes < 1:
        raise ValueError("minutes must be >= 1")
    span = minutes * MINUTE_MS
    out: list[Bar] = []
    last_ts: int | None = None
    for bar in bars:
        if last_ts is not None and bar.timestamp <= last_ts:
            continue
        last_ts = bar.timestamp
        bucket = bar.timestamp - bar.timestamp % span
        if out and out[-1].timestamp == bucket:
            _merge(out[-1], bar)
        else:
            out.append(_start(bar, bucket))
        if bar.timestamp - bucket == span - MINUTE_MS:
            out[-1].closed = True
    for b in out[:-1]:
        b.closed = True
    return out


class Resampler:
    """Streaming :func:`resample`: ``add`` returns the buckets closed by this bar (0, 1 or 2)."""

    __slots__ = ("_cur", "_last_ts", "_span", "ignored", "minutes")

    def __init__(self, minutes: int = 5) -> None:
        if minutes < 1:
            raise ValueError("minutes must be >= 1")
        self.minutes = minutes
        self._span = minutes * MINUTE_MS
        self._cur: Bar | None = None
        self._last_ts: int | None = None
        self.ignored = 0

    def add(self, bar: Bar) -> list[Bar]:
        if self._last_ts is not None and bar.timestamp <= self._last_ts:
            self.ignored += 1
            return []
        self._last_ts = bar.timestamp
        out: list[Bar] = []
        bucket = bar.timestamp - bar.timestamp % self._span
        cur = self._cur
        if cur is not None and cur.timestamp != bucket:
            cur.closed = True
            out.append(cur)
            cur = None
        if cur is None:
            cur = _start(bar, bucket)
        else:
            _merge(cur, bar)
        if bar.timestamp - bucket == self._span - MINUTE_MS:
            cur.closed = True
            out.append(cur)
            cur = None
        self._cur = cur
        return out

    def current(self) -> Bar | None:
        """The open (incomplete) bucket, if any."""
        return self._cur


# --------------------------------------------------------------------------- ATR
def true_range(high: float, low: float, prev_close: float | None) -> float:
    if prev_close is None:
        return high - low
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


def atr_series(bars: Sequence[Bar], period: int = 14) -> list[float | None]:
    """Wilder ATR after each bar (None until ``period`` bars)."""
    if period < 1:
        raise ValueError("period must be >= 1")
    trs: list[float] = []
    prev: float | None = None
    for b in bars:
        trs.append(true_range(b.high, b.low, prev))
        prev = b.close
    out: list[float | None] = []
    value: float | None = None
    for i, tr in enumerate(trs):
        if i + 1 < period:
            out.append(None)
            continue
        if i + 1 == period:
            value = sum(trs[:period]) / period
        else:
            assert value is not None
            value = (value * (period - 1) + tr) / period
        out.append(value)
    return out


class Atr:
    """Streaming Wilder ATR; feed closed bars with :meth:`update`."""

    __slots__ = ("_n", "_prev_close", "_sum", "period", "value")

    def __init__(self, period: int = 14) -> None:
        if period < 1:
            raise ValueError("period must be >= 1")
        self.period = period
        self.value: float | None = None
        self._prev_close: float | None = None
        self._n = 0
        self._sum = 0.0

    def update(self, high: float, low: float, close: float) -> float | None:
        tr = true_range(high, low, self._prev_close)
        self._prev_close = close
        self._n += 1
        if self.value is None:
            self._sum += tr
            if self._n == self.period:
                self.value = self._sum / self.period
        else:
            self.value = (self.value * (self.period - 1) + tr) / self.period
        return self.value

    def update_bar(self, bar: Bar) -> float | None:
        return self.update(bar.high, bar.low, bar.close)


# --------------------------------------------------------------------------- RSI
def _rsi(avg_gain: float, avg_loss: float) -> float:
    if avg_loss == 0.0:
        return 100.0 if avg_gain > 0.0 else 50.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def rsi_series(closes: Sequence[float], period: int = 14) -> list[float | None]:
    """Wilder RSI after each close (None until ``period + 1`` closes)."""
    if period < 1:
        raise ValueError("period must be >= 1")
    out: list[float | None] = [None] * len(closes)
    if len(closes) <= period:
        return out
    changes = [closes[i] - closes[i - 1] for i in range(1, len(closes))]
    gain = sum(max(c, 0.0) for c in changes[:period]) / period
    loss = sum(max(-c, 0.0) for c in changes[:period]) / period
    out[period] = _rsi(gain, loss)
    for i in range(period, len(changes)):
        c = changes[i]
        gain = (gain * (period - 1) + max(c, 0.0)) / period
        loss = (loss * (period - 1) + max(-c, 0.0)) / period
        out[i + 1] = _rsi(gain, loss)
    return out


class Rsi:
    """Streaming Wilder RSI on closes."""

    __slots__ = ("_gain", "_loss", "_n", "_prev", "period", "value")

    def __init__(self, period: int = 14) -> None:
        if period < 1:
            raise ValueError("period must be >= 1")
        self.period = period
        self.value: float | None = None
        self._prev: float | None = None
        self._n = 0  # changes seen
        self._gain = 0.0
        self._loss = 0.0

    def update(self, close: float) -> float | None:
        prev, self._prev = self._prev, close
        if prev is None:
            return None
        c = close - prev
        g, lo = max(c, 0.0), max(-c, 0.0)
        self._n += 1
        p = self.period
        if self._n <= p:
            self._gain += g
            self._loss += lo
            if self._n == p:
                self._gain /= p
                self._loss /= p
                self.value = _rsi(self._gain, self._loss)
        else:
            self._gain = (self._gain * (p - 1) + g) / p
            self._loss = (self._loss * (p - 1) + lo) / p
            self.value = _rsi(self._gain, self._loss)
        return self.value


# --------------------------------------------------------------------------- OBV
def obv_step(bar: Bar, prev_close: float | None, mode: ObvMode = "close") -> float:
    """One bar's OBV change (see the module docstring)."""
    if mode == "flow":
        return bar.buy_vol - bar.sell_vol
    if prev_close is None:
        return 0.0
    vol = bar.buy_vol + bar.sell_vol
    if bar.close > prev_close:
        return vol
    if bar.close < prev_close:
        return -vol
    return 0.0


def obv_series(bars: Sequence[Bar], mode: ObvMode = "close") -> list[float]:
    out: list[float] = []
    total = 0.0
    for i, b in enumerate(bars):
        total += obv_step(b, bars[i - 1].close if i else None, mode)
        out.append(total)
    return out


class Obv:
    """Streaming OBV; :attr:`last_change` is the latest bar's contribution."""

    __slots__ = ("_prev_close", "last_change", "mode", "value")

    def __init__(self, mode: ObvMode = "close") -> None:
        self.mode: ObvMode = mode
        self.value = 0.0
        self.last_change = 0.0
        self._prev_close: float | None = None

    def update(self, bar: Bar) -> float:
        self.last_change = obv_step(bar, self._prev_close, self.mode)
        self._prev_close = bar.close
        self.value += self.last_change
        return self.value


def _cliff(change: float, mean_abs: float, mult: float) -> int:
    if mean_abs <= 0.0 or not abs(change) > mult * mean_abs:
        return 0
    return -1 if change < 0 else 1


def obv_cliff_series(obv: Sequence[float], lookback: int = 20, mult: float = 3.0) -> list[int]:
    """Cliff flag (-1 drop, +1 surge, 0 none) after each OBV value."""
    if lookback < 1:
        raise ValueError("lookback must be >= 1")
    base = [0.0, *obv]  # OBV starts at 0 before the first bar
    changes = [base[i] - base[i - 1] for i in range(1, len(base))]
    out = [0] * len(obv)
    for i in range(lookback, len(changes)):
        window = changes[i - lookback : i]
        out[i] = _cliff(changes[i], sum(abs(c) for c in window) / lookback, mult)
    return out


class ObvCliff:
    """Streaming cliff detector over OBV changes."""

    __slots__ = ("_window", "lookback", "mult", "value")

    def __init__(self, lookback: int = 20, mult: float = 3.0) -> None:
        if lookback < 1:
            raise ValueError("lookback must be >= 1")
        self.lookback = lookback
        self.mult = mult
        self.value = 0
        self._window: deque[float] = deque(maxlen=lookback)

    def update(self, change: float) -> int:
        if len(self._window) == self.lookback:
            self.value = _cliff(change, sum(abs(c) for c in self._window) / self.lookback, self.mult)
        else:
            self.value = 0
        self._window.append(change)
        return self.value
