"""DriftVenue against the local Solana RPC with real-format Drift accounts: captured transactions
are decoded and checked (instruction, accounts, signer, parameters in venue precision)."""

from __future__ import annotations

import struct

import pytest
from driftpy.decode.user import decode_user
from solders.compute_budget import ID as COMPUTE_BUDGET
from solders.pubkey import Pubkey

from core.venue import (
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PostOnly,
    TriggerCondition,
    VenueError,
)
from core.venue import VenueState as VS
from execution.drift.delegation import NO_DELEGATE, delegate_status, revoke_delegate, set_delegate
from execution.drift.venue import DriftVenue
from execution.signers.base import KeypairSigner
from execution.solana_send.sender import TxSender
from tests.drift_harness import FAST, drift_env
from tests.drift_sim import encode

MUST = PostOnly.MUST


def limit(
    tag: str,
    side: str = "buy",
    size: float = 1.2345,
    price: float = 100.00017,
    post_only: PostOnly = MUST,
    reduce_only: bool = False,
) -> OrderRequest:
    return OrderRequest(
        market="SOL-PERP",
        side=side,
        type=OrderType.LIMIT,
        size=size,
        price=price,  # type: ignore[arg-type]
        post_only=post_only,
        reduce_only=reduce_only,
        client_tag=tag,
    )


def stop(tag: str, trigger: float = 98.99995, size: float = 1.0) -> OrderRequest:
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


def cu_price(env, raw: bytes) -> int:  # type: ignore[no-untyped-def]
    tx, _ = env.sim.parse(raw)
    keys = tx.message.account_keys
    for ix in tx.message.instructions:
        if keys[ix.program_id_index] == COMPUTE_BUDGET and bytes(ix.data)[0] == 3:
            return int(struct.unpack("<Q", bytes(ix.data)[1:9])[0])
    raise AssertionError("no compute-unit price")


async def test_place_post_only_limit_as_delegate_in_venue_precision() -> None:
    env = await drift_env()
    try:
        o = await env.venue.place(limit("i1:e1"))
        assert o.order_id == "i1:e1" and o.request.user_order_id == 1
        assert o.request.size == pytest.approx(1.234) and o.request.price == pytest.approx(100.0001)
        tx, ixs = env.sim.parse(env.rpc.sent[0].raw)
        assert tx.message.account_keys[0] == env.delegate.pubkey()  # fee payer and only signer
        assert tx.message.header.num_required_signatures == 1
        assert tx.verify_with_results() == [True]
        [(name, data, accs)] = ixs
        assert name == "place_perp_order"
        assert accs[:3] == [env.sim.state_pk, env.sim.user_pk, env.delegate.pubkey()]
        assert {env.sim.perp_pk, env.sim.spot_pk, env.sim.oracle_pk} <= set(accs[3:])
        p = data.params
        assert type(p.post_only).__name__ == "MustPostOnly" and type(p.order_type).__name__ == "Limit"
        assert type(p.direction).__name__ == "Long" and not p.reduce_only
        assert p.base_asset_amount == 1_234_000_000  # 1.2345 rounded down to the 0.001 step
        assert p.price == 100_000_100  # 100.00017 rounded down to the 0.0001 tick (buy)
        assert p.user_order_id == 1 and p.market_index == 0
        assert cu_price(env, env.rpc.sent[0].raw) == 3000  # p75 of recent fees (5000) capped at 3000
        assert env.bindings[0].client_tag == "i1:e1" and env.bindings[0].user_order_id == 1
        await env.venue.wait_idle()
        evs = env.venue.events()
        assert [e.reason for e in evs if isinstance(e, OrderUpdate)] == ["accepted"]
        assert [x.order_id for x in await env.venue.open_orders()] == ["i1:e1"]
        # the same client tag again: the same order, nothing sent
        again = await env.venue.place(limit("i1:e1"))
        assert again.order_id == "i1:e1" and len(env.rpc.sent) == 1
    finally:
        await env.close()


