"""VelocityVenue against the local Solana RPC serving real-format Velocity accounts: the sent
transactions are decoded with the IDL codec and checked (instruction, accounts, signer, values in
venue precision); fills, triggers and cancels are read back from the User account."""

from __future__ import annotations

import copy

import pytest
from solders.pubkey import Pubkey

from core.venue import (
    FillEvent,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PostOnly,
    TriggerCondition,
    VenueError,
)
from core.venue import VenueState as VS
from execution.velocity.program import load_idl, perp_market_pda, pyth_lazer_pda, spot_market_pda, state_pda
from tests.velocity_harness import velocity_env
from tests.velocity_sim import ORACLE_PRICE, SOL_FEED

MUST = PostOnly.MUST


def limit(
    tag: str, side: str = "buy", size: float = 1.2345, price: float = 150.00017, reduce_only: bool = False
) -> OrderRequest:
    return OrderRequest(
        market="SOL-PERP",
        side=side,
        type=OrderType.LIMIT,
        size=size,
        price=price,  # type: ignore[arg-type]
        post_only=MUST if not reduce_only else PostOnly.NONE,
        reduce_only=reduce_only,
        client_tag=tag,
    )


def stop(tag: str, trigger: float = 148.99995, size: float = 1.0) -> OrderRequest:
    return OrderRequest(
        market="SOL-PERP",
        side="sell",
        type=OrderType.TRIGGER_MARKET,
        size=size,
        trigger_price=trigger,
        trigger_condition=TriggerCondition.BELOW,
        reduce_only=True,
        client_tag=tag,
    )


def sent_ixs(env, i: int = -1):  # type: ignore[no-untyped-def]
    _, parsed = env.sim.parse(env.rpc.sent[i].raw)
    return parsed


async def test_place_post_only_limit_as_delegate_on_the_market_found_by_name() -> None:
    env = await velocity_env()
    try:
        assert env.venue.chain.market_index == 1  # SOL-PERP sits at index 1 in the sim: read by name
        o = await env.venue.place(limit("i1:e1"))
        assert o.order_id == "i1:e1" and o.request.user_order_id == 1
        assert o.request.size == pytest.approx(1.234) and o.request.price == pytest.approx(150.0001)
        [(name, args, accounts)] = sent_ixs(env)
        p = args["params"]
        assert name == "place_perp_order"
        assert (p["order_type"], p["direction"], p["post_only"], p["market_index"]) == (
            "Limit",
            "Long",
            "MustPostOnly",
            1,
        )
        assert (p["base_asset_amount"], p["price"], p["user_order_id"]) == (1_234_000_000, 150_000_100, 1)
        pid = env.program_id
        assert accounts[:3] == [state_pda(pid), env.sim.user_pk, env.delegate.pubkey()]
        # remaining accounts: the oracle, the quote spot market, the perp market
        assert accounts[3:] == [
            pyth_lazer_pda(pid, SOL_FEED),
            spot_market_pda(pid, 0),
            perp_market_pda(pid, 1),
        ]
        await env.venue.wait_idle()
        await env.venue.refresh()
        [o2] = await env.venue.open_orders()
        assert o2.status == OrderStatus.OPEN and env.sim.order_by_uid(1)["price"] == 150_000_100
        assert any(isinstance(e, OrderUpdate) and e.reason == "accepted" for e in env.venue.events())
    finally:
        await env.close()


