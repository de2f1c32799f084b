"""Benchmark the liquidation-map hot path: fixed-offset decode + liquidation-price solve.

Usage: ``python bench/bench_liqmap.py [N]`` (default 100_000 accounts).

Builds 400 distinct User accounts with driftpy's IDL coder (long and short, USDC/SOL/third-asset
collateral, borrows, open orders), then N accounts from them by patching each account's base
amount, quote amounts and USDC balance at the verified offsets (valid bytes, all different).
Times, on the same bytes:

* ``core.liqmap_fast.scan_buffer`` (what the scanner runs): decode + solve for all N accounts in
  one contiguous buffer (the scanner fills it from base64; that copy is timed separately);
* ``core.liqmap.scan``: the scalar reference model, per account;
* driftpy 0.8.89's ``decode_user`` (decode only, no solve) on a sample of 2,000 accounts,
  extrapolated to N (stated as such in the output);
* the anchorpy IDL decoder on 200 accounts, extrapolated.
"""

from __future__ import annotations

import random
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.* helpers

from driftpy.decode.user import decode_user

from core.liqmap import PERP_OFFSET, PERP_SIZE, SPOT_OFFSET, scan
from core.liqmap_fast import scan_buffer
from feeds.drift.markets import decode
from tests.drift_sim import encode
from tests.liqmap_sim import Markets, random_covered_user


def build(n: int, mk: Markets) -> list[tuple[str, bytes]]:
    rng = random.Random(7)
    templates = [encode("User", random_covered_user(mk, rng)) for _ in range(400)]
    out = []
    for i in range(n):
        raw = bytearray(templates[i % len(templates)])
        scale = rng.uniform(0.5, 2.0)
        for off in range(PERP_OFFSET, PERP_OFFSET + 8 * PERP_SIZE, PERP_SIZE):
            base, quote, qbe, qe = struct.unpack_from("<qqqq", raw, off + 8)
            if base:
                struct.pack_into(
                    "<qqqq",
                    raw,
                    off + 8,
                    int(base * scale),
                    int(quote * scale),
                    int(qbe * scale),
                    int(qe * scale),
                )
        bal = struct.unpack_from("<Q", raw, SPOT_OFFSET)[0]
        struct.pack_into("<Q", raw, SPOT_OFFSET, int(bal * rng.uniform(0.7, 1.6)))
        out.append((f"acct{i}", bytes(raw)))
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    mk = Markets(imf=1000, funding_long=5 * 10**9, funding_short=-3 * 10**9)
    params = mk.params()
    t = time.perf_counter()
    accounts = build(n, mk)
    print(f"built {n:,} accounts in {time.perf_counter() - t:.1f} s")
    keys = [k for k, _ in accounts]
    t = time.perf_counter()
    buf = bytearray(n * 4376)
    for i, (_, raw) in enumerate(accounts):
        buf[i * 4376 : (i + 1) * 4376] = raw
    fill = time.perf_counter() - t
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        entries = scan_buffer(keys, buf, params, 0)
        best = min(best, time.perf_counter() - t)
    assert len(entries) == n
    print(
        f"core.liqmap_fast.scan_buffer (decode + solve): {n:,} accounts in {best:.3f} s "
        f"= {best / n * 1e6:.2f} us/account (best of 5); goal < 1 s: {'met' if best < 1 else 'NOT met'}"
    )
    print(f"  (+ filling the contiguous buffer from {n:,} byte strings: {fill:.3f} s)")
    t = time.perf_counter()
    ref, seen = scan(accounts, params, 0)
    scalar = time.perf_counter() - t
    assert seen == n and len(ref) == n
    print(f"core.liqmap.scan (scalar reference): {scalar:.2f} s = {scalar / n * 1e6:.1f} us/account")
    sample = accounts[:2000]
    t = time.perf_counter()
    for _, raw in sample:
        decode_user(raw)
    dt = time.perf_counter() - t
    per = dt / len(sample)
    print(
        f"driftpy decode_user (decode only): {per * 1e6:.1f} us/account on {len(sample):,} accounts; "
        f"extrapolated to {n:,}: {per * n:.1f} s"
    )
    print(f"ratio: driftpy decode_user (extrapolated) / scan_buffer decode+solve = {per * n / best:.0f}x")
    t = time.perf_counter()
    for _, raw in accounts[:200]:
        decode(raw)
    per_a = (time.perf_counter() - t) / 200
    print(
        f"anchorpy IDL decoder: {per_a * 1e3:.2f} ms/account on 200; extrapolated to {n:,}: {per_a * n:.0f} s"
    )


if __name__ == "__main__":
    main()
