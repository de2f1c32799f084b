"""The scanner against the local JSON-RPC server: filters, market/oracle reads, progress,
stalls and timeouts survived, persistence (JSON + Parquet)."""

from __future__ import annotations

import random

import pyarrow.parquet as pq
import pytest
from solders.pubkey import Pubkey

from core.liqmap import IDLE_OFFSET, scan
from feeds.drift.scanner import LiqMapScanner, ScanConfig, ScanError
from storage import liqmap_store
from tests.drift_sim import encode, rep, zero
from tests.liqmap_sim import Markets, assert_same_entries, install, random_covered_user
from tests.solana_rpc import LocalSolanaRpc


def _users(mk: Markets, n: int, seed: int = 3) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    return [(str(Pubkey.new_unique()), encode("User", random_covered_user(mk, rng))) for _ in range(n)]


async def _env(n: int = 30) -> tuple[LocalSolanaRpc, Markets, Pubkey, list[tuple[str, bytes]]]:
    rpc = await LocalSolanaRpc().start()
    mk, pid = Markets(), Pubkey.new_unique()
    users = _users(mk, n)
    install(rpc, mk, pid, users)
    return rpc, mk, pid, users


def _cfg(rpc: LocalSolanaRpc, pid: Pubkey, **kw: float) -> ScanConfig:
    base = {"timeout_s": 5.0, "retries": 3, "backoff_base_s": 0.01, "backoff_cap_s": 0.05}
    base.update(kw)
    return ScanConfig(rpc_url=rpc.url, program_id=str(pid), **base)  # type: ignore[arg-type]


async def test_scan_filters_decodes_and_reports_progress(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rpc, mk, pid, users = await _env()
    # an idle user (filtered by the server), a flat user (filtered client-side), a foreign account
    idle = bytearray(encode("User", random_covered_user(mk, random.Random(9))))
    idle[IDLE_OFFSET] = 1
    rpc.set_account(str(Pubkey.new_unique()), str(pid), bytes(idle))
    rpc.set_account(
        str(Pubkey.new_unique()), str(pid), encode("User", rep(zero("User"), authority=Pubkey.new_unique()))
    )
    rpc.set_account(str(Pubkey.new_unique()), str(pid), encode("State", zero("State")))
    seen: list[tuple[str, int, int]] = []
    sc = LiqMapScanner(_cfg(rpc, pid, progress_every=7), progress=lambda *a: seen.append(a))
    try:
        m = await sc.scan_once(now_ms=123)
    finally:
        await sc.close()
        await rpc.close()
    want, _ = scan(users, mk.params(), 123)
    assert_same_entries(m.entries, want)
    assert m.scanned == len(users) + 1 and m.updated_at == 123
    assert m.oracle_price == pytest.approx(mk.oracle_price / 1e6) and m.slot == rpc.slot
    gpa = [
        p
        for p in rpc.method_calls("getProgramAccounts")
        if p[1]["filters"][0]["memcmp"]["offset"] == 0 and len(p[1]["filters"]) == 2
    ]
    assert gpa and gpa[0][1]["encoding"] == "base64" and gpa[0][1]["filters"][1]["memcmp"]["offset"] == 4350
    decode = [d for s, d, _ in seen if s == "decode"]
    assert decode[-1] == m.scanned and decode == sorted(decode)
    assert any(s == "download" and d > 0 for s, d, _ in seen)
    liqmap_store.save(m, tmp_path)
    back = liqmap_store.load(tmp_path)
    assert back == m
    table = pq.read_table(tmp_path / liqmap_store.PARQUET_NAME)
    assert table.num_rows == len(m.entries) and table.column("account").to_pylist() == [
        e.account for e in m.entries
    ]


async def test_scanner_survives_a_stalling_server() -> None:
    rpc, _mk, pid, users = await _env(10)
    rpc.fault("delay", 1.0, method="getProgramAccounts")  # the first (spot markets) call stalls
    rpc.fault("http", 429, method="getProgramAccounts")
    rpc.fault("delay", 1.0, method="getProgramAccounts")
    rpc.fault("error", -32005, "node is behind", method="getMultipleAccounts")
    sc = LiqMapScanner(_cfg(rpc, pid, timeout_s=0.3, retries=4))
    try:
        m = await sc.scan_once(now_ms=1)
    finally:
        await sc.close()
        await rpc.close()
    assert len(m.entries) == len(users)


async def test_scanner_gives_up_after_its_retries() -> None:
    rpc, _mk, pid, _ = await _env(2)
    for _ in range(3):
        rpc.fault("delay", 0.5, method="getMultipleAccounts")
    sc = LiqMapScanner(_cfg(rpc, pid, timeout_s=0.1, retries=2))
    try:
        with pytest.raises(ScanError, match="timed out"):
            await sc.scan_once()
    finally:
        await sc.close()
        await rpc.close()


async def test_malformed_answers_are_scan_errors() -> None:
    rpc, _mk, pid, _ = await _env(2)
    real = rpc.methods["getProgramAccounts"]
    rpc.methods["getProgramAccounts"] = lambda p: [{"pubkey": "x"}]  # no account field
    sc = LiqMapScanner(_cfg(rpc, pid))
    try:
        with pytest.raises(ScanError, match="malformed"):
            await sc.scan_once()
        rpc.methods["getProgramAccounts"] = real
        rpc.set_account(str(Pubkey.new_unique()), str(pid), b"\x00" * 10)  # foreign bytes are skipped
        m = await sc.scan_once()
        assert len(m.entries) == 2
    finally:
        await sc.close()
        await rpc.close()


def test_load_without_a_map_is_none(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert liqmap_store.load(tmp_path) is None
