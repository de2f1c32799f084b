"""core.liqmap: fixed offsets against driftpy's coder, the solve against driftpy's
``DriftUser.get_perp_liq_price`` on several hundred synthetic users, approximate flags, clusters."""

from __future__ import annotations

import hashlib
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.liqmap import (
    USER_DISCRIMINATOR,
    USER_SIZE,
    LiqEntry,
    build_map,
    clusters,
    estimate,
    has_position,
    perp_slots,
    scan,
    spot_slots,
)
from core.liqmap_fast import scan_buffer, view
from tests.drift_sim import encode, rep, zero
from tests.liqmap_sim import DriftpyReference, Markets, assert_same_entries, make_user, random_covered_user

MARKETS = [
    {},
    {"mmr": 300, "imf": 1000, "funding_long": 5 * 10**9, "funding_short": -3 * 10**9, "upnl_weight": 9000},
    {
        "oracle_price": 23_456_789,
        "mmr": 625,
        "imf": 4000,
        "funding_long": -7 * 10**9,
        "funding_short": 2 * 10**9,
    },
]


def test_layout_constants_match_the_idl() -> None:
    raw = encode("User", zero("User"))
    assert len(raw) == USER_SIZE
    assert raw[:8] == USER_DISCRIMINATOR == hashlib.sha256(b"account:User").digest()[:8]


i64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=60, deadline=None)
@given(
    slot=st.integers(0, 7),
    base=i64,
    quote=i64,
    entry=i64,
    bids=i64,
    asks=i64,
    lp=st.integers(0, 2**64 - 1),
    mi=st.integers(0, 65535),
    oo=st.integers(1, 255),
    mmr=st.integers(0, 65535),
    sb=st.integers(1, 2**64 - 1),
    smi=st.integers(0, 65535),
    borrow=st.booleans(),
    soo=st.integers(0, 255),
)
def test_fixed_offsets_read_what_driftpys_coder_wrote(
    slot: int,
    base: int,
    quote: int,
    entry: int,
    bids: int,
    asks: int,
    lp: int,
    mi: int,
    oo: int,
    mmr: int,
    sb: int,
    smi: int,
    borrow: bool,
    soo: int,
) -> None:
    from driftpy.types import SpotBalanceType

    u = zero("User")
    perps = list(u.perp_positions)
    perps[slot] = rep(
        perps[slot],
        base_asset_amount=base,
        quote_asset_amount=quote,
        quote_entry_amount=entry,
        open_bids=bids,
        open_asks=asks,
        lp_shares=lp,
        market_index=mi,
        open_orders=oo,
        max_margin_ratio=mmr,
        last_cumulative_funding_rate=~base,
    )
    spots = list(u.spot_positions)
    bt = SpotBalanceType.Borrow() if borrow else SpotBalanceType.Deposit()
    spots[7 - slot] = rep(
        spots[7 - slot],
        scaled_balance=sb,
        market_index=smi,
        balance_type=bt,
        open_orders=soo,
        open_bids=bids,
        open_asks=asks,
    )
    raw = encode("User", rep(u, perp_positions=perps, spot_positions=spots))
    (p,) = [p for p in perp_slots(raw) if p.base == base and p.market_index == mi]
    assert (p.quote, p.quote_entry, p.open_bids, p.open_asks, p.lp_shares, p.open_orders, p.funding_rate) == (
        quote,
        entry,
        bids,
        asks,
        lp,
        oo,
        ~base,
    )
    (s,) = spot_slots(raw)
    assert (s.scaled_balance, s.market_index, s.borrow, s.open_orders, s.open_bids, s.open_asks) == (
        sb,
        smi,
        borrow,
        soo,
        bids,
        asks,
    )
    assert has_position(raw, mi) == (base != 0)


@pytest.mark.parametrize("cfg", MARKETS)
def test_estimate_matches_driftpy_get_perp_liq_price(cfg: dict[str, int]) -> None:
    """120 users per market, 360 in all (long and short, USDC/SOL/third-asset collateral, borrows,
    open orders, funding, size premium): within 0.25% of driftpy, the same health."""
    mk = Markets(**cfg)
    ref = DriftpyReference(mk)
    params = mk.params()
    rng = random.Random(str(cfg))
    compared = longs = shorts = 0
    worst = 0.0
    for _ in range(120):
        raw = encode("User", random_covered_user(mk, rng))
        e = estimate(raw, "acct", params, 1)
        assert e is not None and not e.approximate
        du = ref.user(raw)
        want = int(du.get_perp_liq_price(0))
        assert e.health == du.get_health()
        if want < 0:
            assert e.est_liq_px == -1
            continue
        compared += 1
        longs += e.position_size > 0
        shorts += e.position_size < 0
        worst = max(worst, abs(e.est_liq_px - want / 1e6) / (want / 1e6))
        assert (e.est_liq_px < mk.oracle_price / 1e6) == (e.position_size > 0) or e.health == 0
    assert compared >= 100 and longs >= 35 and shorts >= 35
    assert worst <= 0.0025, worst