@pytest.mark.parametrize(
    ("mode", "variant"), [(PostOnly.TRY, "TryPostOnly"), (PostOnly.SLIDE, "Slide"), (PostOnly.NONE, "None")]
)
async def test_post_only_modes_and_sell_rounding(mode: PostOnly, variant: str) -> None:
    env = await drift_env()
    try:
        await env.venue.place(limit("i1:e1", side="sell", price=100.00011, post_only=mode))
        p = env.sim.parse(env.rpc.sent[0].raw)[1][0][1].params
        assert type(p.post_only).__name__ == variant
        assert type(p.direction).__name__ == "Short" and p.price == 100_000_200  # sell rounds up
    finally:
        await env.close()


async def test_stop_and_take_profit_triggers_reduce_only() -> None:
    env = await drift_env()
    try:
        await env.venue.place(stop("i1:sl1"))
        tp = OrderRequest(
            market="SOL-PERP",
            side="sell",
            type=OrderType.TRIGGER_LIMIT,
            size=0.5,
            price=103.0,
            trigger_price=102.5,
            trigger_condition=TriggerCondition.ABOVE,
            reduce_only=True,
            client_tag="i1:tp1",
        )
        await env.venue.place(tp)
        sl = env.sim.parse(env.rpc.sent[0].raw)[1][0][1].params
        assert type(sl.order_type).__name__ == "TriggerMarket" and sl.reduce_only
        assert type(sl.trigger_condition).__name__ == "Below" and sl.trigger_price == 99_000_000
        assert type(sl.post_only).__name__ == "None" and sl.base_asset_amount == 1_000_000_000
        t = env.sim.parse(env.rpc.sent[1].raw)[1][0][1].params
        assert type(t.order_type).__name__ == "TriggerLimit" and t.reduce_only
        assert type(t.trigger_condition).__name__ == "Above"
        assert (t.trigger_price, t.price, t.user_order_id) == (102_500_000, 103_000_000, 2)
        with pytest.raises(VenueError, match="below the market minimum"):
            await env.venue.place(stop("i1:sl9", size=0.005))
    finally:
        await env.close()


async def test_cancel_modify_cancel_all_and_cancel_and_place() -> None:
    env = await drift_env()
    v = env.venue
    try:
        await v.place(stop("i1:sl1"))
        await v.place(limit("i1:tp1", side="sell", price=105.0, reduce_only=True))
        await v.wait_idle()
        v.events()
        sl_chain = env.sim.order_by_uid(1).order_id
        m = await v.modify("i1:sl1", trigger_price=99.5)
        assert m.order_id == "i1:sl1" and m.request.trigger_price == pytest.approx(99.5)
        name, data, accs = env.sim.parse(env.rpc.sent[-1].raw)[1][0]
        assert name == "modify_order" and data.order_id == sl_chain
        assert data.modify_order_params.trigger_price == 99_500_000 and data.modify_order_params.price is None
        assert accs[2] == env.delegate.pubkey()
        await v.wait_idle()
        assert (
            env.sim.order_by_uid(1).trigger_price == 99_500_000
            and env.sim.order_by_uid(1).order_id != sl_chain
        )
        ev = [e for e in v.events() if isinstance(e, OrderUpdate)]
        assert ev and ev[-1].order.order_id == "i1:sl1" and ev[-1].order.status == OrderStatus.OPEN

        # cancel-and-place: cancel the TP and place two in ONE transaction
        n = len(env.rpc.sent)
        news = await v.cancel_and_place(
            ["i1:tp1"],
            [
                limit("i1:tp2", "sell", 1.0, 104.0, reduce_only=True),
                limit("i1:tp3", "sell", 1.0, 106.0, reduce_only=True),
            ],
        )
        assert [o.order_id for o in news] == ["i1:tp2", "i1:tp3"] and len(env.rpc.sent) == n + 1
        ixs = env.sim.parse(env.rpc.sent[-1].raw)[1]
        assert [x[0] for x in ixs] == ["cancel_order", "place_orders"]
        assert [p.price for p in ixs[1][1].params] == [104_000_000, 106_000_000]
        await v.wait_idle()
        assert sorted(o.user_order_id for o in env.sim.open_orders()) == [1, 3, 4]
        evs = [e for e in v.events() if isinstance(e, OrderUpdate)]
        assert ("i1:tp1", OrderStatus.CANCELLED) in [(e.order.order_id, e.order.status) for e in evs]

        tp2_chain = env.sim.order_by_uid(3).order_id
        await v.cancel("i1:tp2")
        name, data, _ = env.sim.parse(env.rpc.sent[-1].raw)[1][0]
        assert name == "cancel_order" and data.order_id == tp2_chain
        await v.wait_idle()
        assert sorted(o.user_order_id for o in env.sim.open_orders()) == [1, 4]
        assert await v.cancel_all("SOL-PERP") == 2
        name, data, _ = env.sim.parse(env.rpc.sent[-1].raw)[1][0]
        assert (
            name == "cancel_orders" and data.market_index == 0 and type(data.market_type).__name__ == "Perp"
        )
        await v.wait_idle()
        assert env.sim.open_orders() == [] and await v.open_orders() == []
    finally:
        await env.close()


