"""The engine path against a local RPC that misbehaves the way real ones do (tests/solana_rpc.py):
each fault of issue 14, each checking the invariant of tests/drift_faults.py — one intended order,
at most one landed, the app's state equals the chain's, nothing unknown once the faults stop."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from core.venue import OrderStatus
from execution.solana_send.sender import SendConfig
from tests.drift_faults import ENTRY, EngineEnv, check_invariant, engine_env, landed_places
from tests.drift_harness import FAST


def entry_status(ee: EngineEnv) -> OrderStatus:
    return ee.env.venue._by_tag[ENTRY].snapshot().status


async def run_entry(ee: EngineEnv) -> None:
    ee.intent()
    await ee.until("the entry to be sent", lambda: ENTRY in ee.env.venue._by_tag)


async def test_slow_send_is_unknown_blocks_new_risk_then_lands_once() -> None:
    """sendTransaction answers after the caller gave up (scaled: 0.8 s against a 0.3 s ack wait)."""
    ee = await engine_env(dataclasses.replace(FAST, ack_wait_s=0.3))
    try:
        rpc = ee.env.rpc
        rpc.fault("slow", 0.8, method="sendTransaction")
        rpc.statuses, rpc.sig_list = "null", False  # and the chain cannot tell yet
        await run_entry(ee)
        assert entry_status(ee) == OrderStatus.UNKNOWN
        unknown = [e for e in ee.events if e.kind == "order_unknown"]
        assert unknown and unknown[0].data["signatures"], "the activity log says UNKNOWN, with the signature"
        ee.intent("i2")  # no new risk while an order of the market is unknown
        await ee.step()
        rej = [e for e in ee.events if e.kind == "intent_rejected" and e.intent_id == "i2"]
        assert rej and any("UNKNOWN" in r and "signature" in r for r in rej[0].data["reasons"])
        assert entry_status(ee) == OrderStatus.UNKNOWN
        rpc.statuses, rpc.sig_list = "ok", True  # the faults stop
        await ee.until("the send to resolve", ee.settled)
        assert entry_status(ee) == OrderStatus.OPEN and len(ee.env.sim.open_orders()) == 1
        assert any(e.kind == "order_resolved" for e in ee.events)
        check_invariant(ee)
    finally:
        await ee.close()


async def test_slow_send_8s_with_production_timings() -> None:
    """The real numbers: sendTransaction answers after 8 s, the gateway's call timeout is 5 s, the
    RPC client's 10 s: the order is unknown after 2 s, never re-sent as a new order, lands once."""
    ee = await engine_env(dataclasses.replace(FAST, ack_wait_s=2.0), call_timeout_s=5.0)
    try:
        ee.env.venue.chain.rpc.timeout = type(ee.env.venue.chain.rpc.timeout)(total=10.0)
        ee.env.rpc.fault("slow", 8.0, method="sendTransaction")
        await run_entry(ee)
        assert any(e.kind == "order_unknown" for e in ee.events), "unknown while the answer is pending"
        assert len(ee.env.rpc.method_calls("sendTransaction")) == 1
        await ee.until("the send to resolve", ee.settled, timeout=30)
        assert [t.signature for t in ee.env.rpc.sent if t.signature] and len(
            {t.signature for t in ee.env.rpc.sent if ee.env.sim.parse(t.raw)[1][0][0] == "place_perp_order"}
        ) == 1
        check_invariant(ee)
    finally:
        await ee.close()


async def test_slow_and_never_landing_is_rejected_only_after_expiry() -> None:
    ee = await engine_env(dataclasses.replace(FAST, ack_wait_s=0.2))
    try:
        ee.env.sim.land = False
        ee.env.rpc.fault("slow", 0.5, method="sendTransaction")
        await run_entry(ee)
        assert entry_status(ee) == OrderStatus.UNKNOWN
        await ee.until("the send to resolve", ee.settled)
        t = ee.env.venue._by_tag[ENTRY]
        assert t.status == OrderStatus.REJECTED and t.place is not None and len(t.place.txs) == 2
        assert ee.env.rpc.block_height > t.place.txs[-1].last_valid_block_height
        assert ee.env.rpc.landed == {}
        check_invariant(ee)
    finally:
        await ee.close()


