"""Accounts as they are: a User with three perp positions (SOL, BTC, ETH) and spot balances in
markets 0 (USDC) and 1 (SOL), plus an order of its own in another market. Place, cancel-all, kill
and the equity are right — the equity checked against driftpy's own ``DriftUser`` collateral
computation over an independently built cache of the same accounts, and by hand."""

from __future__ import annotations

import msgspec
import pytest
from anchorpy.provider import Wallet
from driftpy.account_subscription_config import AccountSubscriptionConfig
from driftpy.accounts import DataAndSlot
from driftpy.accounts.oracle import decode_oracle
from driftpy.addresses import get_perp_market_public_key, get_spot_market_public_key
from driftpy.drift_client import DriftClient
from driftpy.drift_user import DriftUser
from driftpy.math.margin import MarginCategory
from driftpy.oracles.oracle_id import get_oracle_id
from driftpy.types import OraclePriceData
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from core.clock import EventClock
from core.engine_types import EngineConfig
from core.venue import OrderRequest, OrderType, PostOnly, TriggerCondition
from execution.killswitch import KillSwitch
from tests.drift_harness import DriftEnv, drift_env
from tests.drift_sim import CODER, PerpSpec, SpotSpec, is_open

SOL, BTC, ETH = 150_000_000, 60_000_000_000, 3_000_000_000


async def account_env() -> DriftEnv:
    env = await drift_env(start=False)
    sim = env.sim
    sim.add_perp(PerpSpec(1, BTC, "BTC-PERP"))
    sim.add_perp(PerpSpec(2, ETH, "ETH-PERP"))
    sim.add_spot(
        SpotSpec(
            1,
            SOL,
            9,
            oracle=sim.perps[0].oracle,
            initial_asset_weight=8_000,
            maintenance_asset_weight=9_000,
            initial_liability_weight=12_000,
            maintenance_liability_weight=11_000,
        )
    )
    sim.set_balance(1, 20.0)  # 20 SOL deposited
    sim.set_position(0, 5.0, 140.0)  # SOL-PERP long 5 @ 140
    sim.set_position(1, -0.1, 62_000.0)  # BTC-PERP short 0.1 @ 62 000
    sim.set_position(2, 2.0, 2_900.0)  # ETH-PERP long 2 @ 2 900
    sim.place_foreign(1, 77, 55_000_000_000, 10_000_000)  # the user's own BTC bid
    await env.venue.start(poll=False)
    return env


def reference_total_collateral(env: DriftEnv) -> int:
    return int(reference_user(env).get_total_collateral(MarginCategory.INITIAL))


def reference_user(env: DriftEnv) -> DriftUser:
    """driftpy's DriftUser over a cache built here from the same account bytes (no RPC)."""
    accounts = env.rpc.accounts

    def raw(key: Pubkey) -> bytes:
        return accounts[str(key)].data

    client = DriftClient(
        AsyncClient("http://127.0.0.1:9"),
        Wallet(Keypair()),
        env="devnet",
        account_subscription=AccountSubscriptionConfig("cached"),
        perp_market_indexes=[0, 1, 2],
        spot_market_indexes=[0, 1],
        oracle_infos=[],
        market_lookup_tables=[],
    )
    sub = client.account_subscriber
    perps = [CODER.accounts.decode(raw(get_perp_market_public_key(env.program_id, i))) for i in (0, 1, 2)]
    spots = [CODER.accounts.decode(raw(get_spot_market_public_key(env.program_id, i))) for i in (0, 1)]
    sub.cache["perp_markets"] = [DataAndSlot(1, m) for m in perps]
    sub.cache["spot_markets"] = [DataAndSlot(1, m) for m in spots]
    prices = sub.cache["oracle_price_data"]
    for m in perps:
        prices[get_oracle_id(m.amm.oracle, m.amm.oracle_source)] = DataAndSlot(
            1, decode_oracle(raw(m.amm.oracle), m.amm.oracle_source)
        )
    for m in spots:
        if type(m.oracle_source).__name__ == "QuoteAsset":
            data = OraclePriceData(1_000_000, 1, 1, 1_000_000, 1, True)
        else:
            data = decode_oracle(raw(m.oracle), m.oracle_source)
        prices[get_oracle_id(m.oracle, m.oracle_source)] = DataAndSlot(1, data)
    du = DriftUser(client, Pubkey.new_unique(), AccountSubscriptionConfig("cached"))
    du.account_subscriber.update_data(DataAndSlot(1, CODER.accounts.decode(raw(env.sim.user_pk))))
    return du


def stop(tag: str, size: float = 5.0) -> OrderRequest:
    return OrderRequest(
        market="SOL-PERP",
        side="sell",
        type=OrderType.TRIGGER_MARKET,
        size=size,
        trigger_price=130.0,
        trigger_condition=TriggerCondition.BELOW,
        reduce_only=True,
        client_tag=tag,
    )


