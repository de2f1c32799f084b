"""Funding APR and basis arithmetic."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.funding import (
    basis_bps,
    funding_apr_pct,
    funding_apr_pct_from_minutes,
    funding_periods_per_year,
    make_basis,
)
from core.models import Basis


def test_apr_for_8h_interval() -> None:
    # 0.01 % per 8 h = 3 payments a day
    assert funding_apr_pct(0.0001, 8) == pytest.approx(0.0001 * 3 * 365 * 100)
    assert funding_apr_pct(0.0001, 8) == pytest.approx(10.95)


@pytest.mark.parametrize(("hours", "per_day"), [(1, 24), (2, 12), (4, 6), (8, 3), (0.5, 48)])
def test_apr_uses_the_given_interval(hours: float, per_day: float) -> None:
    assert funding_apr_pct(0.0002, hours) == pytest.approx(0.0002 * per_day * 365 * 100)
    assert funding_periods_per_year(hours) == pytest.approx(per_day * 365)


def test_apr_negative_rate_and_zero() -> None:
    assert funding_apr_pct(-0.0001, 4) == pytest.approx(-21.9)
    assert funding_apr_pct(0.0, 8) == 0.0


@pytest.mark.parametrize("bad", [0, -8, 0.0, math.nan, math.inf])
def test_apr_rejects_non_positive_interval(bad: float) -> None:
    with pytest.raises(ValueError):
        funding_apr_pct(0.0001, bad)


def test_apr_from_minutes() -> None:
    assert funding_apr_pct_from_minutes(0.0001, 480) == pytest.approx(funding_apr_pct(0.0001, 8))
    assert funding_apr_pct_from_minutes(0.0001, 240) == pytest.approx(funding_apr_pct(0.0001, 4))
    with pytest.raises(ValueError):
        funding_apr_pct_from_minutes(0.0001, 0)


@given(
    rate=st.floats(-0.05, 0.05, allow_nan=False),
    hours=st.floats(0.25, 24.0, allow_nan=False),
)
def test_apr_times_interval_is_invariant(rate: float, hours: float) -> None:
    # rate × (24/h) × 365 × 100 × h does not depend on h
    assert funding_apr_pct(rate, hours) * hours == pytest.approx(rate * 24 * 365 * 100, abs=1e-9)


def test_basis_bps() -> None:
    assert basis_bps(100.0, 100.05) == pytest.approx(5.0)
    assert basis_bps(100.0, 99.9) == pytest.approx(-10.0)
    assert basis_bps(77.31, 77.31) == 0.0


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_basis_rejects_bad_usdt_price(bad: float) -> None:
    with pytest.raises(ValueError):
        basis_bps(bad, 100.0)


def test_basis_rejects_non_finite_usdc_price() -> None:
    with pytest.raises(ValueError):
        basis_bps(100.0, math.nan)


def test_make_basis() -> None:
    b = make_basis(1_700_000_000_000, 200.0, 200.1)
    assert isinstance(b, Basis)
    assert b.ts == 1_700_000_000_000
    assert (b.usdt_px, b.usdc_px) == (200.0, 200.1)
    assert b.basis_bps == pytest.approx(5.0)