@pytest.mark.parametrize(
    "fault", [("accept_then_http", 502), ("accept_then_http", 500), ("accept_then_drop",)]
)
async def test_error_after_accept_never_doubles(fault: tuple[object, ...]) -> None:
    ee = await engine_env()
    try:
        ee.env.rpc.fault(*fault, method="sendTransaction")
        await run_entry(ee)
        await ee.until("the send to resolve", ee.settled)
        assert landed_places(ee.env) == {1: 1} and len(ee.env.sim.open_orders()) == 1
        check_invariant(ee)
    finally:
        await ee.close()


async def test_statuses_null_for_the_whole_window_a_market_order_fills_once() -> None:
    """Statuses stay null while the blockhash is valid (history works): never re-signed."""
    ee = await engine_env()
    v = ee.env.venue
    try:
        ee.env.rpc.statuses = "null_recent"
        ee.env.sim.auto_fill = True
        from core.venue import OrderRequest, OrderType

        o = await v.place(
            OrderRequest(market="SOL-PERP", side="buy", type=OrderType.MARKET, size=1.0, client_tag="m1:mc")
        )
        assert o.status in (OrderStatus.OPEN, OrderStatus.UNKNOWN)
        await v.wait_idle()
        assert landed_places(ee.env) == {1: 1}
        assert v._by_tag["m1:mc"].status == OrderStatus.FILLED
        assert (await v.position("SOL-PERP")).size == pytest.approx(1.0), "filled once, not twice"
    finally:
        await ee.close()


async def test_statuses_null_while_the_entry_fills_the_stop_matches_the_position() -> None:
    """Every status lookup is null (history too); the entry lands and fills at once. The account's
    signature list proves it landed; the fill is seen on the account; the stop covers 2, not 4."""
    ee = await engine_env()
    try:
        ee.env.rpc.statuses = "null"
        ee.env.sim.auto_fill = True
        await run_entry(ee)
        await ee.until(
            "the entry to fill and the stop to rest",
            lambda: (
                ee.settled()
                and any(type(o.order_type).__name__ == "TriggerMarket" for o in ee.env.sim.open_orders())
            ),
        )
        ee.env.sim.auto_fill = False
        assert ee.env.venue._by_tag[ENTRY].status == OrderStatus.FILLED
        assert ee.engine.lifecycles["i1"].position == pytest.approx(2.0)
        check_invariant(ee)
    finally:
        await ee.close()


async def test_dropped_never_lands_blockhash_expires_entry_rejected() -> None:
    ee = await engine_env(dataclasses.replace(FAST, max_resigns=1))
    try:
        ee.env.sim.land = False
        await run_entry(ee)

        def over() -> bool:  # every attempt resolved (the lifecycle tries a second entry, then gives up)
            lc = ee.engine.lifecycles.get("i1")
            return ee.settled() and lc is not None and lc.terminal

        await ee.until("every attempt to resolve and the intent to end", over)
        t = ee.env.venue._by_tag[ENTRY]
        assert t.status == OrderStatus.REJECTED and "not_landed" in str(
            [e.data for e in ee.events if e.kind in ("order_rejected", "intent_done")]
        )
        tags = tuple(tag for tag in ee.env.venue._by_tag if tag.startswith("i1:e"))
        assert ee.env.rpc.landed == {} and len(tags) == 2
        check_invariant(ee, tags)
    finally:
        await ee.close()


async def test_dropped_first_copy_resigned_after_proof_lands_once() -> None:
    ee = await engine_env(dataclasses.replace(FAST, max_resigns=1))
    try:
        seen: list[str] = []

        def first_copy_dropped(tx) -> None:  # type: ignore[no-untyped-def]
            seen.append(tx.signature)
            ee.env.sim.land = len(set(seen)) > 1

        ee.env.rpc.on_send.insert(0, first_copy_dropped)
        await run_entry(ee)
        await ee.until("the send to resolve", ee.settled)
        assert len(set(seen)) == 2 and landed_places(ee.env) == {1: 1}
        assert entry_status(ee) == OrderStatus.OPEN
        check_invariant(ee)
    finally:
        await ee.close()


