"""Funding and basis arithmetic (pure).

* A funding rate is paid once per *funding interval*; venues use 1 h, 2 h, 4 h and 8 h intervals, and
  the interval of one contract can change over time. The interval is therefore always an argument:
  nothing here assumes 8 h.
* APR is simple (not compounded): ``rate × payments per day × 365 × 100``.
* Basis compares the USDC-margined perp with the USDT-margined perp of the same asset, in basis
  points of the USDT price.
"""

from __future__ import annotations

import math

from core.models import Basis

HOURS_PER_DAY = 24.0
DAYS_PER_YEAR = 365.0


def funding_periods_per_year(interval_hours: float) -> float:
    """Number of funding payments per (365-day) year for an interval of ``interval_hours``."""
    if not math.isfinite(interval_hours) or interval_hours <= 0:
        raise ValueError(f"funding interval must be a positive number of hours, got {interval_hours!r}")
    return HOURS_PER_DAY / interval_hours * DAYS_PER_YEAR


def funding_apr_pct(rate: float, interval_hours: float) -> float:
    """Simple annualised funding in percent: ``rate × (24 / interval_hours) × 365 × 100``.

    ``rate`` is the per-interval rate as a fraction (Bybit ``fundingRate`` ``"0.0001"`` = 0.01 %).
    Raises :class:`ValueError` when ``interval_hours`` is not a positive finite number.
    """
    return rate * funding_periods_per_year(interval_hours) * 100.0


def funding_apr_pct_from_minutes(rate: float, interval_min: float) -> float:
    """As :func:`funding_apr_pct` for an interval given in minutes (Bybit instruments-info)."""
    if not math.isfinite(interval_min) or interval_min <= 0:
        raise ValueError(f"funding interval must be a positive number of minutes, got {interval_min!r}")
    return funding_apr_pct(rate, interval_min / 60.0)


def basis_bps(usdt_px: float, usdc_px: float) -> float:
    """USDC perp premium over the USDT perp in bps: ``(usdc − usdt) / usdt × 1e4``.

    Raises :class:`ValueError` when ``usdt_px`` is not a positive finite price.
    """
    if not math.isfinite(usdt_px) or usdt_px <= 0:
        raise ValueError(f"usdt price must be positive, got {usdt_px!r}")
    if not math.isfinite(usdc_px):
        raise ValueError(f"usdc price must be finite, got {usdc_px!r}")
    return (usdc_px - usdt_px) / usdt_px * 1e4


def make_basis(ts: int, usdt_px: float, usdc_px: float) -> Basis:
    """A :class:`core.models.Basis` for the two prices observed at ``ts`` (ms)."""
    return Basis(ts=ts, usdt_px=usdt_px, usdc_px=usdc_px, basis_bps=basis_bps(usdt_px, usdc_px))
