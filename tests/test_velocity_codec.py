"""The IDL-driven Borsh codec against reference bytes made by the official Anchor TypeScript coder
(@anchor-lang/core, tools/velocity_fixtures/make_fixtures.js) from the same IDL subset: every
instruction the Velocity venue sends and every account it reads, byte for byte both ways."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from execution.anchor_idl.codec import CodecError, IdlCodec, discriminator
from execution.anchor_idl.metadata import canonical_metadata_address, decode_metadata_account
from execution.velocity.program import ACCOUNTS_USED, INSTRUCTIONS_USED, SUBSET_PATH, load_idl
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "velocity"
IDL = load_idl()
CODEC = IdlCodec(IDL)
TYPES = {t["name"]: t for t in IDL["types"]}
# account sizes (discriminator included) of program version 2.165.0
SIZES = {
    "State": 1744,
    "PerpMarket": 1304,
    "SpotMarket": 808,
    "User": 4496,
    "UserStats": 240,
    "PythLazerOracle": 48,
    "PrelaunchOracle": 120,
}


def fixtures(name: str) -> list[dict[str, Any]]:
    data = json.loads((FIXTURES / name).read_text())
    assert data["coder"].startswith("@anchor-lang/core 1.")
    items: list[dict[str, Any]] = data["items"]
    return items


def from_neutral(ty: Any, v: Any) -> Any:
    """Fixture JSON -> the codec's values (see make_fixtures.js for the neutral form)."""
    if isinstance(ty, str):
        if ty == "pubkey":
            return Pubkey.from_string(v)
        if ty == "bytes":
            return bytes.fromhex(v)
        return int(v) if ty[0] in "ui" else v
    if "option" in ty:
        return None if v is None else from_neutral(ty["option"], v)
    if "array" in ty or "vec" in ty:
        elem = ty["array"][0] if "array" in ty else ty["vec"]
        return bytes.fromhex(v) if elem == "u8" else [from_neutral(elem, x) for x in v]
    td = TYPES[ty["defined"]["name"]]
    if td["type"]["kind"] == "enum":
        return v
    return {f["name"]: from_neutral(f["type"], v[f["name"]]) for f in td["type"]["fields"]}


def to_neutral(ty: Any, v: Any) -> Any:
    if isinstance(ty, str):
        if ty == "pubkey":
            return str(v)
        if ty == "bytes":
            return v.hex()
        return str(v) if ty[0] in "ui" else v
    if "option" in ty:
        return None if v is None else to_neutral(ty["option"], v)
    if "array" in ty or "vec" in ty:
        elem = ty["array"][0] if "array" in ty else ty["vec"]
        return v.hex() if elem == "u8" else [to_neutral(elem, x) for x in v]
    td = TYPES[ty["defined"]["name"]]
    if td["type"]["kind"] == "enum":
        return v
    return {f["name"]: to_neutral(f["type"], v[f["name"]]) for f in td["type"]["fields"]}


def test_fixtures_cover_every_instruction_and_account_the_venue_uses() -> None:
    assert {f["instruction"] for f in fixtures("instructions.json")} == set(INSTRUCTIONS_USED)
    assert {f["account"] for f in fixtures("accounts.json")} == set(ACCOUNTS_USED)


@pytest.mark.parametrize("fx", fixtures("accounts.json"), ids=lambda f: f"{f['account']}-{f['sample']}")
def test_account_bytes_equal_the_anchor_ts_coder(fx: dict[str, Any]) -> None:
    raw = bytes.fromhex(fx["data_hex"])
    ty = {"defined": {"name": fx["account"]}}
    assert len(raw) == SIZES[fx["account"]] == CODEC.account_size(fx["account"])
    name, value = CODEC.decode_account(raw)
    assert name == fx["account"]
    assert to_neutral(ty, value) == fx["value"]
    assert CODEC.encode_account(name, from_neutral(ty, fx["value"])) == raw


@pytest.mark.parametrize(
    "fx", fixtures("instructions.json"), ids=lambda f: f"{f['instruction']}-{f['data_hex'][16:28]}"
)
def test_instruction_bytes_equal_the_anchor_ts_coder(fx: dict[str, Any]) -> None:
    spec = CODEC.instructions[fx["instruction"]]
    args = {a["name"]: from_neutral(a["type"], fx["args"][a["name"]]) for a in spec["args"]}
    raw = bytes.fromhex(fx["data_hex"])
    assert CODEC.encode_instruction(fx["instruction"], args) == raw
    name, back = CODEC.decode_instruction(raw)
    assert name == fx["instruction"]
    assert {a["name"]: to_neutral(a["type"], back[a["name"]]) for a in spec["args"]} == fx["args"]


