"""The guard status straight from the market state, without building a report (pure).

:func:`core.guards.evaluate` builds a full :class:`~core.guards.GuardReport` (every check with its
reason text); the :class:`~core.guard_monitor.GuardMonitor` needs, after each input, only whether
the *status* changed, to publish at once when it did. :func:`status_now` computes exactly
``evaluate(state.snapshot(now_ms), cfg, now_ms, ...).status`` (the same comparisons on the same
numbers, in a few microseconds instead of tens) and stops at the first stale check, since nothing
ranks above stale. The property tests (tests/test_guard_status.py) hold the two equal on random
market states; keep them in step when a guard changes.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

from core.guard_config import GuardsConfig
from core.guards import EntrySide, Status
from core.market_state import MINUTE_MS, MarketState, _pick

_STATUS: tuple[Status, ...] = ("passing", "warning", "breach", "stale")
_STALE = 3


def _fin(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def status_now(
    state: MarketState,
    now_ms: int,
    leverage: float | None = None,
    daily_pnl_pct: float | None = None,
    liq_clusters: Sequence[float] | None = None,
    side: EntrySide | None = None,
) -> Status:
    """``evaluate(state.snapshot(now_ms), state.cfg, now_ms, ..., leverage, daily_pnl_pct,
    liq_clusters, side).status``, computed without the snapshot or the report."""
    cfg: GuardsConfig = state.cfg
    ma = cfg.max_age
    if liq_clusters is None and cfg.liq_gap.enabled and cfg.liq_gap.when_unavailable == "block":
        return "stale"  # no usable liq-map, and config says that blocks
    # -- inputs: missing, not live or too old is stale (and nothing ranks above stale). The
    # report's age is max(0, (now - ts)/1000) and an input is stale unless age <= its max age m:
    # max(0, a) <= m  <=>  a <= m and 0 <= m  (also for a NaN m), written without the calls.
    book = state.book
    if book is None or state.book_resync:
        return "stale"
    m = ma.book_s
    if not ((now_ms - book.timestamp) / 1000.0 <= m and m >= 0.0):
        return "stale"
    f = _pick(state.funding, cfg.funding_venue)
    if f is None:
        return "stale"
    m = ma.funding_s
    if not ((now_ms - f.ts) / 1000.0 <= m and m >= 0.0):
        return "stale"
    o = _pick(state.oi, cfg.oi_venue)
    if o is None:
        return "stale"
    m = ma.oi_s
    if not ((now_ms - o.ts) / 1000.0 <= m and m >= 0.0):
        return "stale"
    ba = state.basis
    if ba is None:
        return "stale"
    m = ma.basis_s
    if not ((now_ms - ba.ts) / 1000.0 <= m and m >= 0.0):
        return "stale"
    bars = state.bars
    if not bars:
        return "stale"
    m = ma.bars_s
    if not ((now_ms - (bars[-1].timestamp + MINUTE_MS)) / 1000.0 <= m and m >= 0.0):
        return "stale"
    liq_age, why = state._liq_input(now_ms)
    if liq_age is None or why or not liq_age <= ma.liquidations_s:
        return "stale"
    worst = 0
    # -- market limits (a value that is not a finite number is stale; so is a crossed book)
    spread = book.spread_bps
    if not math.isfinite(spread) or not book.bid_px < book.ask_px:
        return "stale"
    if not spread <= cfg.spread_bps_max:
        worst = 1
    depth = min(book.bid_usd, book.ask_usd)
    if not math.isfinite(depth):
        return "stale"
    if not depth >= cfg.depth_usd_min:
        worst = 1
    apr = abs(f.apr_pct)
    if not math.isfinite(apr):
        return "stale"
    if not apr <= cfg.funding_apr_abs_max_pct:
        worst = 1
    bps = abs(ba.basis_bps)
    if not math.isfinite(bps):
        return "stale"
    if not bps <= cfg.basis_bps_abs_max:
        worst = 1
    if not float(state.liq_count(now_ms)) <= float(cfg.liq_events_max):
        worst = 2
    # -- optional guards
    if leverage is not None:
        if not math.isfinite(leverage):
            return "stale"
        if not leverage <= cfg.max_leverage:
            worst = 2
    rg = cfg.rsi_gate
    if rg.enabled:
        rsi = state.rsi
        if rsi is None or not math.isfinite(rsi):
            return "stale"
        if (rsi > rg.overbought and side != "sell") or (rsi < rg.oversold and side != "buy"):
            worst = max(worst, 1)
    oc = cfg.obv_cliff
    if oc.enabled:
        if state.bars_seen <= oc.lookback_bars:
            return "stale"
        d = state.obv_cliff()
        if (d < 0 and side != "sell") or (d > 0 and side != "buy"):
            worst = max(worst, 1)
    if cfg.liq_gap.enabled and liq_clusters is not None:
        mid = (book.bid_px + book.ask_px) / 2.0
        atr = state.atr_5m
        if not _fin(mid) or atr is None or not math.isfinite(atr):
            return "stale"
        gaps = [abs(px - mid) for px in liq_clusters if math.isfinite(px)]
        if gaps and not min(gaps) >= cfg.liq_gap.atr_mult * atr:
            worst = max(worst, 1)
    ds = cfg.daily_stop
    if ds.enabled and daily_pnl_pct is not None:
        if not math.isfinite(daily_pnl_pct):
            return "stale"
        if not daily_pnl_pct > -ds.max_loss_pct:
            worst = 2
    return _STATUS[worst]


def _fresh_until(ts: int, m: float, now_ms: int) -> float:
    """The latest time ``>= now_ms`` at which an input of time ``ts`` still passes its max age
    ``m`` (``(t - ts) / 1000 <= m``, true at ``now_ms``), or a lower bound of it. The test is
    monotone in ``t``, so it holds on the whole of ``[now_ms, result]``; the candidate is verified
    with the very same expression (no reasoning about float rounding)."""
    if m == math.inf:
        return math.inf
    c = ts + int(m * 1000.0)
    for d in (c, c - 1, c - 2):
        if d >= now_ms and (d - ts) / 1000.0 <= m:
            return d
    return now_ms


class StatusCache:
    """:func:`status_now` (no leverage, daily PnL or side: the monitor's per-input call) with the
    part that does not depend on the book cached.

    Between book tops nothing else changes, so the other inputs' checks (ages, funding, basis,
    liquidation count, RSI, OBV) give the same answer until one of them can flip on time alone:
    an age passing its max age, a liquidation leaving the window. That part is kept with the
    interval of event time on which it is known constant (checked exactly as ``status_now`` does
    it); each call then only adds the book's checks. The combined status equals ``status_now``
    (nothing ranks above stale; otherwise the worst level wins, in any order), held by a property
    test in tests/test_guard_status.py. With a liquidation-gap guard and clusters (the gap uses
    the book's mid) every call is a plain ``status_now``."""

    __slots__ = ("_from", "_key", "_until", "_worst")

    def __init__(self) -> None:
        self._key = -1
        self._from = 0
        self._until: float = -1.0
        self._worst = 0

    def status(self, state: MarketState, now_ms: int, liq_clusters: Sequence[float] | None = None) -> Status:
        cfg: GuardsConfig = state.cfg
        if cfg.liq_gap.enabled and (liq_clusters is not None or cfg.liq_gap.when_unavailable == "block"):
            return status_now(state, now_ms, liq_clusters=liq_clusters)
        key = state.version - state.book_updates
        if key != self._key or not self._from <= now_ms <= self._until:
            self._worst, self._until = _rest(state, now_ms)
            self._key, self._from = key, now_ms
        worst = self._worst
        if worst == _STALE:
            return "stale"
        book = state.book
        if book is None or state.book_resync:
            return "stale"
        m = cfg.max_age.book_s
        if not ((now_ms - book.timestamp) / 1000.0 <= m and m >= 0.0):
            return "stale"
        spread = book.spread_bps
        if not math.isfinite(spread) or not book.bid_px < book.ask_px:
            return "stale"
        if not spread <= cfg.spread_bps_max and worst < 1:
            worst = 1
        depth = min(book.bid_usd, book.ask_usd)
        if not math.isfinite(depth):
            return "stale"
        if not depth >= cfg.depth_usd_min and worst < 1:
            worst = 1
        return _STATUS[worst]


def _rest(state: MarketState, now_ms: int) -> tuple[int, float]:
    """The worst level (3: stale) of every check but the book's, and until when it holds."""
    cfg: GuardsConfig = state.cfg
    ma = cfg.max_age
    inf = math.inf
    f = _pick(state.funding, cfg.funding_venue)
    if f is None:
        return _STALE, inf  # stays stale until an input changes: ages only grow
    m = ma.funding_s
    if not ((now_ms - f.ts) / 1000.0 <= m and m >= 0.0):
        return _STALE, inf
    until = _fresh_until(f.ts, m, now_ms)
    o = _pick(state.oi, cfg.oi_venue)
    if o is None:
        return _STALE, inf
    m = ma.oi_s
    if not ((now_ms - o.ts) / 1000.0 <= m and m >= 0.0):
        return _STALE, inf
    until = min(until, _fresh_until(o.ts, m, now_ms))
    ba = state.basis
    if ba is None:
        return _STALE, inf
    m = ma.basis_s
    if not ((now_ms - ba.ts) / 1000.0 <= m and m >= 0.0):
        return _STALE, inf
    until = min(until, _fresh_until(ba.ts, m, now_ms))
    bars = state.bars
    if not bars:
        return _STALE, inf
    m = ma.bars_s
    bar_end = bars[-1].timestamp + MINUTE_MS
    if not ((now_ms - bar_end) / 1000.0 <= m and m >= 0.0):
        return _STALE, inf
    until = min(until, _fresh_until(bar_end, m, now_ms))
    alive, why = state._liq_alive()
    if alive is None or why:
        return _STALE, inf
    m = ma.liquidations_s
    # status_now: not max(0, (now - alive) / 1000) <= m, i.e. the same test as the other ages
    if not ((now_ms - alive) / 1000.0 <= m and m >= 0.0):
        return _STALE, inf
    until = min(until, _fresh_until(alive, m, now_ms))
    worst = 0
    apr = abs(f.apr_pct)
    if not math.isfinite(apr):
        return _STALE, inf
    if not apr <= cfg.funding_apr_abs_max_pct:
        worst = 1
    bps = abs(ba.basis_bps)
    if not math.isfinite(bps):
        return _STALE, inf
    if not bps <= cfg.basis_bps_abs_max:
        worst = 1
    # the count is constant until the first counted liquidation leaves the window
    window = int(cfg.liq_window_s * 1000)
    times = state._liq_ts
    first = bisect_right(times, now_ms - window)
    if first < len(times):
        until = min(until, times[first] + window - 1)
    if not float(len(times) - first) <= float(cfg.liq_events_max):
        worst = 2
    rg = cfg.rsi_gate
    if rg.enabled:
        rsi = state.rsi
        if rsi is None or not math.isfinite(rsi):
            return _STALE, inf
        if rsi > rg.overbought or rsi < rg.oversold:  # no side: either breaks the gate
            worst = max(worst, 1)
    oc = cfg.obv_cliff
    if oc.enabled:
        if state.bars_seen <= oc.lookback_bars:
            return _STALE, inf
        if state.obv_cliff() != 0:  # no side: a cliff either way
            worst = max(worst, 1)
    return worst, until
