"""Per-venue and aggregated open interest and funding (core.derivatives), and the guards' view."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.derivatives import Derivatives, weighted_apr
from core.market_state import MarketState
from core.models import Funding, OpenInterest

NOW = 1_700_000_000_000


def fund(venue: str, symbol: str, apr: float, ts: int = NOW) -> Funding:
    return Funding(venue, symbol, ts, apr / 1095.0, 8.0, apr)


def oi(venue: str, symbol: str, usd: float, ts: int = NOW) -> OpenInterest:
    return OpenInterest(venue, symbol, ts, 2 * usd / 100, usd / 100, usd)


def test_per_venue_and_total_open_interest_skip_stale_values() -> None:
    d = Derivatives()
    d.on_open_interest(oi("bybit", "SOLUSDT", 300e6))
    d.on_open_interest(oi("okx", "SOL-USDT-SWAP", 100e6))
    d.on_open_interest(oi("okx", "SOL-USDC-SWAP", 10e6))
    d.on_open_interest(oi("binance", "SOLUSDT", 500e6, ts=NOW - 600_000))  # 10 min old
    assert d.oi_by_venue(NOW, 300) == {"bybit": 300e6, "okx": 110e6}
    assert d.oi_total(NOW, 300) == 410e6
    assert d.oi_total(NOW, 900) == 910e6
    assert Derivatives().oi_total(NOW, 300) is None  # nothing known: missing, not 0


def test_funding_is_oi_weighted_when_every_oi_is_known() -> None:
    d = Derivatives()
    d.on_funding(fund("okx", "SOL-USDT-SWAP", 10.0))
    d.on_funding(fund("okx", "SOL-USDC-SWAP", 40.0))
    d.on_funding(fund("bybit", "SOLUSDT", 20.0))
    assert d.funding_by_venue(NOW, 300, 300) == {"bybit": 20.0, "okx": 25.0}  # plain mean: no OI
    d.on_open_interest(oi("okx", "SOL-USDT-SWAP", 90e6))
    d.on_open_interest(oi("okx", "SOL-USDC-SWAP", 10e6))
    assert d.funding_by_venue(NOW, 300, 300)["okx"] == pytest.approx(13.0)
    assert d.funding_aggregate(NOW, 300, 300) == pytest.approx((10 + 40 + 20) / 3)  # bybit OI unknown
    d.on_open_interest(oi("bybit", "SOLUSDT", 100e6))
    assert d.funding_aggregate(NOW, 300, 300) == pytest.approx((10 * 90 + 40 * 10 + 20 * 100) / 200)
    d.on_funding(fund("okx", "SOL-USDT-SWAP", 99.0, ts=NOW - 1))  # late: never replaces newer
    assert d.funding[("okx", "SOL-USDT-SWAP")].apr_pct == 10.0


@given(st.lists(st.tuples(st.floats(-500, 500), st.floats(1, 1e9)), min_size=1, max_size=6))
def test_weighted_apr_lies_between_the_extremes(pairs: list[tuple[float, float]]) -> None:
    apr = weighted_apr(pairs)
    assert apr is not None
    lo, hi = min(a for a, _ in pairs), max(a for a, _ in pairs)
    assert lo - 1e-6 <= apr <= hi + 1e-6


def test_market_state_reports_the_aggregate_and_keeps_the_freshest_age() -> None:
    ms = MarketState()
    ms.on_open_interest(oi("bybit", "SOLUSDT", 300e6, ts=NOW - 2000))
    ms.on_open_interest(oi("okx", "SOL-USDT-SWAP", 100e6, ts=NOW - 1000))
    ms.on_funding(fund("binance", "SOLUSDT", 12.0, ts=NOW - 500))
    s = ms.snapshot(NOW)
    assert s.oi_notional == 400e6 and s.oi_by_venue == {"bybit": 300e6, "okx": 100e6}
    assert s.ages_s["oi"] == 1.0  # the freshest value's age
    assert s.funding_apr == 12.0 and s.funding_by_venue == {"binance": 12.0}
