"""Property, on Velocity (tests/test_send_properties.py's on Drift): whatever the RPC does (slow or
dropped answers, HTTP errors after accepting, 429 bursts, statuses null for a while or for good, an
unreadable signature list, account reads from a node behind, a chain that drops the first copy or
every copy), each intended order lands at most once, the venue's state equals the chain's, and
every UNKNOWN order is resolved once the faults stop."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.venue import OrderStatus, VenueError
from tests.test_drift_lagging_rpc import LaggingNode
from tests.test_send_properties import OTHER_FAULTS, SEND_FAULTS, order
from tests.test_velocity_faults import landed
from tests.velocity_harness import FAST, velocity_env


async def scenario(data: st.DataObject) -> None:
    d = data.draw
    cfg = dataclasses.replace(
        FAST,
        max_resigns=d(st.integers(0, 2), label="max_resigns"),
        ack_wait_s=d(st.sampled_from([0.05, 0.2]), label="ack_wait_s"),
    )
    env = await velocity_env(cfg)
    rpc, sim, v = env.rpc, env.sim, env.venue
    try:
        rpc.height_step = d(st.integers(2, 15), label="height_step")
        if d(st.booleans(), label="account reads from a node behind"):
            node = LaggingNode(env)  # type: ignore[arg-type]
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
        copies: list[str] = []

        def chain_policy(tx: Any) -> None:
            if tx.signature not in copies:
                copies.append(tx.signature)
            later_copy = copies.index(tx.signature) > 0
            sim.land = landing == "always" or (landing == "first copy dropped" and later_copy)

        rpc.on_send.insert(0, chain_policy)
        kinds = d(st.lists(st.sampled_from(["e", "sl"]), min_size=1, max_size=3), label="orders")
        placed: list[str] = []
        for i, k in enumerate(kinds):
            try:
                o = await v.place(order(k, i))
                placed.append(o.order_id)
            except VenueError:
                pass  # refused by the node (never forwarded) or not buildable now: nothing was sent
        await asyncio.sleep(d(st.sampled_from([0.0, 0.05, 0.2]), label="faults last"))
        rpc.clear_faults()  # the faults stop (the chain's own behaviour — dropping copies — stays)
        rpc.statuses, rpc.sig_list = "ok", True
        if isinstance(rpc.methods["getMultipleAccounts"], LaggingNode):
            rpc.methods["getMultipleAccounts"].behind = False
        await asyncio.wait_for(v.wait_idle(), 30)
        await v.refresh()
        assert not v.unknown_orders() and not v.sender.pending(), "every UNKNOWN resolved"
        got = landed(env)
        assert all(n <= 1 for n in got.values()), f"one intended order, at most one landing: {got}"
        chain_open = {o["user_order_id"] for o in sim.open_orders()}
        for oid in placed:
            t = v._by_tag[oid]
            on_chain = got[t.uid] == 1
            assert (t.status == OrderStatus.REJECTED) == (not on_chain), (oid, t.status, got)
            assert (t.status == OrderStatus.OPEN) == (t.uid in chain_open), (oid, t.status, chain_open)
    finally:
        await env.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_fault_sequences_on_velocity_one_landing_and_every_unknown_resolved(
    data: st.DataObject,
) -> None:
    asyncio.run(scenario(data))