async def test_fill_trigger_and_position_are_reconciled_from_the_user_account() -> None:
    env = await velocity_env()
    try:
        env.sim.deposit(1000)
        await env.venue.place(limit("i1:e1", size=2.0, price=150.0))
        await env.venue.place(stop("i1:sl1", size=2.0))
        await env.venue.wait_idle()
        await env.venue.refresh()
        env.venue.events()
        env.sim.fill(1, size=500_000_000)
        await env.venue.refresh()
        env.sim.fill(1)
        env.sim.trigger(2)
        await env.venue.refresh()
        evs = env.venue.events()
        fills = [e.fill for e in evs if isinstance(e, FillEvent)]
        assert [f.size for f in fills] == [pytest.approx(0.5), pytest.approx(1.5)]
        assert all(f.price == pytest.approx(150.0) and f.maker for f in fills)
        states = {e.order.order_id: e.order.status for e in evs if isinstance(e, OrderUpdate)}
        assert states == {"i1:e1": OrderStatus.FILLED, "i1:sl1": OrderStatus.TRIGGERED}
        pos = await env.venue.position("SOL-PERP")
        assert pos.size == pytest.approx(2.0) and pos.avg_price == pytest.approx(150.0)
        assert env.venue.equity() == pytest.approx(1000.0)  # oracle 150 = entry: no PnL
        env.sim.oracle_price = 151_000_000
        env.sim.write_oracle()
        await env.venue.refresh()
        assert env.venue.equity() == pytest.approx(1002.0)
    finally:
        await env.close()


async def test_cancel_modify_and_cancel_all_send_the_right_instructions() -> None:
    env = await velocity_env()
    try:
        await env.venue.place(limit("i1:e1"))
        await env.venue.place(stop("i1:sl1"))
        await env.venue.wait_idle()
        await env.venue.refresh()
        chain_id = env.sim.order_by_uid(1)["order_id"]
        await env.venue.modify("i1:e1", price=150.5)
        [(name, args, _)] = sent_ixs(env)
        assert name == "modify_order" and args["order_id"] == chain_id
        assert args["modify_order_params"]["price"] == 150_500_000
        assert args["modify_order_params"]["base_asset_amount"] is None
        await env.venue.wait_idle()
        await env.venue.refresh()
        assert (
            env.sim.order_by_uid(1)["price"] == 150_500_000
            and env.sim.order_by_uid(1)["order_id"] != chain_id
        )
        [o] = [o for o in await env.venue.open_orders() if o.order_id == "i1:e1"]
        assert o.request.price == pytest.approx(150.5)
        stop_id = env.sim.order_by_uid(2)["order_id"]
        await env.venue.cancel("i1:sl1")
        [(name, args, _)] = sent_ixs(env)
        assert name == "cancel_order" and args["order_id"] == stop_id
        await env.venue.wait_idle()
        await env.venue.refresh()
        assert [o["user_order_id"] for o in env.sim.open_orders()] == [1]
        n = await env.venue.cancel_all("SOL-PERP")  # the kill switch's cancel-all
        [(name, args, _)] = sent_ixs(env)
        assert (
            n == 1 and name == "cancel_orders" and (args["market_type"], args["market_index"]) == ("Perp", 1)
        )
        await env.venue.wait_idle()
        await env.venue.refresh()
        assert env.sim.open_orders() == [] and await env.venue.open_orders() == []
    finally:
        await env.close()


async def test_cancel_and_place_is_one_transaction() -> None:
    env = await velocity_env()
    try:
        await env.venue.place(limit("i1:e1"))
        await env.venue.wait_idle()
        await env.venue.refresh()
        old_id = env.sim.order_by_uid(1)["order_id"]
        orders = await env.venue.cancel_and_place(["i1:e1"], [limit("i1:e2", price=149.9), stop("i1:sl1")])
        assert [o.order_id for o in orders] == ["i1:e2", "i1:sl1"]
        parsed = sent_ixs(env)
        assert [p[0] for p in parsed] == ["cancel_orders_by_ids", "place_orders"]
        assert parsed[0][1]["order_ids"] == [old_id] and len(parsed[1][1]["params"]) == 2
        await env.venue.wait_idle()
        await env.venue.refresh()
        assert sorted(o["user_order_id"] for o in env.sim.open_orders()) == [2, 3]
    finally:
        await env.close()