@pytest.mark.parametrize("case", ["other_perp", "lp", "hlm", "unknown_spot"])
def test_uncovered_cases_are_flagged_approximate(case: str) -> None:
    mk = Markets()
    rng = random.Random(case)
    kw = {
        "other_perp": {"other_perp": True},
        "lp": {"lp": True},
        "hlm": {"hlm": True},
        "unknown_spot": {"spot": [(9, 100.0, False)]},
    }[case]
    raw = encode("User", make_user(mk, rng, long=True, size=10, entry=150, usdc=300, **kw))  # type: ignore[arg-type]
    e = estimate(raw, "a", mk.params(), 0)
    assert e is not None and e.approximate
    plain = estimate(
        encode("User", make_user(mk, rng, long=True, size=10, entry=150, usdc=300)), "b", mk.params(), 0
    )
    assert plain is not None and not plain.approximate


def test_textbook_formula_for_a_usdc_only_long_and_short() -> None:
    """No fees, no funding, no size premium: p = (q·avg − C) / (q − mmr·|q|)."""
    mk = Markets(mmr=500)
    for long, want in (
        (True, (10 * 150 - 300) / (10 - 0.05 * 10)),
        (False, (-10 * 150 - 300) / (-10 - 0.05 * 10)),
    ):
        u = make_user(mk, random.Random(0), long=long, size=10, entry=150, usdc=300)
        perps = [
            rep(p, quote_asset_amount=p.quote_entry_amount, last_cumulative_funding_rate=0)
            for p in u.perp_positions
        ]
        e = estimate(encode("User", rep(u, perp_positions=perps)), "a", mk.params(), 0)
        assert e is not None
        assert e.est_liq_px == pytest.approx(want, rel=1e-5)
        assert e.distance_bps == pytest.approx((want - 150) / 150 * 1e4, rel=1e-4)
        assert e.leverage == pytest.approx(1500 / 300, rel=1e-3)


def test_scan_skips_accounts_without_the_market_and_sorts_by_distance() -> None:
    mk = Markets()
    rng = random.Random(5)
    accounts = [(f"u{i}", encode("User", random_covered_user(mk, rng))) for i in range(40)]
    accounts.append(("empty", encode("User", zero("User"))))
    accounts.append(("short", b"\x00" * 100))
    entries, seen = scan(accounts, mk.params(), 7)
    assert seen == 42 and len(entries) == 40
    d = [abs(e.distance_bps) if e.distance_bps is not None else math.inf for e in entries]
    assert d == sorted(d)
    m = build_map(entries, mk.params(), 7, 1, seen)
    assert m.clusters and sum(c.accounts for c in m.clusters) == sum(1 for e in entries if e.est_liq_px > 0)


def _entry(px: float, size: float) -> LiqEntry:
    return LiqEntry(
        account="a",
        market_index=0,
        position_size=size,
        avg_entry_price=1.0,
        est_liq_px=px,
        collateral_usd=1.0,
        leverage=1.0,
        health=50,
        distance_bps=0.0,
        approximate=False,
        updated_at=0,
    )


@given(
    st.lists(st.tuples(st.floats(1, 1000), st.floats(-1000, 1000)), max_size=50),
    st.floats(1, 1000),
    st.sampled_from([10.0, 25.0, 100.0]),
)
def test_clusters_keep_all_notional_in_25bps_buckets(
    items: list[tuple[float, float]], oracle: float, bps: float
) -> None:
    entries = [_entry(px, q) for px, q in items]
    cs = clusters(entries, oracle, bps)
    assert math.isclose(
        sum(c.notional_usd for c in cs), sum(abs(q) * px for px, q in items), rel_tol=1e-9, abs_tol=1e-6
    )
    for c in cs:
        assert c.price_hi - c.price_lo == pytest.approx(oracle * bps / 1e4)
    for px, _ in items:
        assert sum(1 for c in cs if c.price_lo - 1e-9 <= px < c.price_hi + 1e-9) >= 1


@pytest.mark.parametrize("cfg", MARKETS)
def test_vectorized_scan_equals_the_scalar_model(cfg: dict[str, int]) -> None:
    """core.liqmap_fast.scan_buffer (what the scanner runs) == core.liqmap.estimate, covered and
    approximate users, flat and foreign accounts skipped."""
    mk = Markets(**cfg)
    rng = random.Random(f"fast{cfg}")
    accounts = [(f"u{i}", encode("User", random_covered_user(mk, rng))) for i in range(100)]
    for i in range(24):
        kw = [{"other_perp": True}, {"lp": True}, {"hlm": True}, {"spot": [(9, 1.0, False)]}][i % 4]
        user = make_user(mk, rng, long=i % 2 == 0, size=5, entry=150, usdc=200, **kw)  # type: ignore[arg-type]
        accounts.append((f"x{i}", encode("User", user)))
    accounts.append(("flat", encode("User", zero("User"))))
    want, _ = scan(accounts, mk.params(), 9)
    buf = b"".join(raw for _, raw in accounts)
    got = scan_buffer([k for k, _ in accounts], buf, mk.params(), 9)
    assert len(got) == 124 and sum(e.approximate for e in got) == 24
    assert_same_entries(got, want)
    with pytest.raises(ValueError):
        view(buf[:-1])
