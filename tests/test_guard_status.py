"""The monitor's fast path equals the full evaluation: ``status_now`` == ``evaluate(...).status`` and
the cached liquidation window == a fresh scan, over random input sequences and configs."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from core.bus import Bus, Topics
from core.clock import EventClock
from core.guard_config import (
    INPUT_NAMES,
    GuardsConfig,
    LiqGapConfig,
    MaxAgeConfig,
    ObvCliffConfig,
    RsiGateConfig,
)
from core.guard_monitor import GuardMonitor
from core.guard_status import StatusCache, status_now
from core.guards import GUARDS, GuardReport, evaluate
from core.market_state import MarketState
from core.models import Bar, Basis, BookTop, FeedStatus, Funding, Liquidation, OpenInterest, ResyncNeeded

T0 = 1_700_000_000_000
VENUES = ("binance", "bybit", "okx")

num = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from([0.0, float("nan"), float("inf"), -float("inf")]),
)
dt = st.integers(min_value=-2_000, max_value=400_000)  # mostly forward, sometimes late


@st.composite
def inputs(draw: Any, kind: str | None = None) -> tuple[str, Any]:
    if kind is None:
        kind = draw(st.sampled_from(["book", "funding", "oi", "basis", "liq", "liq", "status", "bar",
                                     "tick", "resync"]))
    ts = T0 + draw(st.integers(min_value=0, max_value=3_000_000))
    venue = draw(st.sampled_from(VENUES))
    if kind == "book":
        bid = draw(st.floats(min_value=1, max_value=200))
        ask = bid + draw(st.one_of(st.floats(0, 1), st.sampled_from([0.0, -0.5])))  # locked, crossed
        return kind, BookTop("binance", "SOLUSDT", ts, draw(st.integers(0, 10)), bid, 1.0, ask, 1.0,
                             draw(num), draw(num), draw(num))
    if kind == "funding":
        return kind, Funding(venue, "SOLUSDT", ts, 0.0001, 8.0, draw(num))
    if kind == "oi":
        return kind, OpenInterest(venue, "SOLUSDT", ts, 1.0, 1.0, draw(num))
    if kind == "basis":
        return kind, Basis(ts, 100.0, 100.0, draw(num))
    if kind == "liq":
        return kind, Liquidation(venue, "SOLUSDT", ts, "long", 100.0, 1.0, draw(st.floats(0, 1e6)))
    if kind == "status":
        state = draw(st.sampled_from(["live", "live", "stale", "down"]))
        age = draw(st.one_of(st.none(), st.floats(min_value=0, max_value=100)))
        return kind, FeedStatus(venue, state, ts, age)  # type: ignore[arg-type]
    if kind == "resync":
        return kind, ResyncNeeded("binance", "SOLUSDT", draw(st.sampled_from(["gap", "book crossed"])))
    if kind == "bar":
        px = draw(st.floats(min_value=50, max_value=150))
        vol = draw(st.floats(min_value=0, max_value=100))
        return kind, Bar("SOLUSDT", T0 + draw(st.integers(0, 60)) * 60_000, px, px + 1, px - 1,
                         px + draw(st.floats(-1, 1)), vol, draw(st.floats(0, 100)), 0.0, px, 3, True)
    return kind, draw(dt)


@st.composite
def sequences(draw: Any, max_size: int) -> list[tuple[str, Any]]:
    """Random inputs after one of each kind (so that statuses other than stale come up often)."""
    def at(kind: str) -> tuple[str, Any]:
        return draw(inputs(kind))

    base = [at("book"), at("funding"), at("oi"), at("basis"), at("bar")]
    base += [("status", FeedStatus(v, "live", T0 + draw(st.integers(0, 3_000)), 0.0)) for v in VENUES]
    base = [(k, _shift(m)) for k, m in base]
    return base + draw(st.lists(inputs(), max_size=max_size))


def _shift(msg: Any) -> Any:
    """Move an input's time close to T0."""
    if isinstance(msg, Bar):
        return msgspec.structs.replace(msg, timestamp=T0 - 60_000)
    if isinstance(msg, BookTop):
        return msgspec.structs.replace(msg, timestamp=T0)
    if isinstance(msg, FeedStatus):
        return msg
    return msgspec.structs.replace(msg, ts=T0)


