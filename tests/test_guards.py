from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.guard_config import INPUT_NAMES, GuardsConfig
from core.guards import SCHEMA_KEYS, allows_entry, evaluate, to_json
from core.market_state import MarketSnapshot, MarketState
from core.models import Bar, Basis, BookTop, FeedStatus, Funding, Liquidation, OpenInterest

NOW = 1_700_000_000_000
RANK = {"passing": 0, "warning": 1, "breach": 2, "stale": 3}


def snap(**kw: Any) -> MarketSnapshot:
    base: dict[str, Any] = dict(
        ts=NOW,
        best_bid=100.0,
        best_ask=100.02,
        spread_bps=2.0,
        bid_usd=120_000.0,
        ask_usd=130_000.0,
        funding_apr=12.5,
        oi_notional=4.5e7,
        basis_bps=3.0,
        liq_events_5m=2,
        liq_by_venue={"binance": 2},
        last_close=100.0,
        atr_5m=0.5,
        rsi=50.0,
        obv=10.0,
        obv_cliff=0,
        bars_seen=100,
        ages_s=dict.fromkeys(INPUT_NAMES, 1.0),
    )
    base.update(kw)
    return MarketSnapshot(**base)


def ev(s: MarketSnapshot, cfg: GuardsConfig | None = None, **kw: Any) -> Any:
    return evaluate(s, cfg or GuardsConfig(), NOW, "replay", **kw)


