"""Property: whatever the RPC does (slow or dropped answers, HTTP errors after accepting, 429 bursts,
statuses null for a while or for good, an unreadable signature list, account reads from a node
behind, a chain that drops the first
copy or every copy, fills at once), each intended order lands at most once, the venue's state
equals the chain's, and every UNKNOWN order is resolved once the faults stop."""

from __future__ import annotations

import asyncio
import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.venue import OrderRequest, OrderStatus, OrderType, PostOnly, TriggerCondition, VenueError
from tests.drift_faults import landed_places
from tests.drift_harness import FAST, drift_env
from tests.test_drift_lagging_rpc import LaggingNode

SEND_FAULTS = st.sampled_from(
    [
        ("slow", 0.08),
        ("slow", 0.3),
        ("delay", 0.08),
        ("accept_then_http", 502),
        ("accept_then_http", 500),
        ("accept_then_drop",),
        ("drop",),
        ("http", 429),
        ("http", 503),
        ("error", -32005, "Node is behind by 42 slots"),
    ]
)
OTHER_FAULTS = st.tuples(
    st.sampled_from(
        [
            "getSignatureStatuses",
            "getBlockHeight",
            "getMultipleAccounts",
            "getLatestBlockhash",
            "getSignaturesForAddress",
        ]
    ),
    st.sampled_from([("http", 429), ("http", 502), ("drop",), ("delay", 0.05)]),
)


def order(kind: str, i: int) -> OrderRequest:
    tag = f"p{i}:{kind}"
    if kind == "e":
        return OrderRequest(
            market="SOL-PERP",
            side="buy",
            type=OrderType.LIMIT,
            size=1.0,
            price=149.0,
            post_only=PostOnly.MUST,
            client_tag=tag,
        )
    if kind == "sl":
        return OrderRequest(
            market="SOL-PERP",
            side="sell",
            type=OrderType.TRIGGER_MARKET,
            size=1.0,
            trigger_price=140.0,
            trigger_condition=TriggerCondition.BELOW,
            reduce_only=True,
            client_tag=tag,
        )
    return OrderRequest(market="SOL-PERP", side="buy", type=OrderType.MARKET, size=0.5, client_tag=tag)


async def scenario(data: st.DataObject) -> None:
    d = data.draw
    cfg = dataclasses.replace(
        FAST,
        max_resigns=d(st.integers(0, 2), label="max_resigns"),
        ack_wait_s=d(st.sampled_from([0.05, 0.2]), label="ack_wait_s"),
    )
    env = await drift_env(cfg)
    rpc, sim, v = env.rpc, env.sim, env.venue
    try:
        rpc.height_step = d(st.integers(2, 15), label="height_step")
        if d(st.booleans(), label="account reads from a node behind"):
            node = LaggingNode(env)
            await v.refresh()  # what the node behind keeps: the accounts at this slot
            node.behind = True
            rpc.advance(1)  # the chain moves on: anything sent from now lands in a later slot
        for f in d(st.lists(SEND_FAULTS, max_size=4), label="send faults"):
            rpc.fault(*f, method="sendTransaction")
        for method, f in d(st.lists(OTHER_FAULTS, max_size=6), label="other faults"):
            rpc.fault(*f, method=method)
        rpc.statuses = d(st.sampled_from(["ok", "ok", "null_recent", "null"]), label="statuses")
        rpc.sig_list = d(st.booleans(), label="signature list readable")
        landing = d(st.sampled_from(["always", "never", "first copy dropped"]), label="landing")
        sim.auto_fill = d(st.booleans(), label="entries fill at once")
        copies: list[str] = []

        def chain_policy(tx) -> None:  # type: ignore[no-untyped-def]
            if tx.signature not in copies:
                copies.append(tx.signature)
            sim.land = landing == "always" or (
                landing == "first copy dropped" and copies.index(tx.signature) > 0
            )

        rpc.on_send.insert(0, chain_policy)
        kinds = d(st.lists(st.sampled_from(["e", "sl", "mkt"]), min_size=1, max_size=3), label="orders")
        placed: list[str] = []
        for i, k in enumerate(kinds):
            try:
                o = await v.place(order(k, i))
                placed.append(o.order_id)
            except VenueError:
                pass  # refused by the node (never forwarded) or not buildable now: nothing was sent
        await asyncio.sleep(d(st.sampled_from([0.0, 0.05, 0.2]), label="faults last"))
        # the faults stop (the chain's own behaviour — dropping copies — stays)
        rpc.clear_faults()
        rpc.statuses, rpc.sig_list = "ok", True
        if isinstance(rpc.methods["getMultipleAccounts"], LaggingNode):
            rpc.methods["getMultipleAccounts"].behind = False
        await asyncio.wait_for(v.wait_idle(), 30)
        await v.refresh()
        assert not v.unknown_orders() and not v.sender.pending(), "every UNKNOWN resolved"
        landed = landed_places(env)
        assert all(n <= 1 for n in landed.values()), f"one intended order, at most one landing: {landed}"
        chain_open = {o.user_order_id for o in sim.open_orders()}
        for oid in placed:
            t = v._by_tag[oid]
            on_chain = landed[t.uid] == 1
            assert (t.status == OrderStatus.REJECTED) == (not on_chain), (oid, t.status, landed)
            if t.status in (OrderStatus.OPEN, OrderStatus.TRIGGERED):
                assert t.uid in chain_open, f"{oid} reported open but not on the account"
            if t.uid in chain_open:
                assert t.status in (OrderStatus.OPEN, OrderStatus.TRIGGERED), (oid, t.status)
        pos = await v.position("SOL-PERP")
        chain_pos = sum(p.base_asset_amount for p in sim.user.perp_positions if p.market_index == 0) / 1e9
        assert pos.size == chain_pos
        filled = sum((t.filled if t.request.side == "buy" else -t.filled) for t in v._orders.values())
        assert abs(filled - chain_pos) < 1e-9, f"fills {filled} vs the chain's position {chain_pos}"
    finally:
        await env.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_fault_sequences_one_landing_and_every_unknown_resolved(data: st.DataObject) -> None:
    asyncio.run(scenario(data))
