"""What the venue knows about the Velocity program: its id, the IDL it was built for, PDAs.

The IDL is ``idl/velocity-2.165.0.subset.json``: the instructions and accounts the venue uses
(and the types they reach) from ``packages/sdk/src/idl/velocity.json`` of velocity-exchange/
velocity-v1 at commit 0077e03b40a03217c254e045f78eaaf7ee4c14b7 (version 2.165.0), extracted by
``tools/velocity_idl/extract_subset.py``. Seeds (``programs/velocity``, SDK ``addresses/pda.ts``):
``velocity_state``, ``velocity_signer``; ``user``, ``user_stats``, ``perp_market``,
``spot_market`` as on Drift; Pyth Lazer oracles ``["pyth_lazer", feed id u32 LE]``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from solders.pubkey import Pubkey

from execution.anchor_idl.codec import IdlCodec

PROGRAM_ID = Pubkey.from_string("vELoC1audYbSYVRXn1vPaV8Axoa9oU6BYmNGZZBDZ1P")
IDL_VERSION = "2.165.0"
IDL_SOURCE = (
    "velocity-exchange/velocity-v1",
    "0077e03b40a03217c254e045f78eaaf7ee4c14b7",
    "packages/sdk/src/idl/velocity.json",
)
SUBSET_PATH = Path(__file__).with_name("idl") / f"velocity-{IDL_VERSION}.subset.json"
SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")

#: what the venue signs: orders, cancels, modify, delegation
INSTRUCTIONS_USED = (
    "place_perp_order",
    "place_orders",
    "cancel_order",
    "cancel_order_by_user_id",
    "cancel_orders",
    "cancel_orders_by_ids",
    "modify_order",
    "modify_order_by_user_id",
    "update_user_delegate",
)
#: what the venue reads
ACCOUNTS_USED = (
    "State",
    "PerpMarket",
    "SpotMarket",
    "User",
    "UserStats",
    "PythLazerOracle",
    "PrelaunchOracle",
)
#: accounts the venue's status reads need (the rest are for trading and the scanner)
STATUS_ACCOUNTS = ("State", "PerpMarket")


@cache
def load_idl() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SUBSET_PATH.read_text())
    return data


@cache
def codec() -> IdlCodec:
    return IdlCodec(load_idl())


def _u16(n: int) -> bytes:
    return int(n).to_bytes(2, "little")


def pda(program_id: Pubkey, *seeds: bytes) -> Pubkey:
    return Pubkey.find_program_address(list(seeds), program_id)[0]


def state_pda(program_id: Pubkey) -> Pubkey:
    return pda(program_id, b"velocity_state")


def signer_pda(program_id: Pubkey) -> Pubkey:
    return pda(program_id, b"velocity_signer")


def user_pda(program_id: Pubkey, authority: Pubkey, sub_account: int = 0) -> Pubkey:
    return pda(program_id, b"user", bytes(authority), _u16(sub_account))


def user_stats_pda(program_id: Pubkey, authority: Pubkey) -> Pubkey:
    return pda(program_id, b"user_stats", bytes(authority))


def perp_market_pda(program_id: Pubkey, market_index: int) -> Pubkey:
    return pda(program_id, b"perp_market", _u16(market_index))


def spot_market_pda(program_id: Pubkey, market_index: int) -> Pubkey:
    return pda(program_id, b"spot_market", _u16(market_index))


def pyth_lazer_pda(program_id: Pubkey, feed_id: int) -> Pubkey:
    return pda(program_id, b"pyth_lazer", int(feed_id).to_bytes(4, "little"))


def prelaunch_oracle_pda(program_id: Pubkey, market_index: int) -> Pubkey:
    return pda(program_id, b"prelaunch_oracle", _u16(market_index))
