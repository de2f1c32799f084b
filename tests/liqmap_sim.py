"""Synthetic Drift markets and User accounts for the liquidation-map tests and benchmark (built
with driftpy's own IDL coder), and driftpy's ``DriftUser.get_perp_liq_price`` on the same accounts
through a cached (offline) subscription: no RPC. Not a test module."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from anchorpy.provider import Wallet
from driftpy.account_subscription_config import AccountSubscriptionConfig
from driftpy.accounts import DataAndSlot
from driftpy.drift_client import DriftClient
from driftpy.drift_user import DriftUser
from driftpy.oracles.oracle_id import get_oracle_id
from driftpy.types import MarginMode, MarketStatus, OraclePriceData, OracleSource, SpotBalanceType
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from core.liqmap import MarketParams
from feeds.drift.markets import decode, market_params
from tests.drift_sim import encode, rep, zero

SLOT = 300_000_000
INTEREST = 10_000_000_000  # SPOT_CUMULATIVE_INTEREST_PRECISION


@dataclass
class SpotSpec:
    index: int
    price: int  # 1e6
    decimals: int
    deposit_interest: int
    borrow_interest: int
    asset_weight: int
    liability_weight: int
    imf: int = 0
    sister: bool = False
    oracle: Pubkey = field(default_factory=Pubkey.new_unique)


@dataclass
class Markets:
    """One perp market (index 0) with its oracle and three spot markets: USDC (quote), SOL
    (sharing the perp's oracle) and a third asset."""

    oracle_price: int = 150_000_000
    mmr: int = 500
    imf: int = 0
    upnl_weight: int = 10_000
    funding_long: int = 0
    funding_short: int = 0
    perp_oracle: Pubkey = field(default_factory=Pubkey.new_unique)
    spots: list[SpotSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.spots:
            self.spots = [
                SpotSpec(0, 1_000_000, 6, 10_400_000_000, 10_900_000_000, 10_000, 10_000),
                SpotSpec(
                    1,
                    self.oracle_price,
                    9,
                    10_100_000_000,
                    10_300_000_000,
                    9_000,
                    11_000,
                    0,
                    True,
                    self.perp_oracle,
                ),
                SpotSpec(2, 60_000_000_000, 8, 10_050_000_000, 10_200_000_000, 8_000, 12_000, 1_000),
            ]

    def perp(self) -> Any:
        pm = zero("PerpMarket")
        amm = rep(
            pm.amm,
            oracle=self.perp_oracle,
            oracle_source=OracleSource.Prelaunch(),
            cumulative_funding_rate_long=self.funding_long,
            cumulative_funding_rate_short=self.funding_short,
            order_step_size=1_000_000,
        )
        return rep(
            pm,
            amm=amm,
            market_index=0,
            status=MarketStatus.Active(),
            margin_ratio_initial=self.mmr * 2,
            margin_ratio_maintenance=self.mmr,
            imf_factor=self.imf,
            unrealized_pnl_maintenance_asset_weight=self.upnl_weight,
            unrealized_pnl_initial_asset_weight=self.upnl_weight,
            quote_spot_market_index=0,
        )

    def spot(self, s: SpotSpec) -> Any:
        sm = zero("SpotMarket")
        src = OracleSource.QuoteAsset() if s.index == 0 else OracleSource.Prelaunch()
        return rep(
            sm,
            market_index=s.index,
            oracle=s.oracle,
            oracle_source=src,
            decimals=s.decimals,
            cumulative_deposit_interest=s.deposit_interest,
            cumulative_borrow_interest=s.borrow_interest,
            maintenance_asset_weight=s.asset_weight,
            initial_asset_weight=s.asset_weight,
            maintenance_liability_weight=s.liability_weight,
            initial_liability_weight=s.liability_weight,
            imf_factor=s.imf,
            status=MarketStatus.Active(),
        )

    def oracle_account(self, price: int) -> bytes:
        orc = zero("PrelaunchOracle")
        return encode("PrelaunchOracle", rep(orc, price=price, max_price=price * 2, perp_market_index=0))

    def params(self) -> MarketParams:
        perp = decode(encode("PerpMarket", self.perp()))
        spots = [(decode(encode("SpotMarket", self.spot(s))), s.price) for s in self.spots]
        return market_params(perp, self.oracle_price, spots)


def scaled_balance(tokens: float, spec: SpotSpec, borrow: bool) -> int:
    """Scaled balance (1e9) holding ``tokens`` whole tokens."""
    interest = spec.borrow_interest if borrow else spec.deposit_interest
    return int(tokens * 10**spec.decimals * 10 ** (19 - spec.decimals) / interest)


def make_user(
    mk: Markets,
    rng: random.Random,
    *,
    long: bool,
    size: float,
    entry: float,
    usdc: float,
    spot: list[tuple[int, float, bool]] = (),  # type: ignore[assignment]
    orders: bool = False,
    other_perp: bool = False,
    lp: bool = False,
    hlm: bool = False,
) -> Any:
    u = zero("User")
    base = int(size * 1e9) * (1 if long else -1)
    qe = -base * int(entry * 1e6) // 1_000_000_000
    fees = rng.randint(0, 5_000_000)
    funding = rng.randint(-(10**9), 10**9)
    pos = rep(
        u.perp_positions[0],
        market_index=0,
        base_asset_amount=base,
        quote_entry_amount=qe,
        quote_break_even_amount=qe - fees,
        quote_asset_amount=qe - fees,
        last_cumulative_funding_rate=(mk.funding_long if long else mk.funding_short) + funding,
    )
    if orders:
        pos = rep(
            pos,
            open_orders=2,
            open_bids=int(rng.uniform(0, size) * 1e9),
            open_asks=-int(rng.uniform(0, size) * 1e9),
        )
    if lp:
        pos = rep(pos, lp_shares=1_000_000_000)
    perps = list(u.perp_positions)
    slot = rng.randrange(8)
    perps[slot] = pos
    if other_perp:
        perps[(slot + 1) % 8] = rep(
            u.perp_positions[0],
            market_index=1,
            base_asset_amount=10**9,
            quote_asset_amount=-20_000_000,
            quote_entry_amount=-20_000_000,
        )
    elif rng.random() < 0.3:  # a flat position with unsettled PnL (counts, no margin)
        perps[(slot + 1) % 8] = rep(
            u.perp_positions[0], market_index=3, quote_asset_amount=rng.randint(-5_000_000, 5_000_000)
        )
    spots = list(u.spot_positions)
    balances = [(0, usdc, usdc < 0)] + [(i, abs(t), b) for i, t, b in spot]
    for k, (idx, tokens, borrow) in enumerate(balances):
        if tokens == 0:
            continue
        spec = mk.spots[idx] if idx < len(mk.spots) else SpotSpec(idx, 1_000_000, 6, INTEREST, INTEREST, 1, 1)
        bt = SpotBalanceType.Borrow() if borrow else SpotBalanceType.Deposit()
        spots[k] = rep(
            spots[k],
            market_index=idx,
            balance_type=bt,
            scaled_balance=scaled_balance(abs(tokens), spec, borrow),
        )
    mode = MarginMode.HighLeverage() if hlm else MarginMode.Default()
    return rep(u, authority=Pubkey.new_unique(), perp_positions=perps, spot_positions=spots, margin_mode=mode)


def random_covered_user(mk: Markets, rng: random.Random) -> Any:
    """A user the model covers: SOL-PERP, varied collateral, several spot balances, orders."""
    long = rng.random() < 0.5
    size = 10 ** rng.uniform(-1, 3.5)
    px = mk.oracle_price / 1e6
    entry = px * rng.uniform(0.85, 1.15)
    lev = rng.uniform(1.0, 15.0)
    usdc = size * px / lev
    spot: list[tuple[int, float, bool]] = []
    r = rng.random()
    if r < 0.25:  # part of the collateral in SOL (moves with the perp price)
        spot.append((1, usdc / px * rng.uniform(0.1, 0.6), False))
    elif r < 0.45:  # a third asset
        spot.append((2, usdc / 60_000 * rng.uniform(0.1, 0.8), False))
    elif r < 0.6:  # a borrow against more collateral
        spot.append((2, usdc / 60_000 * rng.uniform(0.5, 1.5), False))
        spot.append((1, usdc / px * rng.uniform(0.05, 0.3), True))
    if rng.random() < 0.1:
        usdc = -usdc * 0.2  # a USDC borrow, other collateral
        spot.append((2, size * px / lev / 60_000 * 2, False))
    return make_user(
        mk, rng, long=long, size=size, entry=entry, usdc=usdc, spot=spot, orders=rng.random() < 0.2
    )


class DriftpyReference:
    """driftpy's DriftClient/DriftUser over cached accounts (never subscribed, no traffic)."""

    def __init__(self, mk: Markets) -> None:
        self.mk = mk
        self.client = DriftClient(
            AsyncClient("http://127.0.0.1:9"),
            Wallet(Keypair()),
            env="devnet",
            account_subscription=AccountSubscriptionConfig("cached"),
            perp_market_indexes=[0, 3],
            spot_market_indexes=[s.index for s in mk.spots],
            oracle_infos=[],
            market_lookup_tables=[],
        )
        sub = self.client.account_subscriber
        perp = decode(encode("PerpMarket", mk.perp()))
        other = decode(encode("PerpMarket", rep(mk.perp(), market_index=3)))  # flat positions' market
        sub.cache["perp_markets"] = [DataAndSlot(SLOT, perp), DataAndSlot(SLOT, other)]
        sub.cache["spot_markets"] = [
            DataAndSlot(SLOT, decode(encode("SpotMarket", mk.spot(s)))) for s in mk.spots
        ]
        prices = sub.cache["oracle_price_data"]
        prices[get_oracle_id(mk.perp_oracle, OracleSource.Prelaunch())] = DataAndSlot(
            SLOT, OraclePriceData(mk.oracle_price, SLOT, 0, mk.oracle_price, 0, True)
        )
        for s in mk.spots:
            src = OracleSource.QuoteAsset() if s.index == 0 else OracleSource.Prelaunch()
            prices[get_oracle_id(s.oracle, src)] = DataAndSlot(
                SLOT, OraclePriceData(s.price, SLOT, 0, s.price, 0, True)
            )

    def user(self, raw: bytes) -> DriftUser:
        du = DriftUser(self.client, Pubkey.new_unique(), AccountSubscriptionConfig("cached"))
        du.account_subscriber.update_data(DataAndSlot(SLOT, decode(raw)))
        return du

    def liq_price(self, raw: bytes) -> int:
        return int(self.user(raw).get_perp_liq_price(0))

    def health(self, raw: bytes) -> int:
        return int(self.user(raw).get_health())


def install(rpc: Any, mk: Markets, program_id: Pubkey, users: list[tuple[str, bytes]]) -> None:
    """Put the markets, their oracles and ``users`` into a :class:`tests.solana_rpc.LocalSolanaRpc`."""
    from driftpy.addresses import get_perp_market_public_key, get_spot_market_public_key

    pid = str(program_id)
    rpc.set_account(str(get_perp_market_public_key(program_id, 0)), pid, encode("PerpMarket", mk.perp()))
    rpc.set_account(str(mk.perp_oracle), pid, mk.oracle_account(mk.oracle_price))
    for s in mk.spots:
        rpc.set_account(
            str(get_spot_market_public_key(program_id, s.index)), pid, encode("SpotMarket", mk.spot(s))
        )
        if s.index != 0 and not s.sister:
            rpc.set_account(str(s.oracle), pid, mk.oracle_account(s.price))
    for key, raw in users:
        rpc.set_account(key, pid, raw)


def assert_same_entries(got: list[Any], want: list[Any], rel: float = 1e-9) -> None:
    """Same accounts in the same order, numbers equal up to float rounding (vectorized vs scalar)."""
    import math

    assert [e.account for e in got] == [e.account for e in want]
    for a, b in zip(got, want, strict=True):
        for f in a.__struct_fields__:
            x, y = getattr(a, f), getattr(b, f)
            if isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, rel_tol=rel, abs_tol=1e-9), (a.account, f, x, y)
            else:
                assert x == y, (a.account, f, x, y)