def test_discriminators_are_anchors_and_layouts_have_no_hidden_padding() -> None:
    for ix in IDL["instructions"]:
        assert bytes(ix["discriminator"]) == discriminator("global", ix["name"])
    for acc in IDL["accounts"]:
        assert bytes(acc["discriminator"]) == discriminator("account", acc["name"])
        assert CODEC.implicit_padding(acc["name"]) == []  # Velocity spells every pad out


def test_metadata_account_made_by_the_program_metadata_client_is_read_back() -> None:
    fx = fixtures("metadata.json")[0]
    program = Pubkey.from_string(fx["program"])
    assert str(canonical_metadata_address(program)) == fx["address"]
    acc = decode_metadata_account(bytes.fromhex(fx["data_hex"]))
    assert (acc.program, acc.canonical, acc.seed, acc.compression, acc.format) == (
        program,
        True,
        "idl",
        "zlib",
        "json",
    )
    assert acc.content() == SUBSET_PATH.read_text()


def test_truncated_or_wrong_bytes_are_refused_with_a_codec_error() -> None:
    raw = bytes.fromhex(fixtures("accounts.json")[0]["data_hex"])
    with pytest.raises(CodecError, match="too short"):
        CODEC.decode_account(raw[:-1])
    with pytest.raises(CodecError, match="unknown account discriminator"):
        CODEC.decode_account(b"\0" * 64)
    bad_status = bytearray(CODEC.encode_instruction("cancel_order", {"order_id": 5}))
    bad_status[8] = 2  # option tag neither 0 nor 1
    with pytest.raises(CodecError, match="option tag"):
        CODEC.decode_instruction(bytes(bad_status))
    with pytest.raises(CodecError, match="trailing"):
        CODEC.decode_instruction(CODEC.encode_instruction("cancel_order", {"order_id": None}) + b"\0")
    with pytest.raises(CodecError, match="no variant"):
        CODEC.encode_type({"defined": {"name": "MarketType"}}, "Future")
    with pytest.raises(CodecError, match="integer"):
        CODEC.encode_type("u64", 1.5)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.sampled_from(sorted(INSTRUCTIONS_USED)))
def test_arbitrary_instruction_bytes_raise_only_codec_errors(tail: bytes, name: str) -> None:
    raw = bytes(CODEC.instructions[name]["discriminator"]) + tail
    with contextlib.suppress(CodecError):
        CODEC.decode_instruction(raw)


USER_RAW = next(bytes.fromhex(f["data_hex"]) for f in fixtures("accounts.json") if f["account"] == "User")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(8, 4495), st.integers(0, 255)), min_size=1, max_size=40),
    st.integers(8, 4496),
)
def test_corrupted_user_accounts_decode_or_raise_a_codec_error(
    flips: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(USER_RAW)
    for i, b in flips:
        raw[i] = b
    with contextlib.suppress(CodecError):
        CODEC.decode_account(bytes(raw[:cut]))


def test_extract_script_reproduces_the_subset_from_a_larger_idl(tmp_path: Path) -> None:
    """The committed subset is what tools/velocity_idl/extract_subset.py gives for an IDL that
    holds more (instructions, types, docs) than the venue uses."""
    full = json.loads(SUBSET_PATH.read_text())
    full["instructions"].insert(
        0,
        {
            "name": "add_amm",
            "discriminator": list(discriminator("global", "add_amm")),
            "accounts": [{"name": "admin", "signer": True}],
            "args": [{"name": "x", "type": {"defined": {"name": "Unused"}}}],
        },
    )
    full["types"].append(
        {"name": "Unused", "type": {"kind": "struct", "fields": [{"name": "a", "type": "u8"}]}}
    )
    full["types"][0]["docs"] = ["explained"]
    full["errors"] = [{"code": 6000, "name": "E", "msg": "e"}]
    src = tmp_path / "velocity.json"
    src.write_text(json.dumps(full))
    out = tmp_path / "subset.json"
    script = REPO_ROOT / "tools" / "velocity_idl" / "extract_subset.py"
    subprocess.run(
        [sys.executable, str(script), str(src), "--out", str(out)], check=True, capture_output=True
    )
    assert out.read_text() == SUBSET_PATH.read_text()
    bad = subprocess.run(
        [sys.executable, str(script), str(src), "--expect-sha256", "00" * 32], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "is not the expected" in bad.stderr
