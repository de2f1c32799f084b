"""The Velocity venue on the shared send path (execution/solana_send) against the local RPC when it
misbehaves the way real ones do (tests/solana_rpc.py): slow send, an HTTP error or a dropped
connection after the RPC accepted, statuses unavailable, 429 bursts, dropped transactions. Each
checks one order, one landing: every intended order lands at most once, nothing stays unknown once
the faults stop, and the venue reports what the chain holds. Plus the engine's "no new risk while
an order is UNKNOWN" and the restart that follows a journaled send again."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import Any

import msgspec
import pytest

from core.bus import Bus
from core.engine_types import EngineConfig, EngineEvent
from core.venue import OrderRequest, OrderStatus, OrderType, PostOnly, TriggerCondition, VenueError
from execution.engine import Engine
from execution.solana_send.sender import TxSender
from execution.velocity.venue import VelocityVenue
from tests.drift_faults import EngineEnv
from tests.velocity_harness import FAST, VelocityEnv, velocity_env

PROTECTED = [
    OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=2.0, price=149.0,
                 post_only=PostOnly.MUST, client_tag="m:e1"),
    OrderRequest(market="SOL-PERP", side="sell", type=OrderType.TRIGGER_MARKET, size=2.0, trigger_price=145.0,
                 trigger_condition=TriggerCondition.BELOW, reduce_only=True, client_tag="m:sl1"),
    OrderRequest(market="SOL-PERP", side="sell", type=OrderType.LIMIT, size=2.0, price=155.0,
                 reduce_only=True, client_tag="m:tp1"),
]


def limit(tag: str, price: float = 149.0) -> OrderRequest:
    return OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1.0, price=price,
                        post_only=PostOnly.MUST, client_tag=tag)


def landed(env: VelocityEnv, kinds: tuple[str, ...] = ("place_perp_order", "place_orders")) -> Counter[int]:
    """How many successful landed transactions placed an order with each user order id."""
    raw = {t.signature: t.raw for t in env.rpc.sent}
    out: Counter[int] = Counter()
    for sig, lt in env.rpc.landed.items():
        if lt.err is not None:
            continue
        for name, args, _ in env.sim.parse(raw[sig])[1]:
            if name in kinds:
                ps = args["params"] if isinstance(args["params"], list) else [args["params"]]
                out.update(int(p["user_order_id"]) for p in ps)
    return out


def landed_ix(env: VelocityEnv, name: str) -> int:
    raw = {t.signature: t.raw for t in env.rpc.sent}
    return sum(
        1 for sig, lt in env.rpc.landed.items() if lt.err is None
        for n, _, _ in env.sim.parse(raw[sig])[1] if n == name
    )


async def settle(v: VelocityVenue) -> None:
    await asyncio.wait_for(v.wait_idle(), 30)
    await v.refresh()


FAULTS: dict[str, Any] = {
    "slow send": lambda rpc: rpc.fault("slow", 0.6, method="sendTransaction"),
    "500 after accept": lambda rpc: rpc.fault("accept_then_http", 500, method="sendTransaction"),
    "502 after accept": lambda rpc: rpc.fault("accept_then_http", 502, method="sendTransaction"),
    "dropped connection after accept": lambda rpc: rpc.fault("accept_then_drop", method="sendTransaction"),
    "statuses null for the window": lambda rpc: setattr(rpc, "statuses", "null_recent"),
    "all statuses null": lambda rpc: setattr(rpc, "statuses", "null"),
    "429 bursts": lambda rpc: (rpc.burst(4, "http", 429, method="sendTransaction"),
                               rpc.burst(6, "http", 429, method="getSignatureStatuses")),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_the_protected_entry_transaction_lands_once_under_each_fault(fault: str) -> None:
    """Entry, stop and take-profit in ONE ``place_orders`` (what ``intent --manual`` sends)."""
    env = await velocity_env(dataclasses.replace(FAST, ack_wait_s=0.3))
    v = env.venue
    try:
        FAULTS[fault](env.rpc)
        await v.cancel_and_place([], PROTECTED)
        await settle(v)
        assert landed(env) == {1: 1, 2: 1, 3: 1}
        assert not v.unknown_orders()
        assert {o.order_id: o.status for o in await v.open_orders()} == {
            "m:e1": OrderStatus.OPEN, "m:sl1": OrderStatus.OPEN, "m:tp1": OrderStatus.OPEN}
        assert sorted(o["user_order_id"] for o in env.sim.open_orders()) == [1, 2, 3]
        assert {s.state for s in env.journal.sends.values()} == {"landed"}, "the journal says landed"
    finally:
        await env.close()


async def test_slow_send_is_unknown_with_its_signature_then_lands_once() -> None:
    env = await velocity_env(dataclasses.replace(FAST, ack_wait_s=0.2))
    v = env.venue
    try:
        env.rpc.fault("slow", 0.8, method="sendTransaction")
        env.rpc.statuses, env.rpc.sig_list = "null", False  # and the chain cannot tell yet
        o = await v.place(limit("i1:e1"))
        assert o.status == OrderStatus.UNKNOWN and o.signatures
        assert [u.order_id for u in v.unknown_orders()] == ["i1:e1"]
        with pytest.raises(VenueError, match="not on chain yet"):
            await v.cancel("i1:e1")  # nothing is addressed to an order that may not exist
        ev = [e for e in v.events() if getattr(e, "order", None) is not None]
        assert any("maybe landed" in e.reason and o.signatures[0] in e.reason for e in ev)  # type: ignore[attr-defined]
        env.rpc.statuses, env.rpc.sig_list = "ok", True  # the faults stop
        await settle(v)
        assert landed(env) == {1: 1} and not v.unknown_orders()
        assert v._by_tag["i1:e1"].snapshot().status == OrderStatus.OPEN
    finally:
        await env.close()


async def test_dropped_first_copy_is_resigned_only_after_proof_and_lands_once() -> None:
    env = await velocity_env(dataclasses.replace(FAST, max_resigns=1))
    v = env.venue
    try:
        seen: list[str] = []

        def first_copy_dropped(tx: Any) -> None:
            seen.append(tx.signature)
            env.sim.land = len(set(seen)) > 1

        env.rpc.on_send.insert(0, first_copy_dropped)
        await v.place(limit("i1:e1"))
        await settle(v)
        t = v._by_tag["i1:e1"]
        assert t.place is not None and len(t.place.txs) == 2
        first = t.place.txs[0]
        resigned_at = next(i for i, s in enumerate(seen) if s != first.signature)
        assert seen[:resigned_at] == [first.signature] * resigned_at, "the same bytes until the proof"
        assert landed(env) == {1: 1} and t.status == OrderStatus.OPEN
        assert env.journal.sends[first.signature].state == "not_landed"
    finally:
        await env.close()


async def test_dropped_never_lands_is_rejected_only_after_expiry_and_absence() -> None:
    env = await velocity_env(dataclasses.replace(FAST, max_resigns=1))
    v = env.venue
    try:
        env.sim.land = False
        await v.place(limit("i1:e1"))
        await settle(v)
        t = v._by_tag["i1:e1"]
        assert t.status == OrderStatus.REJECTED and t.place is not None and len(t.place.txs) == 2
        assert env.rpc.block_height > t.place.txs[-1].last_valid_block_height
        assert env.rpc.landed == {}
        assert {s.state for s in env.journal.sends.values()} == {"not_landed"}
        with pytest.raises(VenueError, match="never placed twice"):
            await v.place(limit("i1:e1"))
    finally:
        await env.close()


@pytest.mark.parametrize("fault", ["500 after accept", "dropped connection after accept", "slow send"])
async def test_cancel_modify_and_kill_land_once_under_faults(fault: str) -> None:
    env = await velocity_env(dataclasses.replace(FAST, ack_wait_s=0.3))
    v = env.venue
    try:
        for tag, px in (("i1:e1", 149.0), ("i2:e1", 148.0), ("i3:e1", 147.0)):
            await v.place(limit(tag, px))
        await settle(v)
        FAULTS[fault](env.rpc)
        await v.cancel("i1:e1")
        await settle(v)
        assert v._by_tag["i1:e1"].status == OrderStatus.CANCELLED and landed_ix(env, "cancel_order") == 1
        FAULTS[fault](env.rpc)
        await v.modify("i2:e1", price=146.0)
        await settle(v)
        assert landed_ix(env, "modify_order") == 1
        assert env.sim.order_by_uid(2)["price"] == 146_000_000
        kinds = [s.kind for s in env.journal.sends.values()]
        assert kinds.count("modify") == 1, "modify is signed once, never re-signed"
        FAULTS[fault](env.rpc)
        assert await v.cancel_all() == 2  # the kill's cancel of every order in the market
        await settle(v)
        assert landed_ix(env, "cancel_orders") == 1 and env.sim.open_orders() == []
        assert {v._by_tag[x].status for x in ("i2:e1", "i3:e1")} == {OrderStatus.CANCELLED}
        assert not v.unknown_orders() and landed(env) == {1: 1, 2: 1, 3: 1}
    finally:
        await env.close()


async def test_a_restart_follows_the_journaled_send_again_and_never_places_twice() -> None:
    """The process stopped after the broadcast, before any answer: the journal holds the signed
    transaction; the next start follows the same bytes (never re-signed) and the order lands once."""
    env = await velocity_env(dataclasses.replace(FAST, ack_wait_s=0.2))
    v = env.venue
    try:
        env.sim.land = False  # the first process never sees it land
        req = limit("i1:e1")
        await v.place(req)
        await v.sender.close()  # the process stops: the send stays open in the journal
        [rec] = env.journal.open_sends()
        assert rec.venue == "velocity" and rec.refs == ["i1:e1"]
        env.sim.land = True
        fresh = VelocityVenue(
            v.chain, TxSender(env.client, FAST, journal=env.journal, venue="velocity"), v.signer, v.clock,
            check_program=False,
        )
        fresh.restore(env.bindings)
        journaled = {"i1:e1": msgspec.structs.replace(req, user_order_id=1)}
        subs = fresh.resume(env.journal.open_sends(), journaled)
        assert len(subs) == 1 and fresh.unknown_orders()[0].order_id == "i1:e1"
        await settle(fresh)
        assert landed(env) == {1: 1} and not fresh.unknown_orders()
        assert fresh._by_tag["i1:e1"].status == OrderStatus.OPEN
        assert [t.signature for t in env.rpc.sent] == [rec.signature] * len(env.rpc.sent), "same bytes only"
        await fresh.close()
    finally:
        await env.close()


async def test_a_kill_while_the_entry_is_unknown_waits_for_it_then_cancels_it() -> None:
    """The kill never takes "missing from the open orders" as "gone": an entry whose send is UNKNOWN
    is waited for; once the chain says it landed, the kill cancels it. Nothing is left resting."""
    from tests.drift_faults import ENTRY

    env = await velocity_env(dataclasses.replace(FAST, ack_wait_s=0.2))
    env.sim.deposit(5000)
    await env.venue.refresh()
    bus = Bus()
    events: list[EngineEvent] = []
    fast = {"retry_backoff_s": 0.0, "kill_backoff_s": 0.05, "kill_backoff_max_s": 0.1, "call_timeout_s": 2.0}
    eng = Engine(bus, env.venue, env.venue.clock, msgspec.convert(fast, EngineConfig), events.append,
                 equity=env.venue.equity, equity_from_venue=True)
    ee = EngineEnv(env, eng, bus, events)  # type: ignore[arg-type]
    v = env.venue
    try:
        env.rpc.fault("slow", 0.8, method="sendTransaction")
        env.rpc.statuses, env.rpc.sig_list = "null", False  # the chain cannot tell yet
        ee.intent()
        await ee.until("the entry to be unknown", lambda: bool(v.unknown_orders()))
        kill = asyncio.ensure_future(eng.kill("test: kill while unknown"))
        await asyncio.sleep(0.3)  # the kill runs a few rounds against the unknown entry
        assert not kill.done(), "an unknown entry is never taken as gone"
        env.rpc.statuses, env.rpc.sig_list = "ok", True  # the chain can tell again: it landed
        r = await asyncio.wait_for(kill, 30)
        await settle(v)
        assert r.confirmed and r.unknown_orders == 0, r
        assert landed(env)[v._by_tag[ENTRY].uid] == 1 and landed_ix(env, "cancel_order") == 1
        assert env.sim.open_orders() == [] and v._by_tag[ENTRY].status == OrderStatus.CANCELLED
    finally:
        await ee.close()


async def test_the_engine_takes_no_new_risk_while_a_velocity_order_is_unknown() -> None:
    from tests.drift_faults import ENTRY

    env = await velocity_env(dataclasses.replace(FAST, ack_wait_s=0.3))
    env.sim.deposit(5000)
    await env.venue.refresh()
    bus = Bus()
    events: list[EngineEvent] = []
    fast = {"retry_backoff_s": 0.0, "kill_backoff_s": 0.0, "call_timeout_s": 2.0}
    ecfg = msgspec.convert(fast, EngineConfig)
    eng = Engine(bus, env.venue, env.venue.clock, ecfg, events.append, equity=env.venue.equity,
                 equity_from_venue=True)
    ee = EngineEnv(env, eng, bus, events)  # type: ignore[arg-type]  # the same drive on Velocity
    try:
        env.rpc.fault("slow", 0.8, method="sendTransaction")
        env.rpc.statuses, env.rpc.sig_list = "null", False
        ee.intent()
        await ee.until("the entry to be sent", lambda: ENTRY in env.venue._by_tag)
        assert env.venue._by_tag[ENTRY].snapshot().status == OrderStatus.UNKNOWN
        ee.intent("i2")
        await ee.step()
        rej = [e for e in events if e.kind == "intent_rejected" and e.intent_id == "i2"]
        assert rej and any("UNKNOWN" in r for r in rej[0].data["reasons"])
        env.rpc.statuses, env.rpc.sig_list = "ok", True
        await ee.until("the send to resolve", ee.settled)
        assert landed(env)[env.venue._by_tag[ENTRY].uid] == 1
        assert env.venue._by_tag[ENTRY].snapshot().status == OrderStatus.OPEN
    finally:
        await ee.close()
