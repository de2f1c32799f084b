"""Velocity on a load-balanced RPC whose nodes are not at the same slot (the lagging-node cases of
tests/test_drift_lagging_rpc.py): a read from a node behind the one read last, or from before the
order's transaction landed, proves nothing — no false cancel or fill, nothing sent again."""

from __future__ import annotations

from core.venue import OrderStatus
from tests.test_drift_lagging_rpc import LaggingNode, entry, updates
from tests.test_velocity_faults import landed
from tests.velocity_harness import velocity_env


async def test_a_read_from_a_node_behind_is_ignored_the_open_order_stays_open() -> None:
    env = await velocity_env(start=False)
    node = LaggingNode(env)  # type: ignore[arg-type]
    v = env.venue
    try:
        await v.start(poll=False)
        await v.refresh()  # the node behind keeps this (empty) account
        await v.place(entry("i1:e1"))
        await v.wait_idle()
        env.rpc.advance(5)
        await v.refresh()
        assert v._by_tag["i1:e1"].status == OrderStatus.OPEN
        v.events()
        node.behind = True
        for _ in range(6):
            await v.refresh()
        assert v._by_tag["i1:e1"].status == OrderStatus.OPEN and updates(v.events(), "i1:e1") == []
        assert v.chain.view.stale_reads == 6
        assert [o.request.client_tag for o in await v.open_orders("SOL-PERP")] == ["i1:e1"]
        node.behind = False
        await v.refresh()
        assert v._by_tag["i1:e1"].status == OrderStatus.OPEN and updates(v.events(), "i1:e1") == []
        assert landed(env) == {1: 1}
    finally:
        await env.close()


async def test_landed_but_the_account_read_is_from_before_it_never_a_false_cancel() -> None:
    env = await velocity_env(start=False)
    node = LaggingNode(env)  # type: ignore[arg-type]
    v = env.venue
    try:
        await v.start(poll=False)
        await v.refresh()  # the node behind keeps this (empty) account
        env.rpc.advance(20)
        node.slot = lambda: env.rpc.slot - 10  # newer than the view, older than the landing
        node.behind = True
        await v.place(entry("i1:e1"))
        await v.wait_idle()
        t = v._by_tag["i1:e1"]
        assert t.place is not None and t.place.landed and t.place.slot > v.chain.view.slot
        for _ in range(6):
            await v.refresh()
        assert t.status != OrderStatus.CANCELLED, "a read from before the landing proves nothing"
        assert OrderStatus.CANCELLED not in updates(v.events(), "i1:e1")
        node.behind = False
        await v.refresh()
        assert t.status == OrderStatus.OPEN and [o["user_order_id"] for o in env.sim.open_orders()] == [t.uid]
        assert landed(env) == {t.uid: 1}
    finally:
        await env.close()
