"""Benchmark the IDL-driven Borsh codec on the accounts the Velocity venue and scanner read.

Usage: ``python bench/bench_velocity_codec.py [N]`` (default 2000 accounts per measurement).

Times, in the same run (the machine is noisy: compare the ratios, not the absolute figures):

* our codec decoding Velocity User accounts (4496 bytes, the scanner's and the venue's hot path),
  PerpMarket and State accounts (the venue's poll);
* the reference: driftpy's anchorpy coder decoding Drift User accounts (4376 bytes, nearly the same
  layout: 8 spot, 8 perp, 32 orders), which the Drift venue and the old scanner use;
* the bridge of a Velocity User to the liq-map solver's layout (:func:`to_drift_layout`).

Accounts are the fixtures made by the official Anchor TS coder (tests/fixtures/velocity), so the
bytes are non-trivial. Prints accounts/s and µs per account.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(label: str, fn: Callable[[], object], n: int, reference: float | None = None) -> float:
    fn()  # warm caches (compiled layouts)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t0)
    per = best / n
    ratio = f"  ({reference / per:5.1f}x the reference)" if reference else ""
    print(f"{label:<52} {1 / per:>10,.0f}/s  {per * 1e6:8.1f} µs{ratio}")
    return per


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    from execution.velocity.liqmap import to_drift_layout
    from execution.velocity.program import codec

    fixtures = json.loads((ROOT / "tests" / "fixtures" / "velocity" / "accounts.json").read_text())["items"]
    raw = {f["account"]: bytes.fromhex(f["data_hex"]) for f in fixtures if f["sample"] == 1}
    c = codec()

    from tests.drift_sim import encode, zero

    drift_user = encode("User", zero("User"))
    from tests.drift_sim import CODER

    print(f"{n} decodes per line, best of 3")
    ref = timed(
        "reference: anchorpy (driftpy) Drift User 4376 B", lambda: CODER.accounts.decode(drift_user), n
    )
    timed("codec: Velocity User 4496 B", lambda: c.decode_account_as("User", raw["User"]), n, ref)
    timed(
        "codec: Velocity PerpMarket 1304 B",
        lambda: c.decode_account_as("PerpMarket", raw["PerpMarket"]),
        n,
        ref,
    )
    timed("codec: Velocity State 1744 B", lambda: c.decode_account_as("State", raw["State"]), n, ref)
    timed("bridge: Velocity User -> liq-map layout", lambda: to_drift_layout(raw["User"]), n, ref)
    timed(
        "codec: encode place_perp_order",
        lambda: c.encode_instruction(
            "place_perp_order",
            {
                "params": {
                    "order_type": "Limit",
                    "market_type": "Perp",
                    "direction": "Long",
                    "user_order_id": 1,
                    "base_asset_amount": 10**9,
                    "price": 150 * 10**6,
                    "market_index": 0,
                    "reduce_only": False,
                    "post_only": "MustPostOnly",
                    "bit_flags": 0,
                    "max_ts": None,
                    "trigger_price": None,
                    "trigger_condition": "Above",
                    "oracle_price_offset": None,
                    "auction_duration": None,
                    "auction_start_price": None,
                    "auction_end_price": None,
                    "builder_idx": None,
                    "builder_fee_tenth_bps": None,
                }
            },
        ),
        n,
    )


if __name__ == "__main__":
    main()
