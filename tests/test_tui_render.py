"""Pure parts of the UI: chart renderers, liq-map parsing, settings and order-form validation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.liqmap_map import LiqCluster, LiqEntry, LiqMap
from core.liqmap_map import clusters as liq_clusters
from core.models import Bar, Liquidation
from core.ui_port import clusters_from, parse_order_form, validate_settings
from tui import render
from tui.state import MAX_BARS, UiModel

NOW = 1_741_567_500_000


def liq(ts: int, price: float, notional: float) -> Liquidation:
    return Liquidation(venue="binance", symbol="SOLUSDT", ts=ts, side="long", price=price, qty=1.0,
                       notional=notional)


def test_heatmap_buckets_price_rows_and_marks_the_current_price() -> None:
    mid = 100.0
    liqs = [liq(NOW - 1000, 100.5, 10_000.0),  # +50 bps: two rows above the mid
            liq(NOW - 1000, 99.75, 2_000.0)]  # -25 bps: one row below
    text = render.heatmap(liqs, mid, NOW, NOW - 3_600_000, width=29, height=9).plain.splitlines()
    rows = text[:7]  # 7 price rows (odd), then the time axis and the legend
    assert "◀100.00" in rows[3] and rows[3].startswith("─")
    cols = 29 - 9
    assert rows[1][cols - 1] == "█"  # busiest cell, last column (newest)
    assert rows[4][cols - 1] in "░▒"
    assert "100.50" in rows[1] and "99.75" in rows[4]
    assert "-1h00m" in text[7] and "now" in text[7]
    assert "█ 10.0k USD" in text[8] and "25 bps" in text[8]


def test_heatmap_clamps_far_liquidations_to_the_edge_rows_and_skips_old_ones() -> None:
    liqs = [liq(NOW - 1000, 150.0, 1.0), liq(NOW - 7 * 3600_000, 100.0, 1e9)]
    text = render.heatmap(liqs, 100.0, NOW, 0, width=19, height=7).plain.splitlines()
    assert "█" in text[0] and "↑" in text[0]
    assert "1e9" not in "".join(text) and "1.00B" not in text[-1]
    assert "-6h00m" in text[-2]


def test_price_chart_shows_close_vwap_and_cvd() -> None:
    bars = [Bar(symbol="S", timestamp=i * 60_000, open=100 + i, high=101 + i, low=99 + i, close=100.5 + i,
                buy_vol=2, sell_vol=1, cvd=float(i), vwap=100.0, trades=3, closed=True) for i in range(10)]
    t = render.price_chart(bars, 40, 14).plain
    assert t.count("●") >= 10 and "─" in t and "CVD" in t and "◀109.50" in t
    assert "waiting" in render.price_chart([], 40, 14).plain


def test_sparkline_width_and_shape() -> None:
    s = render.sparkline([1.0, 2.0, 3.0, 4.0] * 10, 8)
    assert len(s) == 8 and set(s) <= set(render.BLOCKS)
    assert render.sparkline([5.0], 4) == render.BLOCKS[3]


@given(st.lists(st.floats(-1e12, 1e12, allow_nan=False), min_size=1, max_size=500), st.integers(1, 200))
def test_sparkline_never_exceeds_width(values: list[float], width: int) -> None:
    assert len(render.sparkline(values, width)) == min(width, len(values))


def test_clusters_from_a_liq_map_are_bucket_mids_with_their_notional() -> None:
    def entry(px: float, size: float) -> LiqEntry:
        return LiqEntry(account="a", market_index=0, position_size=size, avg_entry_price=150.0,
                        est_liq_px=px, collateral_usd=1.0, leverage=1.0, health=50,
                        distance_bps=None, approximate=False, updated_at=0)

    entries = [entry(130.0, -10.0), entry(130.1, 5.0), entry(170.0, 2.0)]
    m = LiqMap(updated_at=0, slot=1, market_index=0, oracle_price=150.0, bucket_bps=25.0, scanned=3,
               entries=entries, clusters=liq_clusters(entries, 150.0, 25.0))
    got = clusters_from(m)
    assert len(got) == 2
    assert sum(n for _, n in got) == pytest.approx(130.0 * 10 + 130.1 * 5 + 170.0 * 2)
    for px, _ in got:  # the mid of a 25 bps bucket is within 12.5 bps of the prices in it
        assert min(abs(px - p) / p for p in (130.0, 130.1, 170.0)) < 0.00125
    empty = LiqMap(updated_at=0, slot=1, market_index=0, oracle_price=150.0, bucket_bps=25.0,
                   scanned=0, entries=[], clusters=[LiqCluster(price_lo=math.nan, price_hi=1.0,
                                                                notional_usd=1.0, accounts=1)])
    assert clusters_from(empty) == []


def test_settings_validation_names_each_bad_field() -> None:
    ok, errors = validate_settings({"leverage": "3", "risk_per_trade_pct": "0.5", "priority_fee_cap": "0",
                                    "daily_stop_pct": "3"}, max_leverage=5)
    assert ok is not None and errors == {} and ok.priority_fee_cap == 0
    bad, errors = validate_settings({"leverage": "6", "risk_per_trade_pct": "101", "priority_fee_cap": "nan",
                                     "daily_stop_pct": ""}, max_leverage=5)
    assert bad is None
    assert set(errors) == {"leverage", "risk_per_trade_pct", "priority_fee_cap", "daily_stop_pct"}
    assert "required" in errors["daily_stop_pct"]


@pytest.mark.parametrize(("raw", "field"), [
    ({"side": "hold", "size": "1", "sl": "1"}, "side"),
    ({"side": "buy", "size": "0", "sl": "1"}, "size"),
    ({"side": "buy", "size": "1", "sl": ""}, "sl"),
    ({"side": "buy", "size": "1", "sl": "1", "price": "x"}, "price"),
    ({"side": "buy", "size": "1", "sl": "1", "tps": "2 -3"}, "tps"),
])
def test_order_form_errors(raw: dict[str, str], field: str) -> None:
    order, errors = parse_order_form(raw)
    assert order is None and field in errors


def test_order_form_parses() -> None:
    order, errors = parse_order_form({"side": " SELL ", "size": "2.5", "sl": "155", "price": "",
                                      "tps": "150, 148"})
    assert errors == {} and order is not None
    got = (order.side, order.size, order.sl, order.price, order.tps)
    assert got == ("sell", 2.5, 155.0, None, (150.0, 148.0))


def test_model_windows_are_bounded() -> None:
    m = UiModel()
    for i in range(MAX_BARS + 50):
        m.on_bar(Bar(symbol="S", timestamp=i * 60_000, open=1, high=1, low=1, close=1, buy_vol=0, sell_vol=0,
                     cvd=0, vwap=1, trades=1, closed=True))
    assert len(m.bars) == MAX_BARS and min(m.bars) == 50 * 60_000
    for k in range(1000):
        m.on_liq(liq(k * 60_000, 100.0, 1.0))
    assert m.liqs[0].ts >= 999 * 60_000 - 6 * 3600_000