@st.composite
def configs(draw: Any) -> GuardsConfig:
    return GuardsConfig(
        spread_bps_max=draw(st.sampled_from([0.0, 5.0, 10.0, 1e9])),
        depth_usd_min=draw(st.sampled_from([0.0, 50_000.0, 1e12])),
        funding_apr_abs_max_pct=draw(st.sampled_from([0.0, 300.0, 1e9])),
        basis_bps_abs_max=draw(st.sampled_from([0.0, 25.0, 1e9])),
        liq_events_max=draw(st.integers(0, 4)),
        liq_window_s=draw(st.sampled_from([1.0, 60.0, 300.0])),
        atr_period=draw(st.integers(1, 3)),
        atr_bar_minutes=draw(st.integers(1, 5)),
        liquidation_venues=draw(st.sampled_from([["binance", "bybit"], ["okx"]])),
        funding_venue=draw(st.sampled_from(["", "binance"])),
        oi_venue=draw(st.sampled_from(["", "bybit"])),
        rsi_gate=RsiGateConfig(enabled=draw(st.booleans()), period=2),
        obv_cliff=ObvCliffConfig(enabled=draw(st.booleans()), lookback_bars=2, hold_bars=1),
        liq_gap=LiqGapConfig(enabled=draw(st.booleans()),
                             when_unavailable=draw(st.sampled_from(["skip", "block"]))),
        max_age=MaxAgeConfig(**{f"{name}_s": draw(st.sampled_from([0.001, 1.0, 5.0, 60.0, 300.0, 1e9]))
                                for name in INPUT_NAMES}),
    )


def _feed(state: MarketState, kind: str, msg: Any) -> None:
    {"book": state.on_book, "funding": state.on_funding, "oi": state.on_open_interest,
     "basis": state.on_basis, "liq": state.on_liquidation, "status": state.on_feed_status,
     "bar": state.on_bar, "resync": state.on_book_resync}[kind](msg)


def _time(msg: Any, now: int) -> int:
    """The event time an input carries (a bar's age runs from its end; a resync carries none)."""
    if isinstance(msg, ResyncNeeded):
        return now
    return msg.ts if hasattr(msg, "ts") else msg.timestamp + 60_000


def _same(a: GuardReport | None, b: GuardReport) -> bool:
    return repr(a) == repr(b)  # NaN-aware: NaN != NaN, but its repr is stable


def _scan(state: MarketState, now: int) -> tuple[dict[str, int], int, float]:
    horizon = now - int(state.cfg.liq_window_s * 1000)
    by: dict[str, int] = {}
    notional = 0.0
    for liq in state.liqs:
        if liq.ts > horizon:
            by[liq.venue] = by.get(liq.venue, 0) + 1
            notional += liq.notional
    return by, sum(by.values()), notional


@settings(max_examples=200, deadline=None)
@given(
    cfg=configs(),
    seq=sequences(max_size=50),
    leverage=st.one_of(st.none(), num),
    pnl=st.one_of(st.none(), num),
    clusters=st.one_of(st.none(), st.lists(num, max_size=3)),
    side=st.sampled_from([None, "buy", "sell"]),
)
def test_status_now_equals_full_evaluation(cfg: GuardsConfig, seq: list[tuple[str, Any]], leverage: Any,
                                           pnl: Any, clusters: Any, side: Any) -> None:
    state = MarketState(cfg)
    now = T0
    ages_ms = [round(cfg.max_age.of(name) * 1000) for name in INPUT_NAMES]
    for kind, msg in seq:
        edges: list[int] = []
        if kind == "tick":
            now += msg
        else:
            _feed(state, kind, msg)
            ts = _time(msg, now)
            now = max(now, ts)
            edges = [ts + a + d for a in ages_ms for d in (0, 1)]  # exactly at and just past a max age
        for t in (now - 5_000, now, now + 1, now + 4_999, now + 299_999, *edges):  # earlier: negative ages
            assert state.liq_window(t) == _scan(state, t)
            assert state.liq_count(t) == _scan(state, t)[1]
            full = evaluate(state.snapshot(t), cfg, t, "replay", leverage=leverage, daily_pnl_pct=pnl,
                            liq_clusters=clusters, side=side)
            assert status_now(state, t, leverage=leverage, daily_pnl_pct=pnl, liq_clusters=clusters,
                              side=side) == full.status