async def test_429_bursts_everywhere() -> None:
    ee = await engine_env()
    try:
        rpc = ee.env.rpc
        rpc.burst(4, "http", 429, method="sendTransaction")
        rpc.burst(6, "http", 429, method="getSignatureStatuses")
        rpc.burst(6, "http", 429, method="getBlockHeight")
        rpc.burst(3, "http", 429, method="getMultipleAccounts")
        await run_entry(ee)
        await ee.until("the send to resolve", ee.settled)
        assert landed_places(ee.env) == {1: 1} and entry_status(ee) == OrderStatus.OPEN
        check_invariant(ee)
    finally:
        await ee.close()


async def test_send_refused_by_the_node_is_not_sent_and_the_next_attempt_is_a_new_order() -> None:
    """A JSON-RPC error answered by the node proves the transaction was never forwarded: the call
    fails at once (retried as new transactions), nothing of it lands; the lifecycle's next attempt
    is a new order that lands once."""
    ee = await engine_env(SendConfig(**{**FAST.__dict__}))
    try:
        ee.env.rpc.burst(
            3, "error", -32002, "Transaction simulation failed: Blockhash not found", method="sendTransaction"
        )
        ee.intent()
        await ee.until("the second attempt to rest", lambda: "i1:e2" in ee.env.venue._by_tag and ee.settled())
        assert next(e.data["reason"] for e in ee.events if e.kind == "order_rejected").startswith(
            "sendTransaction refused"
        )
        assert len(ee.env.rpc.sent) == 1, "the three refused sends never reached the chain"
        assert ENTRY not in ee.env.venue._by_tag, "a refused order is not tracked: it never went out"
        assert len(ee.env.rpc.landed) == 1
        check_invariant(ee, ("i1:e2",))
    finally:
        await ee.close()


MANUAL_FAULTS = {
    "slow send": lambda rpc: rpc.fault("slow", 0.6, method="sendTransaction"),
    "5xx after accept": lambda rpc: rpc.fault("accept_then_http", 502, method="sendTransaction"),
    "statuses null for the window": lambda rpc: setattr(rpc, "statuses", "null_recent"),
    "all statuses null": lambda rpc: setattr(rpc, "statuses", "null"),
    "429 bursts": lambda rpc: (rpc.burst(4, "http", 429, method="sendTransaction"),
                               rpc.burst(6, "http", 429, method="getSignatureStatuses")),
}


@pytest.mark.parametrize("fault", sorted(MANUAL_FAULTS))
async def test_the_manual_path_transaction_under_each_fault(fault: str) -> None:
    """What ``intent --manual`` sends — entry, stop and take-profit in ONE transaction — under each
    fault: it lands once, and the venue reports exactly what the chain holds."""
    from core.venue import OrderRequest, OrderType, PostOnly, TriggerCondition

    ee = await engine_env(dataclasses.replace(FAST, ack_wait_s=0.3))
    v = ee.env.venue
    try:
        MANUAL_FAULTS[fault](ee.env.rpc)
        reqs = [
            OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=2.0, price=149.0,
                         post_only=PostOnly.MUST, client_tag="m:e1"),
            OrderRequest(market="SOL-PERP", side="sell", type=OrderType.TRIGGER_MARKET, size=2.0,
                         trigger_price=145.0, trigger_condition=TriggerCondition.BELOW, reduce_only=True,
                         client_tag="m:sl1"),
            OrderRequest(market="SOL-PERP", side="sell", type=OrderType.LIMIT, size=2.0, price=155.0,
                         reduce_only=True, client_tag="m:tp1"),
        ]
        await v.cancel_and_place([], reqs)
        await asyncio.wait_for(v.wait_idle(), 20)
        await v.refresh()
        landed = landed_places(ee.env)
        assert landed == {1: 1, 2: 1, 3: 1}, landed
        assert not v.unknown_orders()
        assert {o.order_id: o.status for o in await v.open_orders()} == {
            "m:e1": OrderStatus.OPEN, "m:sl1": OrderStatus.OPEN, "m:tp1": OrderStatus.OPEN}
        assert sorted(o.user_order_id for o in ee.env.sim.open_orders()) == [1, 2, 3]
    finally:
        await ee.close()
