"""Anchor IDL helpers: the Program Metadata account reader's refusals, the instruction probe's
verdicts, first-difference naming."""

from __future__ import annotations

import zlib

import pytest
from solders.pubkey import Pubkey

from execution.anchor_idl.fingerprint import first_difference
from execution.anchor_idl.metadata import (
    HEADER,
    MetadataError,
    decode_metadata_account,
    encode_metadata_account,
)
from execution.anchor_idl.probe import classify

PROGRAM = Pubkey.new_unique()


def test_metadata_round_trip_and_refusals() -> None:
    raw = encode_metadata_account(PROGRAM, '{"a": 1}')
    acc = decode_metadata_account(raw)
    assert acc.content() == '{"a": 1}' and acc.canonical and acc.authority is None
    with pytest.raises(MetadataError, match="too short"):
        decode_metadata_account(raw[:50])
    with pytest.raises(MetadataError, match="not a metadata account"):
        decode_metadata_account(b"\x01" + raw[1:])
    with pytest.raises(MetadataError, match="runs past"):
        decode_metadata_account(raw[:-3])
    url = bytearray(raw)
    url[HEADER.size - 10] = 1  # data source: url
    with pytest.raises(MetadataError, match="points elsewhere"):
        decode_metadata_account(bytes(url)).content()
    bomb = zlib.compress(b" " * (20 * 1024 * 1024))
    header = HEADER.pack(2, bytes(PROGRAM), bytes(32), 1, 1, b"idl".ljust(16, b"\0"), 1, 2, 1, 0, len(bomb))
    with pytest.raises(MetadataError, match="larger than"):
        decode_metadata_account(header + bomb).content()
    broken = HEADER.pack(2, bytes(PROGRAM), bytes(32), 1, 1, b"idl".ljust(16, b"\0"), 1, 2, 1, 0, 4) + b"xxxx"
    with pytest.raises(MetadataError, match="cannot unpack"):
        decode_metadata_account(broken).content()


def test_probe_verdicts() -> None:
    assert classify({"InstructionError": [0, {"Custom": 101}]}, []).dispatched is False
    assert (
        classify({"InstructionError": [0, {"Custom": 102}]}, []).dispatched is True
    )  # args did not deserialize
    assert classify({"InstructionError": [0, "MissingRequiredSignature"]}, []).dispatched is True
    assert classify("ProgramAccountNotFound", []).dispatched is False
    assert classify(None, []).dispatched is True
    assert classify("BlockhashNotFound", []).dispatched is None


def test_first_difference_names_the_path() -> None:
    a = {"fields": [{"name": "x", "type": "u64"}, {"name": "y", "type": "u8"}]}
    assert first_difference(a, a) is None
    b = {"fields": [{"name": "x", "type": "u32"}, {"name": "y", "type": "u8"}]}
    assert first_difference(a, b) == '.fields[x].type: expected "u64", got "u32"'
    c = {"fields": [{"name": "x", "type": "u64"}]}
    assert first_difference(a, c) == ".fields: 1 entries instead of 2 ('y' missing on chain)"