def check(report: Any, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


def test_healthy_market_passes_and_json_has_exact_schema() -> None:
    r = ev(snap())
    assert r.status == "passing" and allows_entry(r)
    assert r.warnings == [] and r.blocks == []
    j = to_json(r)
    assert list(j) == list(SCHEMA_KEYS)
    assert j["depth_10bps"] == {"bid_usd": 120_000.0, "ask_usd": 130_000.0}
    assert j["ages_s"] == dict.fromkeys(INPUT_NAMES, 1.0)
    assert (j["ts"], j["data_source"], j["liq_events_5m"]) == (NOW, "replay", 2)
    assert "checks" in to_json(r, detailed=True)
    json.dumps(j)


@pytest.mark.parametrize(
    ("field", "ok", "bad", "name", "level"),
    [
        ("spread_bps", 10.0, 10.01, "spread", "warning"),
        ("bid_usd", 50_000.0, 49_999.0, "depth", "warning"),
        ("ask_usd", 50_000.0, 49_999.0, "depth", "warning"),
        ("funding_apr", 300.0, 300.5, "funding", "warning"),
        ("funding_apr", -300.0, -300.5, "funding", "warning"),
        ("basis_bps", 25.0, 25.1, "basis", "warning"),
        ("basis_bps", -25.0, -25.1, "basis", "warning"),
        ("liq_events_5m", 10, 11, "liquidations", "breach"),
    ],
)
def test_each_threshold(field: str, ok: float, bad: float, name: str, level: str) -> None:
    good = ev(snap(**{field: ok}))
    assert good.status == "passing" and check(good, name).level == "passing"
    r = ev(snap(**{field: bad}))
    assert r.status == level and check(r, name).level == level
    assert not allows_entry(r) and any(name.split("_")[0] in b for b in r.blocks)
    assert r.warnings  # the reason is reported
    # not in `blocking`: reported, but does not block
    lenient = ev(snap(**{field: bad}), GuardsConfig(blocking=[]))
    assert lenient.status == level and lenient.blocks == [] and allows_entry(lenient)


def test_leverage_guard() -> None:
    assert check(ev(snap()), "leverage").level == "skipped"
    assert ev(snap(), leverage=5.0).status == "passing"
    r = ev(snap(), leverage=5.5)
    assert r.status == "breach" and not allows_entry(r) and "leverage" in r.blocks[0]
    assert ev(snap(), GuardsConfig(max_leverage=10), leverage=5.5).status == "passing"


@pytest.mark.parametrize("name", INPUT_NAMES)
def test_each_missing_input_is_stale_and_blocks(name: str) -> None:
    r = ev(snap(ages_s={**dict.fromkeys(INPUT_NAMES, 1.0), name: None}), GuardsConfig(blocking=[]))
    assert r.status == "stale" and not allows_entry(r)
    assert r.ages_s[name] is None
    assert any(b.startswith(f"{name} missing") for b in r.blocks)


@pytest.mark.parametrize("name", INPUT_NAMES)
def test_each_old_input_is_stale_and_blocks(name: str) -> None:
    cfg = GuardsConfig()
    limit = cfg.max_age.of(name)
    at_limit = ev(snap(ages_s={**dict.fromkeys(INPUT_NAMES, 1.0), name: limit}), cfg)
    assert at_limit.status == "passing"
    r = ev(snap(ages_s={**dict.fromkeys(INPUT_NAMES, 1.0), name: limit + 0.5}), GuardsConfig(blocking=[]))
    assert r.status == "stale" and not allows_entry(r)
    assert any(b.startswith(f"{name} stale") for b in r.blocks)


def test_snapshot_ages_advance_to_evaluation_time() -> None:
    s = snap(ages_s=dict.fromkeys(INPUT_NAMES, 1.0))
    r = evaluate(s, GuardsConfig(), NOW + 4_500, "live")
    assert r.ages_s["book"] == 5.5 and r.status == "stale" and r.data_source == "live"


def test_not_live_feed_is_stale_and_named() -> None:
    r = ev(snap(not_live={"liquidations": "bybit feed down"}))
    assert r.status == "stale" and "bybit feed down" in r.blocks[0]


def test_missing_values_are_null_and_stale() -> None:
    s = snap(
        spread_bps=None,
        bid_usd=None,
        ask_usd=None,
        best_bid=None,
        best_ask=None,
        funding_apr=None,
        ages_s={**dict.fromkeys(INPUT_NAMES, 1.0), "book": None, "funding": None},
    )
    j = to_json(ev(s))
    assert j["spread_bps"] is None and j["depth_10bps"] == {"bid_usd": None, "ask_usd": None}
    assert j["funding_apr"] is None and j["status"] == "stale"


def test_non_finite_value_is_stale_and_json_null() -> None:
    r = ev(snap(spread_bps=math.nan))
    assert r.status == "stale" and check(r, "spread").level == "stale"
    assert to_json(r)["spread_bps"] is None


def test_rsi_gate() -> None:
    off = ev(snap(rsi=90.0))
    assert off.status == "passing" and not any(c.name == "rsi_gate" for c in off.checks)
    cfg = GuardsConfig(blocking=["rsi_gate"])
    cfg.rsi_gate.enabled = True
    assert ev(snap(rsi=None), cfg).status == "stale"
    assert ev(snap(rsi=70.0), cfg).status == "passing"
    hot = ev(snap(rsi=75.0), cfg)
    assert hot.status == "warning" and not allows_entry(hot)
    assert ev(snap(rsi=75.0), cfg, side="sell").status == "passing"
    assert ev(snap(rsi=25.0), cfg, side="buy").status == "passing"
    assert ev(snap(rsi=25.0), cfg, side="sell").status == "warning"


def test_obv_cliff_veto() -> None:
    cfg = GuardsConfig()
    cfg.obv_cliff.enabled = True
    assert ev(snap(bars_seen=cfg.obv_cliff.lookback_bars), cfg).status == "stale"
    assert ev(snap(obv_cliff=0), cfg).status == "passing"
    r = ev(snap(obv_cliff=-1), cfg)
    assert r.status == "warning" and not allows_entry(r) and "cliff" in r.blocks[0]
    assert ev(snap(obv_cliff=-1), cfg, side="sell").status == "passing"
    assert ev(snap(obv_cliff=1), cfg, side="sell").status == "warning"


def test_liq_gap() -> None:
    assert check(ev(snap()), "liq_gap").level == "skipped"
    mid = (100.0 + 100.02) / 2
    assert ev(snap(), liq_clusters=[mid - 2.0, mid + 2.5]).status == "passing"  # 4 x 0.5 = 2
    r = ev(snap(), liq_clusters=[mid + 1.9, mid - 50])
    assert r.status == "warning" and check(r, "liq_gap").value == pytest.approx(1.9)
    assert ev(snap(), liq_clusters=[]).status == "passing"
    assert ev(snap(atr_5m=None), liq_clusters=[mid + 10]).status == "stale"
    cfg = GuardsConfig()
    cfg.liq_gap.enabled = False
    assert ev(snap(), cfg, liq_clusters=[mid]).status == "passing"


def test_daily_stop() -> None:
    assert check(ev(snap()), "daily_stop").level == "skipped"
    assert ev(snap(), daily_pnl_pct=-2.99).status == "passing"
    r = ev(snap(), daily_pnl_pct=-3.0)
    assert r.status == "breach" and not allows_entry(r)
    assert ev(snap(), daily_pnl_pct=math.nan).status == "stale"


# ------------------------------------------------------------------ property tests
ages_st = st.one_of(st.none(), st.floats(0, 1000, allow_nan=False))


@st.composite
def inputs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "spread_bps": draw(st.floats(0, 50, allow_nan=False)),
        "bid_usd": draw(st.floats(0, 300_000, allow_nan=False)),
        "ask_usd": draw(st.floats(0, 300_000, allow_nan=False)),
        "funding_apr": draw(st.floats(-1000, 1000, allow_nan=False)),
        "basis_bps": draw(st.floats(-100, 100, allow_nan=False)),
        "liq_events_5m": draw(st.integers(0, 30)),
        "rsi": draw(st.floats(0, 100, allow_nan=False)),
        "ages_s": {n: draw(ages_st) for n in INPUT_NAMES},
    }