async def test_paused_and_reduce_only_markets() -> None:
    env = await velocity_env()
    try:
        env.sim.set_status(market="ReduceOnly")
        await env.venue.refresh()
        st = await env.venue.status()
        assert st.state == VS.REDUCE_ONLY and "reduce-only" in st.reason
        with pytest.raises(VenueError, match="reduce-only"):
            await env.venue.place(limit("i1:e1"))
        await env.venue.place(stop("i1:sl1"))  # reduce-only exits are still accepted
        env.sim.set_status(exchange=0x08)  # FillPaused: as the program has it, the stop still goes out
        await env.venue.refresh()
        st = await env.venue.status()
        assert st.state == VS.REDUCE_ONLY and "fills paused" in st.reason
        with pytest.raises(VenueError, match="reduce-only"):
            await env.venue.place(limit("i1:e2"))
        await env.venue.place(stop("i1:sl2"))
        env.sim.set_status(ops=0x04)  # PerpOperation::Fill on the market
        await env.venue.refresh()
        st = await env.venue.status()
        assert st.state == VS.REDUCE_ONLY and "perp market 1 (SOL-PERP) fills paused" in st.reason
        env.sim.set_status(market="Delisted")
        await env.venue.refresh()
        st = await env.venue.status()
        assert st.state == VS.PAUSED and "status Delisted" in st.reason
        with pytest.raises(VenueError, match="paused"):
            await env.venue.place(stop("i1:sl3"))
        env.sim.set_status(exchange=0xFF)
        await env.venue.refresh()
        with pytest.raises(VenueError, match="fully paused"):
            await env.venue.cancel_all()
        vs = env.venue.velocity_status()
        assert vs is not None and vs.to_json()["exchange_status_hex"] == "0xFF"
    finally:
        await env.close()


async def test_a_program_whose_idl_differs_is_refused_with_the_difference_named() -> None:
    idl = copy.deepcopy(load_idl())
    op = next(t for t in idl["types"] if t["name"] == "OrderParams")
    op["type"]["fields"][4]["type"] = "u32"  # base_asset_amount u64 -> u32 in a new program version
    idl["metadata"]["version"] = "2.166.0"
    env = await velocity_env(idl=idl)
    try:
        check = env.venue.chain.check
        assert check.verdict == "differs" and not check.trade_allowed
        assert "OrderParams" in check.detail and "base_asset_amount" in check.detail
        assert "2.166.0" in check.detail
        st = await env.venue.status()
        assert st.state == VS.PAUSED and "program check: differs" in st.reason
        n_sent = len(env.rpc.sent)
        with pytest.raises(VenueError, match="program check"):
            await env.venue.place(limit("i1:e1"))
        assert len(env.rpc.sent) == n_sent  # refused before a byte was signed
        # status reads keep working (State/PerpMarket/User layouts still match); cancels whose
        # own instruction still matches can be signed (the kill switch keeps working)
        assert check.readable >= {"State", "PerpMarket", "User"}
        assert check.instruction_ok("cancel_orders") and not check.instruction_ok("place_perp_order")
        assert await env.venue.open_orders() == []
    finally:
        await env.close()


async def test_an_account_layout_change_names_the_field_and_blocks_reading_it() -> None:
    idl = copy.deepcopy(load_idl())
    user = next(t for t in idl["types"] if t["name"] == "Order")
    user["type"]["fields"].insert(10, {"name": "clob_ref", "type": "u64"})
    env = await velocity_env(idl=idl, start=False)
    try:
        with pytest.raises(Exception, match="User layout differs"):
            await env.venue.start(poll=False)
        check = env.venue.chain.check
        assert "clob_ref" in check.detail and "User" not in check.readable
        assert {"State", "PerpMarket"} <= check.readable
        assert not check.instruction_ok("cancel_orders")  # every write touches the User: none signed
    finally:
        await env.close()


async def test_a_program_with_no_published_idl_is_unverified_and_refused() -> None:
    env = await velocity_env(start=False)
    try:
        env.sim.publish_idl(None)
        await env.venue.start(poll=False)
        check = env.venue.chain.check
        assert check.verdict == "unverified" and "no IDL published" in check.detail
        assert (await env.venue.status()).state == VS.PAUSED
        with pytest.raises(VenueError, match="program check"):
            await env.venue.cancel_all()
    finally:
        await env.close()