def limit(tag: str, side: str, price: float, size: float, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(
        market="SOL-PERP",
        side=side,
        type=OrderType.LIMIT,
        size=size,
        price=price,  # type: ignore[arg-type]
        post_only=PostOnly.MUST if not reduce_only else PostOnly.NONE,
        reduce_only=reduce_only,
        client_tag=tag,
    )


async def test_every_referenced_market_and_oracle_is_loaded_and_passed() -> None:
    env = await account_env()
    try:
        v = env.venue.chain.view
        assert sorted(v.perp_markets) == [0, 1, 2] and sorted(v.spot_markets) == [0, 1]
        await env.venue.place(limit("i1:e1", "buy", 145.0, 1.0))
        [(name, _, accs)] = env.sim.parse(env.rpc.sent[-1].raw)[1]
        assert name == "place_perp_order"
        want = {get_perp_market_public_key(env.program_id, i) for i in (0, 1, 2)}
        want |= {get_spot_market_public_key(env.program_id, i) for i in (0, 1)}
        want |= {env.sim.perps[i].oracle for i in (0, 1, 2)}
        assert want <= set(accs[3:]), "the program needs every market and oracle the account uses"
        await env.venue.wait_idle()
        assert [o.user_order_id for o in env.sim.open_orders()] == [77, 1]
    finally:
        await env.close()


async def test_equity_is_total_collateral_as_driftpy_computes_it() -> None:
    env = await account_env()
    try:
        got = env.venue.equity()
        assert got is not None
        assert got == pytest.approx(reference_total_collateral(env) / 1e6, abs=1e-6)
        # by hand: 10 000 USDC + 20 SOL × 150 × 0.8 (initial weight) + uPnL 5×10 + 0.1×2000 + 2×100
        assert got == pytest.approx(10_000 + 2_400 + 50 + 200 + 200, abs=0.01)
        assert env.venue.chain.liq_price() is None  # driftpy: -1, no liquidation price at this collateral
        # the SOL price moves: both the perp and the SOL collateral follow
        env.sim.perps[0].price = 100_000_000
        env.sim.write_all()
        await env.venue.refresh()
        assert env.venue.equity() == pytest.approx(reference_total_collateral(env) / 1e6, abs=1e-6)
        assert env.venue.equity() == pytest.approx(10_000 + 20 * 100 * 0.8 - 5 * 40 + 200 + 200, abs=0.01)
    finally:
        await env.close()


async def test_equity_unknown_when_an_oracle_cannot_be_read() -> None:
    env = await account_env()
    try:
        del env.rpc.accounts[str(env.sim.perps[2].oracle)]
        await env.venue.refresh()
        assert env.venue.equity() is None and "oracle" in env.venue.chain.view.equity_error
    finally:
        await env.close()


async def test_cancel_all_and_kill_touch_only_the_apps_market() -> None:
    env = await account_env()
    v = env.venue
    try:
        await v.place(stop("i1:sl1"))
        await v.place(limit("i1:tp1", "sell", 160.0, 2.0, reduce_only=True))
        await v.place(limit("i2:e1", "buy", 145.0, 1.0))
        await v.wait_idle()
        assert len(env.sim.open_orders()) == 4
        cfg = msgspec.convert({"kill_backoff_s": 0.01, "kill_backoff_max_s": 0.05}, EngineConfig)

        async def fast(_: float) -> None:
            await v.wait_idle()
            await v.refresh()

        ks = KillSwitch(v, EventClock(1), cfg, sleep=fast)
        r = await ks.engage("test", flatten=False)
        assert r.confirmed and r.cancelled == 2 and [o["tag"] for o in r.kept] == ["i1:sl1"]
        left = {o.user_order_id: o for o in env.sim.open_orders()}
        assert set(left) == {77, 1}, "the stop stays; the BTC order of another market is untouched"
        assert await v.cancel_all("SOL-PERP") == 1
        await v.wait_idle()
        assert [o.user_order_id for o in env.sim.open_orders()] == [77]
        assert all(is_open(o) and o.market_index == 1 for o in env.sim.open_orders())
    finally:
        await env.close()


async def test_the_traded_markets_position_among_several() -> None:
    env = await account_env()
    try:
        pos = await env.venue.position("SOL-PERP")
        assert pos.size == pytest.approx(5.0) and pos.avg_price == pytest.approx(140.0)
    finally:
        await env.close()


async def test_modify_and_cancel_pass_every_market_too() -> None:
    env = await account_env()
    v = env.venue
    try:
        await v.place(stop("i1:sl1"))
        await v.wait_idle()
        await v.modify("i1:sl1", trigger_price=132.0)
        await v.wait_idle()
        [(name, _, accs)] = env.sim.parse(env.rpc.sent[-1].raw)[1]
        assert name == "modify_order" and env.sim.perps[2].oracle in accs
        assert env.sim.order_by_uid(1).trigger_price == 132_000_000
        await v.cancel("i1:sl1")
        await v.wait_idle()
        [(name, _, accs)] = env.sim.parse(env.rpc.sent[-1].raw)[1]
        assert name == "cancel_order" and get_spot_market_public_key(env.program_id, 1) in accs
        assert [o.user_order_id for o in env.sim.open_orders()] == [77]
    finally:
        await env.close()


async def test_the_liquidation_price_counts_every_position_and_balance() -> None:
    """Thin collateral (500 USDC, no SOL): the SOL-PERP liquidation price exists and is driftpy's own
    on the same accounts — the BTC and ETH positions' margin counts in it."""
    env = await account_env()
    try:
        env.sim.set_balance(1, 0.0)
        env.sim.set_balance(0, 500.0)
        await env.venue.refresh()
        want = reference_user(env).get_perp_liq_price(0) / 1e6
        assert want > 0
        got = env.venue.chain.liq_price()
        assert got == pytest.approx(want, abs=1e-6)
        env.sim.perps[1].price = 63_000_000_000  # BTC rises against the short: SOL's liq price moves
        env.sim.write_all()
        await env.venue.refresh()
        moved = env.venue.chain.liq_price()
        assert moved == pytest.approx(reference_user(env).get_perp_liq_price(0) / 1e6, abs=1e-6)
        assert moved != pytest.approx(got, abs=1e-3)
    finally:
        await env.close()