async def test_fills_from_user_account_partial_then_complete() -> None:
    env = await drift_env()
    v = env.venue
    try:
        o = await v.place(limit("i1:e1", size=2.0, price=100.0))
        await v.wait_idle()
        v.events()
        env.sim.fill(o.request.user_order_id, size=500_000_000, price=99_990_000)
        await v.refresh()
        fills = [e.fill for e in v.events() if hasattr(e, "fill")]
        assert [(f.size, f.price, f.maker) for f in fills] == [(0.5, pytest.approx(99.99), True)]
        env.sim.fill(o.request.user_order_id)
        await v.refresh()
        evs = v.events()
        assert next(getattr(e, "fill", None) and e.fill.size for e in evs) == pytest.approx(1.5)
        assert evs[-1].order.status == OrderStatus.FILLED and evs[-1].order.filled == pytest.approx(2.0)
        pos = await v.position("SOL-PERP")
        assert pos.size == pytest.approx(2.0) and pos.avg_price == pytest.approx(99.9975, abs=1e-3)
    finally:
        await env.close()


async def test_pause_semantics_as_the_program_has_them() -> None:
    env = await drift_env()
    v = env.venue
    try:
        await v.place(stop("i0:sl1"))
        await v.wait_idle()
        v.events()
        n = len(env.rpc.sent)
        env.sim.set_status(exchange=0x08)  # FillPaused: entries refused; reduce-only and cancels go out
        await v.refresh()
        st = await v.status()
        assert st.state == VS.REDUCE_ONLY and "fills paused" in st.reason and "cancels" in st.reason
        with pytest.raises(VenueError, match="reduce-only orders only, order refused: exchange fills paused"):
            await v.place(limit("i1:e1"))
        assert len(env.rpc.sent) == n
        await v.place(stop("i1:sl1"))  # a reduce-only stop is allowed
        await v.cancel("i0:sl1")  # and a cancel
        await v.wait_idle()
        assert [o.user_order_id for o in env.sim.open_orders()] == [2]
        env.sim.set_status(exchange=0x04)  # AmmPaused: the same
        await v.refresh()
        assert (await v.status()).state == VS.REDUCE_ONLY
        env.sim.set_status(ops=0x04 | 0x01 | 0x80)  # market fills paused + funding + SettleRevPool
        await v.refresh()
        st = await v.status()
        assert st.state == VS.REDUCE_ONLY and "perp market 0 fills paused" in st.reason
        assert "UpdateFunding" in st.reason and "SettleRevPool" in st.reason
        env.sim.set_status(exchange=0xFF)  # fully paused: everything refused, even cancels
        await v.refresh()
        st = await v.status()
        assert st.state == VS.PAUSED and "even cancels cannot be sent" in st.reason
        with pytest.raises(VenueError, match="paused"):
            await v.place(stop("i2:sl1"))
        with pytest.raises(VenueError, match="fully paused, cancel refused"):
            await v.cancel("i1:sl1")
        env.sim.set_status(market=6)
        await v.refresh()
        assert (await v.status()).state == VS.REDUCE_ONLY
        with pytest.raises(VenueError, match="reduce-only"):
            await v.place(limit("i2:e1"))
        env.sim.set_status()
        await v.refresh()
        assert (await v.status()).state == VS.ACTIVE
        assert [e.state for e in v.events() if hasattr(e, "state")][-1] == VS.ACTIVE
    finally:
        await env.close()


