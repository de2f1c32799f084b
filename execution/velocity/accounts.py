"""Velocity accounts, decoded by the IDL codec, as the small views the venue works with.

Precisions (as on Drift): base 1e9, price 1e6, quote 1e6 (USDT), spot balances 1e9 scaled by
cumulative interest 1e10 (``token = balance × interest / 10^(19 − decimals)``). The User account's
orders and perp positions become :class:`execution.drift.user_state.UserSnapshot` (the venue-neutral
reconciliation works on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from solders.pubkey import Pubkey

from execution.drift.user_state import ChainOrder, PerpPos, UserSnapshot

BASE = 1_000_000_000
PRICE = 1_000_000
QUOTE = 1_000_000
SPOT_INTEREST = 10_000_000_000
DEFAULT_PUBKEY = Pubkey.default()


def market_name(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\0 ").decode(errors="replace").strip()


@dataclass(frozen=True)
class StateView:
    exchange_status: int
    number_of_markets: int
    number_of_spot_markets: int
    taker_fee: float  # perp fee tier 0, as a fraction
    maker_rebate: float

    @classmethod
    def of(cls, d: dict[str, Any]) -> StateView:
        tier = d["perp_fee_structure"]["fee_tiers"][0]
        taker = tier["fee_numerator"] / tier["fee_denominator"] if tier["fee_denominator"] else 0.0
        rebate = (
            tier["maker_rebate_numerator"] / tier["maker_rebate_denominator"]
            if tier["maker_rebate_denominator"]
            else 0.0
        )
        return cls(
            int(d["exchange_status"]),
            int(d["number_of_markets"]),
            int(d["number_of_spot_markets"]),
            taker,
            rebate,
        )


@dataclass(frozen=True)
class PerpMarketView:
    pubkey: Pubkey
    market_index: int
    name: str
    status: str
    paused_operations: int
    oracle: Pubkey
    oracle_source: str
    tick: int  # price units per tick (1e-6)
    step: int  # base units per step (1e-9)
    min_order_size: int
    quote_spot_market_index: int
    margin_ratio_initial: int
    margin_ratio_maintenance: int
    last_oracle_price: int  # 1e6, as the program last saw it

    @classmethod
    def of(cls, d: dict[str, Any]) -> PerpMarketView:
        stats = d["market_stats"]
        return cls(
            pubkey=d["pubkey"],
            market_index=int(d["market_index"]),
            name=market_name(d["name"]),
            status=str(d["status"]),
            paused_operations=int(d["paused_operations"]),
            oracle=d["oracle"],
            oracle_source=str(d["oracle_source"]),
            tick=max(1, int(d["order_tick_size"])),
            step=max(1, int(d["order_step_size"])),
            min_order_size=max(1, int(stats["min_order_size"])),
            quote_spot_market_index=int(d["quote_spot_market_index"]),
            margin_ratio_initial=int(d["margin_ratio_initial"]),
            margin_ratio_maintenance=int(d["margin_ratio_maintenance"]),
            last_oracle_price=int(stats["historical_oracle_data"]["last_oracle_price"]),
        )


@dataclass(frozen=True)
class SpotMarketView:
    pubkey: Pubkey
    market_index: int
    name: str
    oracle: Pubkey
    oracle_source: str
    decimals: int
    cumulative_deposit_interest: int
    cumulative_borrow_interest: int
    last_oracle_price: int

    @classmethod
    def of(cls, d: dict[str, Any]) -> SpotMarketView:
        return cls(
            pubkey=d["pubkey"],
            market_index=int(d["market_index"]),
            name=market_name(d["name"]),
            oracle=d["oracle"],
            oracle_source=str(d["oracle_source"]),
            decimals=int(d["decimals"]),
            cumulative_deposit_interest=int(d["cumulative_deposit_interest"]),
            cumulative_borrow_interest=int(d["cumulative_borrow_interest"]),
            last_oracle_price=int(d["historical_oracle_data"]["last_oracle_price"]),
        )

    def token_amount(self, scaled_balance: int, borrow: bool) -> int:
        """Token amount (mint precision) of a scaled balance; borrows round up (the program does)."""
        interest = self.cumulative_borrow_interest if borrow else self.cumulative_deposit_interest
        div: int = 10 ** max(0, 19 - self.decimals)
        n = scaled_balance * interest
        return -(-n // div) if borrow else n // div


@dataclass(frozen=True)
class SpotPos:
    market_index: int
    scaled_balance: int
    borrow: bool
    open_orders: int


@dataclass(frozen=True)
class UserView:
    """The decoded User: the reconciliation snapshot plus what margin/equity need."""

    snapshot: UserSnapshot
    spot: tuple[SpotPos, ...]
    perp_markets: tuple[int, ...]  # markets with a position or open orders
    equity_floor: int


def oracle_price(source: str, data: dict[str, Any] | None, fallback: int) -> tuple[int, bool]:
    """(price in 1e6, live) from a decoded oracle account (PythLazerOracle / PrelaunchOracle);
    ``fallback`` (the market's last oracle price) when the account cannot be read."""
    if data is None:
        return fallback, False
    if "exponent" in data:  # PythLazerOracle: price × 10^exponent
        exp = int(data["exponent"]) + 6
        px = int(data["price"])
        value = px * 10**exp if exp >= 0 else px // 10 ** (-exp)
        if source == "PythLazer1K":  # the price of 1000 units (e.g. 1K tokens), as the program scales it
            value *= 1000
        elif source == "PythLazer1M":
            value *= 1_000_000
        return value, True
    return int(data["price"]), True


def user_view(d: dict[str, Any], slot: int) -> UserView:
    orders: dict[int, ChainOrder] = {}
    for o in d["orders"]:
        if o["status"] != "Open" or o["market_type"] != "Perp":
            continue
        orders[int(o["order_id"])] = ChainOrder(
            order_id=int(o["order_id"]),
            user_order_id=int(o["user_order_id"]),
            market_index=int(o["market_index"]),
            order_type=str(o["order_type"]),
            direction=str(o["direction"]),
            base=int(o["base_asset_amount"]),
            filled=int(o["base_asset_amount_filled"]),
            quote_filled=int(o["quote_asset_amount_filled"]),
            price=int(o["price"]),
            trigger_price=int(o["trigger_price"]),
            trigger_condition=str(o["trigger_condition"]),
            reduce_only=bool(o["reduce_only"]),
            post_only=bool(o["post_only"]),
            slot=int(o["slot"]),
        )
    positions: dict[int, PerpPos] = {}
    markets = set()
    for p in d["perp_positions"]:
        if not (p["base_asset_amount"] or p["quote_asset_amount"] or p["open_orders"]):
            continue
        markets.add(int(p["market_index"]))
        positions[int(p["market_index"])] = PerpPos(
            market_index=int(p["market_index"]),
            base=int(p["base_asset_amount"]),
            quote=int(p["quote_asset_amount"]),
            quote_entry=int(p["quote_entry_amount"]),
            settled_pnl=int(p["settled_pnl"]),
            open_orders=int(p["open_orders"]),
            max_margin_ratio=int(p["max_margin_ratio"]),
        )
    spot = tuple(
        SpotPos(
            int(s["market_index"]),
            int(s["scaled_balance"]),
            s["balance_type"] == "Borrow",
            int(s["open_orders"]),
        )
        for s in d["spot_positions"]
        if s["scaled_balance"] or s["open_orders"]
    )
    snap = UserSnapshot(
        slot=slot,
        authority=str(d["authority"]),
        delegate=str(d["delegate"]),
        sub_account_id=int(d["sub_account_id"]),
        orders=orders,
        positions=positions,
        next_order_id=int(d["next_order_id"]),
    )
    return UserView(
        snapshot=snap, spot=spot, perp_markets=tuple(sorted(markets)), equity_floor=int(d["equity_floor"])
    )


def equity_usdt(
    user: UserView,
    spot_markets: dict[int, SpotMarketView],
    perp_prices: dict[int, int],
    spot_prices: dict[int, int],
) -> tuple[float, bool]:
    """Account equity in USDT (quote) terms: spot collateral minus borrows at oracle prices plus
    each perp position's unrealized PnL (``base × price + quote_asset_amount``; unsettled funding
    is left out). The flag is False when something could not be priced (left out)."""
    total, exact = 0, True
    for s in user.spot:
        m = spot_markets.get(s.market_index)
        px = spot_prices.get(s.market_index) if s.market_index else PRICE
        if m is None or px is None:
            exact = False
            continue
        amount = m.token_amount(s.scaled_balance, s.borrow)
        value = amount * px * QUOTE // (10**m.decimals * PRICE)
        total += -value if s.borrow else value
    for idx, p in user.snapshot.positions.items():
        px = perp_prices.get(idx)
        if px is None:
            exact = False
            continue
        total += p.base * px // (BASE * PRICE // QUOTE) + p.quote
    return total / QUOTE, exact