async def test_a_send_that_never_lands_is_reported_rejected_after_the_last_window() -> None:
    env = await velocity_env()
    try:
        env.sim.land = False
        env.rpc.confirm = "never"
        env.rpc.blockhash_valid_slots = 0  # blockhashes expire at once: failure can be proven
        await env.venue.place(limit("i1:e1"))
        await env.venue.wait_idle()
        evs = [e for e in env.venue.events() if isinstance(e, OrderUpdate)]
        assert evs and evs[-1].order.status == OrderStatus.REJECTED
        with pytest.raises(VenueError, match="never placed twice"):
            await env.venue.place(limit("i1:e1"))
    finally:
        await env.close()


async def test_restart_binds_open_orders_back_to_their_client_tags() -> None:
    env = await velocity_env()
    try:
        await env.venue.place(limit("i1:e1"))
        await env.venue.wait_idle()
        assert [(b.client_tag, b.user_order_id) for b in env.bindings] == [("i1:e1", 1)]
        from execution.velocity.venue import VelocityVenue

        v = env.venue
        fresh = VelocityVenue(v.chain, v.sender, v.signer, v.clock, check_program=False)
        fresh.chain.check = env.venue.chain.check
        fresh.restore(env.bindings)
        await fresh.refresh()
        [o] = await fresh.open_orders()
        assert o.order_id == "i1:e1" and o.request.client_tag == "i1:e1"
        assert Pubkey.from_string(str(env.sim.user["delegate"])) == env.delegate.pubkey()
        assert env.venue.chain.view.oracle_price == ORACLE_PRICE
    finally:
        await env.close()


async def test_flatten_sends_a_reduce_only_market_order() -> None:
    env = await velocity_env()
    try:
        await env.venue.place(limit("i1:e1", size=2.0, price=150.0))
        await env.venue.wait_idle()
        await env.venue.refresh()
        env.sim.fill(1)
        await env.venue.refresh()
        pos = await env.venue.position("SOL-PERP")
        req = OrderRequest(
            market="SOL-PERP",
            side="sell",
            type=OrderType.MARKET,
            size=pos.size,
            reduce_only=True,
            client_tag="i1:flat1",
        )
        await env.venue.place(req)
        [(name, args, _)] = sent_ixs(env)
        p = args["params"]
        assert name == "place_perp_order"
        assert (p["order_type"], p["direction"], p["reduce_only"], p["price"], p["base_asset_amount"]) == (
            "Market",
            "Short",
            True,
            0,
            2_000_000_000,
        )
    finally:
        await env.close()


async def test_a_tripped_equity_floor_breaker_makes_the_venue_reduce_only() -> None:
    env = await velocity_env()
    try:
        env.sim.breaker = True
        env.sim.write_all()
        await env.venue.refresh()
        st = await env.venue.status()
        assert st.state == VS.REDUCE_ONLY and "equity-floor breaker" in st.reason
        with pytest.raises(VenueError, match="reduce-only"):
            await env.venue.place(limit("i1:e1"))
    finally:
        await env.close()


def test_the_ui_top_bar_names_the_velocity_venue_and_cluster() -> None:
    from autotrader.config import validate
    from autotrader.ui_bridge import ui_info

    info = ui_info(
        validate({"engine": {"venue": "velocity"}, "venues": {"velocity": {"use_delegate": False}}}), ""
    )
    assert (info.venue, info.cluster, info.delegate) == ("velocity", "devnet", False)


def test_the_top_bar_says_whether_a_paused_venue_still_takes_cancels() -> None:
    """Velocity is PAUSED by a failed program check or a pausing market status while its cancels
    still go out (the kill works); only 0xFF stops cancels too. The trading status carries
    ``cancels_allowed`` from the decoded venue status and the top bar says which."""
    from tui.app import venue_badge

    paused = {"name": "velocity", "state": "paused", "reason": "program check: differs: ..."}
    assert venue_badge({"venue": {**paused, "cancels_allowed": True}}) == (
        "VENUE PAUSED: no new orders (cancels still go out)"
    )
    assert venue_badge({"venue": {**paused, "cancels_allowed": False}}) == (
        "VENUE PAUSED: not even cancels can be sent"
    )
    assert venue_badge({"venue": paused}) == "VENUE PAUSED: not even cancels can be sent"  # not known