async def test_refusal_leaves_nothing_behind_and_429_is_unknown_then_lands_once() -> None:
    env = await drift_env()
    v = env.venue
    try:
        env.rpc.fault("error", -32003, "Transaction signature verification failure", method="sendTransaction")
        with pytest.raises(VenueError, match="sendTransaction refused") as ei:
            await v.place(limit("i1:e1"))
        assert not ei.value.retryable and await v.open_orders() == []
        # HTTP 429 after the request left: maybe forwarded -> unknown, the same bytes again, one landing
        env.rpc.burst(3, "http", 429, method="sendTransaction")
        o = await v.place(limit("i1:e1"))
        assert o.status == OrderStatus.UNKNOWN and o.signatures
        assert [x.status for x in await v.open_orders()] == [OrderStatus.UNKNOWN]
        await v.wait_idle()
        assert len(env.sim.open_orders()) == 1 and len(env.rpc.landed) == 1
        assert [x.status for x in await v.open_orders()] == [OrderStatus.OPEN]
        env.rpc.fault("http", 429, method="getMultipleAccounts")
        with pytest.raises(Exception, match="429"):
            await v.refresh()
    finally:
        await env.close()


async def test_never_landing_is_unknown_then_rejected_after_expiry_without_duplicate() -> None:
    env = await drift_env()
    v = env.venue
    try:
        env.sim.land = False
        v.sender.cfg = type(FAST)(**{**FAST.__dict__, "max_resigns": 0})
        o = await v.place(limit("i1:e1"))
        assert o.status == OrderStatus.OPEN  # sent; not yet confirmed
        await v.wait_idle()
        sigs = [t.signature for t in env.rpc.sent]
        assert len(sigs) >= 2 and len(set(sigs)) == 1  # rebroadcast of the same bytes only
        evs = [e for e in v.events() if isinstance(e, OrderUpdate)]
        assert [e.order.status for e in evs] == [OrderStatus.REJECTED]  # expired before it turned unknown
        why = evs[0].reason
        assert sigs[0] in why and "not_landed" in why and "blockhash expired" in why
        with pytest.raises(VenueError, match="never placed twice"):
            await v.place(limit("i1:e1"))
        assert len(set(t.signature for t in env.rpc.sent)) == 1 and env.rpc.landed == {}
    finally:
        await env.close()


async def test_blockhash_expiry_resigns_once_and_lands_once() -> None:
    env = await drift_env()
    v = env.venue
    try:
        seen: list[str] = []

        def lands_when_resigned(tx) -> None:  # type: ignore[no-untyped-def]
            seen.append(tx.signature)
            env.sim.land = len(set(seen)) > 1  # the first copy never lands; the re-signed one does

        env.rpc.on_send.insert(0, lands_when_resigned)
        await v.place(limit("i1:e1"))
        await v.wait_idle()
        sigs = [t.signature for t in env.rpc.sent]
        assert len(set(sigs)) == 2  # re-signed exactly once, after expiry and proof
        b1 = env.sim.parse(env.rpc.sent[0].raw)[0].message.recent_blockhash
        b2 = env.sim.parse(env.rpc.sent[-1].raw)[0].message.recent_blockhash
        assert b1 != b2
        assert len(env.sim.open_orders()) == 1 and len(env.rpc.landed) == 1
        statuses = [e.order.status for e in v.events() if isinstance(e, OrderUpdate)]
        assert statuses[-1] == OrderStatus.OPEN and OrderStatus.REJECTED not in statuses
    finally:
        await env.close()


