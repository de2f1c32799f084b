"""A load-balanced RPC whose nodes are not at the same slot: account reads answered from a node
behind the one read last, or from before the order's transaction landed, prove nothing — an order
never "vanishes" (a false cancel or fill) because of them, and nothing is sent again."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from core.venue import OrderRequest, OrderStatus, OrderType, OrderUpdate, PostOnly
from tests.drift_faults import landed_places
from tests.drift_harness import DriftEnv, drift_env


class LaggingNode:
    """Wraps ``getMultipleAccounts``: while ``behind``, answers with the first answer it gave for
    the same keys (what a node behind still holds), at ``slot()`` if given, else at its own slot."""

    def __init__(self, env: DriftEnv) -> None:
        self.orig = env.rpc.methods["getMultipleAccounts"]
        self.first: dict[str, Any] = {}
        self.behind = False
        self.slot: Callable[[], int] | None = None
        env.rpc.methods["getMultipleAccounts"] = self

    def __call__(self, params: list[Any]) -> Any:
        key = json.dumps(params, sort_keys=True)
        if self.behind and key in self.first:
            ans = copy.deepcopy(self.first[key])
            if self.slot is not None:
                ans["context"]["slot"] = self.slot()
            return ans
        ans = self.orig(params)
        self.first.setdefault(key, copy.deepcopy(ans))
        return ans


def entry(tag: str) -> OrderRequest:
    return OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1.0, price=149.0,
                        post_only=PostOnly.MUST, client_tag=tag)


def updates(events: list[Any], tag: str) -> list[OrderStatus]:
    return [e.order.status for e in events if isinstance(e, OrderUpdate) and e.order.order_id == tag]


async def test_a_read_from_a_node_behind_is_ignored_the_open_order_stays_open() -> None:
    env = await drift_env(start=False)
    node = LaggingNode(env)
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
        assert landed_places(env) == {1: 1}
    finally:
        await env.close()


async def test_landed_but_the_account_read_is_from_before_it_never_a_false_cancel() -> None:
    env = await drift_env(start=False)
    node = LaggingNode(env)
    v = env.venue
    try:
        await v.start(poll=False)
        await v.refresh()  # the node behind keeps this (empty) account
        env.rpc.advance(20)
        # the node behind answers at a slot newer than the view's but older than the landing
        node.slot = lambda: env.rpc.slot - 10
        node.behind = True
        await v.place(entry("i1:e1"))
        await v.wait_idle()  # landed (its status says so, with its slot)
        t = v._by_tag["i1:e1"]
        assert t.place is not None and t.place.landed and t.place.slot > v.chain.view.slot
        for _ in range(6):
            await v.refresh()
        assert t.status != OrderStatus.CANCELLED, "a read from before the landing proves nothing"
        assert OrderStatus.CANCELLED not in updates(v.events(), "i1:e1")
        node.behind = False
        await v.refresh()
        assert t.status == OrderStatus.OPEN and [o.user_order_id for o in env.sim.open_orders()] == [t.uid]
        assert landed_places(env) == {t.uid: 1}
    finally:
        await env.close()
