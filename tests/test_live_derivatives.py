"""Live open interest and funding from every venue: LiveFeeds against the fake exchange on
127.0.0.1 polls Binance (fundingInfo, premiumIndex, openInterest) and OKX (open-interest,
funding-rate per instrument) beside Bybit, and each venue's values reach the bus."""

from __future__ import annotations

import pytest

from core.bus import Topics
from core.models import Funding, OpenInterest
from feeds.transport.fakes import FakeExchange
from tests.transport_harness import Harness, fast_options, start_fake


async def test_oi_and_funding_from_all_three_venues() -> None:
    fx = await start_fake()
    try:
        await _all_three(fx)
    finally:
        await fx.stop()


async def _all_three(fx: FakeExchange) -> None:
    opts = fast_options(derivs_poll_s=0.2, bybit_poll_s=0.2)
    async with Harness(fx, options=opts) as h:
        funding: dict[str, Funding] = {}
        oi: dict[str, OpenInterest] = {}
        h.bus.on(Topics.FUNDING, lambda f: funding.__setitem__(f.venue, f))
        h.bus.on(Topics.OPEN_INTEREST, lambda o: oi.__setitem__(o.venue, o))
        venues = {"binance", "bybit", "okx"}
        await h.wait_for(lambda: venues <= set(funding) and venues <= set(oi), timeout=20,
                         what=f"funding and OI from {venues}")
    assert funding["binance"].interval_hours == 8.0  # not listed by the fake's fundingInfo
    assert funding["okx"].interval_hours == 8.0  # nextFundingTime - fundingTime
    assert oi["binance"].oi_notional == pytest.approx(81234.567 * 61000.1)  # at the mark
    assert oi["okx"].oi_notional == 30_000_000.0 and oi["okx"].symbol == "SOL-USDT-SWAP"
    assert all(o.oi_notional > 0 for o in oi.values())
    for name in ("binance.openInterest", "binance.premiumIndex", "binance.fundingInfo",
                 "okx.open-interest", "okx.funding-rate"):
        assert fx.requests.get(name, 0) >= 1, name


async def test_binance_funding_interval_follows_funding_info_within_the_day() -> None:
    """Binance may shorten a symbol's funding interval intraday: fundingInfo is asked again
    (``funding_info_poll_s``) and the APR follows the new interval."""
    fx = await start_fake()
    try:
        opts = fast_options(derivs_poll_s=0.1, funding_info_poll_s=0.2)
        async with Harness(fx, options=opts) as h:
            seen: list[Funding] = []
            h.bus.on(Topics.FUNDING, lambda f: seen.append(f) if f.venue == "binance" else None)
            await h.wait_for(lambda: bool(seen), timeout=20, what="Binance funding")
            assert seen[-1].interval_hours == 8.0  # not listed: 8 h, as Binance documents
            fx.binance_funding_hours[seen[-1].symbol] = 4
            await h.wait_for(lambda: seen[-1].interval_hours == 4.0, timeout=20, what="the 4 h interval")
            last = seen[-1]
            assert last.apr_pct == pytest.approx(last.rate * 6 * 365 * 100)
    finally:
        await fx.stop()