async def test_restart_rebinds_client_tags_by_user_order_id() -> None:
    env = await drift_env()
    try:
        await env.venue.place(stop("i1:sl1"))
        await env.venue.wait_idle()
        fresh = DriftVenue(
            env.venue.chain, TxSender(env.client, FAST), KeypairSigner(env.delegate), env.venue.clock
        )
        fresh.restore(env.bindings)
        await fresh.start(poll=False)
        [o] = await fresh.open_orders()
        assert (o.order_id, o.request.client_tag, o.request.user_order_id) == ("i1:sl1", "i1:sl1", 1)
        assert o.request.type == OrderType.TRIGGER_MARKET and o.request.trigger_price == pytest.approx(99.0)
        o2 = await fresh.place(stop("i2:sl1"))
        assert o2.request.user_order_id == 2  # never reuses a live user order id
        await fresh.close()
    finally:
        await env.close()


async def test_delegate_set_and_revoke_signed_by_owner() -> None:
    env = await drift_env()
    try:
        chain, sender = env.venue.chain, TxSender(env.client, FAST)
        new = KeypairSigner(env.delegate).pubkey()
        st = await delegate_status(chain)
        assert st.delegate == str(env.delegate.pubkey()) and st.authority == str(env.owner.pubkey())
        out = await revoke_delegate(chain, sender, KeypairSigner(env.owner, "owner"))
        assert out.landed
        name, data, accs = env.sim.parse(env.rpc.sent[-1].raw)[1][0]
        tx = env.sim.parse(env.rpc.sent[-1].raw)[0]
        assert name == "update_user_delegate" and data.delegate == NO_DELEGATE and data.sub_account_id == 0
        assert (
            accs == [env.sim.user_pk, env.owner.pubkey()] and tx.message.account_keys[0] == env.owner.pubkey()
        )
        assert not (await delegate_status(chain)).has_delegate
        out = await set_delegate(chain, sender, KeypairSigner(env.owner), new)
        assert out.landed and (await delegate_status(chain)).delegate == str(new)
        with pytest.raises(Exception, match="only the owner"):
            await set_delegate(chain, sender, KeypairSigner(env.delegate), Pubkey.new_unique())
    finally:
        await env.close()


def test_decode_user_misreads_perp_position_bytes_88_91_our_decoder_does_not() -> None:
    from execution.drift.chain import drift_idl  # noqa: F401
    from tests.drift_sim import CODER, rep, zero

    u = zero("User")
    pos = list(u.perp_positions)
    pos[0] = rep(pos[0], base_asset_amount=3_000_000_000, market_index=0, max_margin_ratio=500, open_orders=1)
    raw = encode("User", rep(u, perp_positions=pos))
    theirs = decode_user(raw).perp_positions[0]
    assert theirs.remainder_base_asset_amount == 500 << 16  # padding + max_margin_ratio read as an i32
    ours = CODER.accounts.decode(raw).perp_positions[0]
    assert ours.max_margin_ratio == 500 and ours.base_asset_amount == 3_000_000_000


async def test_a_fill_is_credited_only_to_an_order_proven_landed() -> None:
    """Two entries in flight; the first copy of the first never lands, the second lands and fills at
    once (never open on the account). The fill belongs to the second, not to the first in line
    (found by tests/test_send_properties.py)."""
    env = await drift_env(type(FAST)(**{**FAST.__dict__, "max_resigns": 0}))
    v = env.venue
    try:
        copies: list[str] = []

        def first_dropped(tx) -> None:  # type: ignore[no-untyped-def]
            if tx.signature not in copies:
                copies.append(tx.signature)
            env.sim.land = copies.index(tx.signature) > 0

        env.rpc.on_send.insert(0, first_dropped)
        env.sim.auto_fill = True
        await v.place(limit("a:e1", size=1.0, price=150.0))
        await v.place(limit("b:e1", size=1.0, price=150.0))
        await v.wait_idle()
        await v.refresh()
        assert v._by_tag["a:e1"].status == OrderStatus.REJECTED and v._by_tag["a:e1"].filled == 0
        b = v._by_tag["b:e1"]
        assert b.status == OrderStatus.FILLED and b.filled == pytest.approx(1.0)
        assert [f.client_tag for f in await v.fills()] == ["b:e1"]
    finally:
        await env.close()
