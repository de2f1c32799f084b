"""Build a solders ``Instruction`` from an IDL instruction: data from the codec, the account list
(order, writable, signer, fixed addresses) from the IDL, so a new IDL version is a data change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from execution.anchor_idl.codec import CodecError, IdlCodec


def build_instruction(
    codec: IdlCodec,
    program_id: Pubkey,
    name: str,
    args: Mapping[str, Any],
    accounts: Mapping[str, Pubkey],
    remaining: Sequence[AccountMeta] = (),
) -> Instruction:
    """``accounts`` maps the IDL's account names to keys (accounts with a fixed ``address`` in the
    IDL may be left out); an optional account left out is passed as the program id (Anchor's
    convention for ``None``)."""
    spec = codec.instructions.get(name)
    if spec is None:
        raise CodecError(f"instruction {name} is not in the IDL")
    metas: list[AccountMeta] = []
    for acc in _flatten(spec["accounts"]):
        key = accounts.get(acc["name"])
        if key is None and "address" in acc:
            key = Pubkey.from_string(acc["address"])
        if key is None and acc.get("optional"):
            key = program_id
        if key is None:
            raise CodecError(f"{name}: account {acc['name']} not given")
        metas.append(AccountMeta(key, bool(acc.get("signer")), bool(acc.get("writable"))))
    data = codec.encode_instruction(name, dict(args))
    return Instruction(program_id, data, [*metas, *remaining])


def _flatten(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for it in items:
        out.extend(_flatten(it["accounts"]) if "accounts" in it else [it])
    return out


def describe_instruction(codec: IdlCodec, ix: Instruction) -> dict[str, Any]:
    """What a user checks before signing: program, instruction name, accounts (with the IDL's
    names, writable/signer flags), the data as hex and decoded (``args``)."""
    name, args = "?", None
    try:
        name, args = codec.decode_instruction(bytes(ix.data))
        names = [a["name"] for a in _flatten(codec.instructions[name]["accounts"])]
    except CodecError:
        names = []
    accounts = []
    for i, m in enumerate(ix.accounts):
        accounts.append(
            {
                "name": names[i] if i < len(names) else "remaining",
                "pubkey": str(m.pubkey),
                "writable": m.is_writable,
                "signer": m.is_signer,
            }
        )
    return {
        "program_id": str(ix.program_id),
        "instruction": name,
        "accounts": accounts,
        "data_hex": bytes(ix.data).hex(),
        "args": args,
    }