@settings(max_examples=100, deadline=None)
@given(cfg=configs(), seq=sequences(max_size=35))
def test_monitor_publishes_exactly_what_a_full_evaluation_per_input_would(
    cfg: GuardsConfig, seq: list[tuple[str, Any]]
) -> None:
    """The monitor (status after each input, full report only when published or read) publishes
    the same reports, at the same times, as evaluating the full report after every input."""
    bus = Bus()
    clock = EventClock()
    monitor = GuardMonitor(bus, cfg, clock, "replay", heartbeat_ms=30_000)
    got: list[GuardReport] = []
    bus.on(GUARDS, got.append)
    ref_state = MarketState(cfg)
    want: list[GuardReport] = []
    prev: GuardReport | None = None
    last: int | None = None
    topic = {"book": Topics.BOOK, "funding": Topics.FUNDING, "oi": Topics.OPEN_INTEREST,
             "basis": Topics.BASIS, "liq": Topics.LIQUIDATIONS, "status": Topics.FEED_STATUS,
             "bar": Topics.BARS, "resync": Topics.BOOK_RESYNC}
    for kind, msg in seq:
        if kind == "tick":
            clock.advance(clock.now_ms() + max(0, msg))
            report = monitor.check()
        else:
            if not isinstance(msg, ResyncNeeded):
                clock.advance(msg.ts if hasattr(msg, "ts") else msg.timestamp)
            bus.publish(topic[kind], msg)  # type: ignore[attr-defined]
            _feed(ref_state, kind, msg)
            report = monitor.latest  # type: ignore[assignment]
        now = clock.now_ms()
        ref = evaluate(ref_state.snapshot(now), cfg, now, "replay", liq_map_note=monitor.liq_map_note(now))
        assert _same(report, ref)
        if prev is None or prev.status != ref.status or last is None or now - last >= 30_000:
            last = now
            want.append(ref)
        prev = ref
    assert len(got) == len(want) and all(_same(a, b) for a, b in zip(got, want, strict=True))


def _at(msg: Any, ts: int) -> Any:
    if isinstance(msg, ResyncNeeded):
        return msg
    if isinstance(msg, Bar):
        return msgspec.structs.replace(msg, timestamp=ts - ts % 60_000 - 60_000)
    if isinstance(msg, BookTop):
        return msgspec.structs.replace(msg, timestamp=ts)
    return msgspec.structs.replace(msg, ts=ts)


@settings(max_examples=300, deadline=None)
@given(cfg=configs(), seq=sequences(max_size=50), clusters=st.one_of(st.none(), st.lists(num, max_size=3)),
       probes=st.lists(st.integers(min_value=-3_000, max_value=400_000), min_size=1, max_size=6),
       steps=st.lists(st.integers(min_value=0, max_value=3_000), min_size=50, max_size=50))
def test_status_cache_equals_status_now(cfg: GuardsConfig, seq: list[tuple[str, Any]], clusters: Any,
                                        probes: list[int], steps: list[int]) -> None:
    """The cached non-book part gives status_now's answer at every time: between inputs at rising
    times (the cached path), exactly at and around each max age and liquidation expiry, earlier.
    Inputs arrive a few seconds apart, so the state is often fresh (not stale)."""
    state = MarketState(cfg)
    cache = StatusCache()
    now = T0
    window = int(cfg.liq_window_s * 1000)
    ages_ms = [round(cfg.max_age.of(name) * 1000) for name in INPUT_NAMES]
    for i, (kind, msg) in enumerate(seq):
        edges: list[int] = []
        if kind == "tick":
            now += msg
        else:
            now += steps[i % len(steps)]
            msg = msg if isinstance(msg, FeedStatus) and msg.ts < T0 + 3_001 else _at(msg, now)
            _feed(state, kind, msg)
            ts = _time(msg, now)
            edges = [ts + a + d for a in ages_ms for d in (-1, 0, 1, 2)]
        edges += [t + window + d for t in state._liq_ts for d in (-1, 0, 1)]
        times = sorted({now, *(now + p for p in probes), *edges})
        for t in [*times, now - 5_000, *times]:  # rising (cached), back in time, rising again
            assert cache.status(state, t, clusters) == status_now(state, t, liq_clusters=clusters)


