"""The liquidation map on Velocity User accounts: the layout bridge to the solver, and a scan
against the local RPC serving a simulated Velocity deployment."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey

from autotrader.velocity_liqmap import VelocityLiqMapScanner
from core.liqmap import perp_slots, spot_slots
from execution.velocity.accounts import user_view
from execution.velocity.liqmap import to_drift_layout
from execution.velocity.program import codec
from feeds.drift.scanner import ScanConfig
from tests.velocity_harness import velocity_env


async def test_velocity_users_are_mapped_with_the_drift_solver() -> None:
    env = await velocity_env(start=False)
    try:
        a, b, c = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
        long_key = env.sim.add_user(a, usdt=1000, base=10, entry=150)
        short_key = env.sim.add_user(b, usdt=500, base=-4, entry=150)
        env.sim.add_user(c, usdt=800, base=2, entry=150, isolated=True)
        raw = env.rpc.accounts[str(long_key)].data
        v = user_view(codec().decode_account_as("User", raw), 0)
        bridged = to_drift_layout(raw)
        [p] = perp_slots(bridged)
        [s] = spot_slots(bridged)
        pos = v.snapshot.positions[1]
        assert (p.market_index, p.base, p.quote, p.quote_entry, p.lp_shares) == (
            1,
            pos.base,
            pos.quote,
            pos.quote_entry,
            0,
        )
        assert (s.market_index, s.scaled_balance, s.borrow) == (0, 1000 * 10**9, False)
        scanner = VelocityLiqMapScanner(
            ScanConfig(rpc_url=env.rpc.url, program_id=str(env.program_id)), "SOL-PERP"
        )
        try:
            m = await scanner.scan_once(now_ms=1)
        finally:
            await scanner.close()
        by_key = {e.account: e for e in m.entries}
        assert scanner.cfg.market_index == 1 and set(by_key) >= {str(long_key), str(short_key)}
        # long 10 @ 150, 1000 USDT, maintenance 5%: FC = 1000 - 0.05*10*150 = 925 -> 150 - 925/9.5
        assert by_key[str(long_key)].est_liq_px == pytest.approx(150 - 925 / 9.5, rel=1e-6)
        # short 4 @ 150, 500 USDT: FC = 500 - 30 = 470 -> 150 + 470/4.2
        assert by_key[str(short_key)].est_liq_px == pytest.approx(150 + 470 / 4.2, rel=1e-6)
        assert not by_key[str(long_key)].approximate
        assert [e.approximate for e in m.entries if e.account not in (str(long_key), str(short_key))] == [
            True
        ]
    finally:
        await env.close()


def test_a_foreign_account_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Velocity User"):
        to_drift_layout(bytes(4376))


def test_the_scanner_follows_the_engine_onto_velocity() -> None:
    """``liqmap.source = "engine"`` with ``engine.venue = "velocity"``: Velocity's program, RPC and
    cluster (the cluster checked by genesis hash before each scan); ``liqmap.source = "drift"``
    still scans Drift."""
    from autotrader.config import load_config
    from autotrader.liqmap_cmd import scan_target

    cfg = load_config(None, environ={}, overrides={
        "engine.venue": "velocity", "venues.velocity.rpc_url": "http://127.0.0.1:8899"})
    target, why = scan_target(cfg)
    assert target is not None and why == ""
    assert (target.program_id, target.rpc_url, target.cluster) == (
        cfg.venues.velocity.program_id, "http://127.0.0.1:8899", "devnet")
    drift = load_config(None, environ={}, overrides={"engine.venue": "velocity", "liqmap.source": "drift"})
    target, _ = scan_target(drift)
    assert target is not None and target.program_id == drift.venues.drift.program_id