@st.composite
def worse(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    w = dict(base)
    w["spread_bps"] = base["spread_bps"] + draw(st.floats(0, 20, allow_nan=False))
    w["bid_usd"] = base["bid_usd"] - draw(st.floats(0, 1e5, allow_nan=False))
    w["ask_usd"] = base["ask_usd"] - draw(st.floats(0, 1e5, allow_nan=False))
    f = base["funding_apr"]
    w["funding_apr"] = f + math.copysign(draw(st.floats(0, 500, allow_nan=False)), f)
    b = base["basis_bps"]
    w["basis_bps"] = b + math.copysign(draw(st.floats(0, 50, allow_nan=False)), b)
    w["liq_events_5m"] = base["liq_events_5m"] + draw(st.integers(0, 10))
    ages = {}
    for n, a in base["ages_s"].items():
        ages[n] = (
            None
            if a is None or (draw(st.booleans()) and draw(st.booleans()))
            else a + draw(st.floats(0, 100, allow_nan=False))
        )
    w["ages_s"] = ages
    return w


@st.composite
def pair(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    base = draw(inputs())
    return base, draw(worse(base))


configs = st.builds(
    lambda blocking, rsi: msgspec.convert({"blocking": blocking, "rsi_gate": {"enabled": rsi}}, GuardsConfig),
    st.lists(
        st.sampled_from(["spread", "depth", "funding", "basis", "liquidations", "rsi_gate"]), unique=True
    ),
    st.booleans(),
)


@given(pair(), configs)
@settings(max_examples=300)
def test_worse_input_never_improves_status(
    p: tuple[dict[str, Any], dict[str, Any]], cfg: GuardsConfig
) -> None:
    base, bad = p
    r0, r1 = ev(snap(**base), cfg), ev(snap(**bad), cfg)
    assert RANK[r1.status] >= RANK[r0.status]
    assert not allows_entry(r1) or allows_entry(r0)


@given(
    inputs(), configs, st.sampled_from(INPUT_NAMES), st.one_of(st.none(), st.floats(1e3, 1e6)), st.booleans()
)
@settings(max_examples=300)
def test_stale_input_always_blocks(
    values: dict[str, Any], cfg: GuardsConfig, name: str, age: float | None, down: bool
) -> None:
    values["ages_s"] = {**values["ages_s"], name: age}
    s = snap(**values, not_live={name: "feed down"} if down else {})
    r = ev(s, cfg)
    assert r.status == "stale" and not allows_entry(r) and r.blocks
    assert any(b.startswith(name) for b in r.blocks)


# ------------------------------------------------------------------ market state → guards
def book(ts: int, bid: float = 100.0, ask: float = 100.02, uid: int = 1) -> BookTop:
    return BookTop(
        "binance",
        "SOLUSDT",
        ts,
        uid,
        bid,
        10,
        ask,
        10,
        (ask - bid) / ((ask + bid) / 2) * 1e4,
        80_000.0,
        90_000.0,
    )


def feed(ms: MarketState, ts: int) -> None:
    ms.on_book(book(ts))
    ms.on_funding(Funding("bybit", "SOLUSDT", ts, 0.0001, 8, 10.95))
    ms.on_open_interest(OpenInterest("bybit", "SOLUSDT", ts, 2e6, 1e6, 1e8))
    ms.on_basis(Basis(ts, 100.0, 100.03, 3.0))
    for v in ("binance", "bybit", "okx"):
        ms.on_feed_status(FeedStatus(v, "live", ts, 0.5))
    ms.on_bar(Bar("SOLUSDT", ts - ts % 60_000 - 60_000, 100, 100.1, 99.9, 100, 1, 1, 0, 100, 2, True))


def test_market_state_snapshot_drives_a_passing_report() -> None:
    ms = MarketState()
    feed(ms, NOW)
    s = ms.snapshot(NOW + 1000)
    assert s.ages_s["book"] == 1.0 and s.ages_s["liquidations"] == 1.5
    assert s.funding_apr == 10.95 and s.oi_notional == 1e8 and s.basis_bps == 3.0
    r = evaluate(s, ms.cfg, NOW + 1000, "live")
    assert r.status == "passing", r.blocks


def test_older_values_never_replace_fresher_ones() -> None:
    ms = MarketState()
    feed(ms, NOW)
    ms.on_funding(Funding("bybit", "SOLUSDT", NOW - 8 * 3_600_000, 0.01, 8, 1095.0))  # REST history row
    ms.on_book(book(NOW - 5000, bid=90, ask=91))
    s = ms.snapshot(NOW)
    assert s.funding_apr == 10.95 and s.best_bid == 100.0


def test_liquidation_window_by_venue() -> None:
    ms = MarketState()
    feed(ms, NOW)
    for i in range(6):
        ms.on_liquidation(Liquidation("binance", "SOLUSDT", NOW - 400_000 + i * 60_000, "long", 100, 1, 100))
    ms.on_liquidation(Liquidation("bybit", "SOLUSDT", NOW, "short", 100, 2, 200))
    s = ms.snapshot(NOW)
    # binance events at -400, -340, -280, -220, -160, -100 s: four fall inside the last 300 s
    assert s.liq_by_venue == {"binance": 4, "bybit": 1} and s.liq_events_5m == 5
    assert s.liq_notional_5m == 600
    for i in range(6):
        ms.on_liquidation(Liquidation("bybit", "SOLUSDT", NOW + i, "long", 100, 1, 100))
    r = evaluate(ms.snapshot(NOW + 10), ms.cfg, NOW + 10, "live")
    assert r.liq_events_5m == 11 and r.status == "breach" and not allows_entry(r)


def test_liquidation_feed_liveness() -> None:
    ms = MarketState()
    assert ms.snapshot(NOW).ages_s["liquidations"] is None  # never heard from either venue
    ms.on_feed_status(FeedStatus("binance", "live", NOW, 0.0))
    assert ms.snapshot(NOW).ages_s["liquidations"] is None  # bybit still unknown
    ms.on_feed_status(FeedStatus("bybit", "live", NOW - 2000, 1.0))
    assert ms.snapshot(NOW).ages_s["liquidations"] is None  # okx still unknown
    ms.on_feed_status(FeedStatus("okx", "live", NOW, 0.5))
    assert ms.snapshot(NOW).ages_s["liquidations"] == 3.0  # the oldest venue counts
    ms.on_feed_status(FeedStatus("bybit", "down", NOW + 1000, None, detail="socket closed"))
    s = ms.snapshot(NOW + 1000)
    assert "bybit feed down" in s.not_live["liquidations"]
    assert evaluate(s, ms.cfg, NOW + 1000, "live").status == "stale"
    ms.on_liquidation(Liquidation("bybit", "SOLUSDT", NOW + 2000, "long", 100, 1, 100))  # alive again
    assert ms.snapshot(NOW + 2000).not_live == {}


def test_bars_feed_indicators_and_age() -> None:
    ms = MarketState()
    t0 = NOW - NOW % 300_000
    for i in range(75):  # 15 five-minute buckets with range 0.5, closes at the middle
        ms.on_bar(Bar("SOLUSDT", t0 + i * 60_000, 100, 100.25, 99.75, 100, 1, 1, 0, 100, 1, True))
    ms.on_bar(Bar("SOLUSDT", t0 + 75 * 60_000, 100, 200, 0, 100, 1, 1, 0, 100, 1, False))  # partial: ignored
    assert ms.atr_5m == 0.5 and len(ms.bars_5m) == 15 and ms.rsi == 50.0
    s = ms.snapshot(t0 + 75 * 60_000 + 30_000)
    assert s.ages_s["bars"] == 30.0 and s.last_close == 100 and s.atr_5m == 0.5