def test_status_cache_sees_a_liquidation_leave_the_window() -> None:
    cfg = GuardsConfig(liq_events_max=0, liq_window_s=60.0, liquidation_venues=["okx"],
                       max_age=MaxAgeConfig(**{f"{name}_s": 1e9 for name in INPUT_NAMES}))
    state = MarketState(cfg)
    for kind, msg in [("book", BookTop("binance", "SOLUSDT", T0, 1, 100.0, 1.0, 100.01, 1.0, 1.0, 1e9, 1e9)),
                      ("funding", Funding("okx", "SOLUSDT", T0, 0.0, 8.0, 1.0)),
                      ("oi", OpenInterest("okx", "SOLUSDT", T0, 1.0, 1.0, 1.0)),
                      ("basis", Basis(T0, 100.0, 100.0, 1.0)),
                      ("bar", Bar("SOLUSDT", T0 - 60_000, 1, 1, 1, 1, 1, 1, 0.0, 1, 1, True)),
                      ("liq", Liquidation("okx", "SOLUSDT", T0 + 10, "long", 100.0, 1.0, 100.0))]:
        _feed(state, kind, msg)
    cache = StatusCache()
    got = [cache.status(state, t) for t in (T0 + 10, T0 + 60_009, T0 + 60_010, T0 + 60_011)]
    assert got == [status_now(state, t) for t in (T0 + 10, T0 + 60_009, T0 + 60_010, T0 + 60_011)]
    assert got == ["breach", "breach", "passing", "passing"]


def test_new_thresholds_reach_both_the_status_and_the_report() -> None:
    """``set_config`` (the UI's settings): the per-input status and the full report read the new
    thresholds from the next evaluation on, and agree."""
    cfg = GuardsConfig(liquidation_venues=["okx"],
                       max_age=MaxAgeConfig(**{f"{name}_s": 1e9 for name in INPUT_NAMES}))
    bus, clock = Bus(), EventClock()
    monitor = GuardMonitor(bus, cfg, clock, "replay", heartbeat_ms=30_000)
    topic = {"book": Topics.BOOK, "funding": Topics.FUNDING, "oi": Topics.OPEN_INTEREST,
             "basis": Topics.BASIS, "bar": Topics.BARS, "liq": Topics.LIQUIDATIONS}
    for kind, msg in [("funding", Funding("okx", "SOLUSDT", T0, 0.0, 8.0, 1.0)),
                      ("oi", OpenInterest("okx", "SOLUSDT", T0, 1.0, 1.0, 1.0)),
                      ("basis", Basis(T0, 100.0, 100.0, 1.0)),
                      ("bar", Bar("SOLUSDT", T0 - 60_000, 1, 1, 1, 1, 1, 1, 0.0, 1, 1, True)),
                      ("liq", Liquidation("okx", "SOLUSDT", T0, "long", 100.0, 1.0, 100.0)),
                      ("book", BookTop("binance", "SOLUSDT", T0, 1, 100.0, 1.0, 100.01, 1.0, 1.0, 1e9, 1e9))]:
        clock.advance(T0)
        bus.publish(topic[kind], msg)  # type: ignore[attr-defined]
    assert monitor.status == "passing" and monitor.check().status == "passing"
    monitor.set_config(msgspec.structs.replace(cfg, spread_bps_max=0.1))  # the book's spread is 1 bps
    assert monitor.tick() == "warning"
    report = monitor.check()
    assert report.status == "warning" and any(c.name == "spread" and c.level == "warning"
                                              for c in report.checks or [])
