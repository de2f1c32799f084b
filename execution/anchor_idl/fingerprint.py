"""Fingerprints of the IDL items a client uses, and the first difference between two IDLs.

An item's canonical form is what decides its bytes: an instruction's discriminator, accounts
(order, writable, signer, fixed addresses, PDA seeds) and argument types; an account's
discriminator and layout. Every defined type is expanded in place (a change deep inside a nested
struct changes the item's form); ``docs`` are dropped. Two IDLs that agree on an item's canonical
form encode and decode it identically, whatever else changed (a new IDL version that leaves the
used items alone is accepted: a new IDL is a data change).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_TYPEDEF_KEYS = ("serialization", "repr", "generics")


class FingerprintError(Exception):
    """An item the client uses is missing from an IDL, or the IDL is malformed."""


def strip_docs(node: Any) -> Any:
    """``node`` without its ``docs`` entries (they are not part of the layout)."""
    if isinstance(node, dict):
        return {k: strip_docs(v) for k, v in node.items() if k != "docs"}
    if isinstance(node, list):
        return [strip_docs(v) for v in node]
    return node


def _expand(node: Any, types: dict[str, Any], stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_expand(v, types, stack) for v in node]
    if not isinstance(node, dict):
        return node
    defined = node.get("defined")
    if isinstance(defined, dict) and "name" in defined:
        name = defined["name"]
        if name in stack:
            return {"defined": name, "recursive": True}
        td = types.get(name)
        if td is None:
            raise FingerprintError(f"type {name} is not defined")
        body = {k: td[k] for k in _TYPEDEF_KEYS if k in td}
        body["type"] = _expand(td["type"], types, (*stack, name))
        out: dict[str, Any] = {"defined": name, "def": body}
        if defined.get("generics"):
            out["generics"] = _expand(defined["generics"], types, stack)
        return out
    return {k: _expand(v, types, stack) for k, v in node.items()}


def _types(idl: dict[str, Any]) -> dict[str, Any]:
    return {t["name"]: strip_docs(t) for t in idl.get("types", [])}


def canonical_instruction(idl: dict[str, Any], name: str) -> dict[str, Any]:
    ix = next((i for i in idl.get("instructions", []) if i.get("name") == name), None)
    if ix is None:
        raise FingerprintError(f"instruction {name} is not in the IDL")
    ix = strip_docs(ix)
    types = _types(idl)
    return {
        "name": name,
        "discriminator": ix.get("discriminator"),
        "accounts": ix.get("accounts", []),
        "args": [{"name": a["name"], "type": _expand(a["type"], types, ())} for a in ix.get("args", [])],
    }


def canonical_account(idl: dict[str, Any], name: str) -> dict[str, Any]:
    acc = next((a for a in idl.get("accounts", []) if a.get("name") == name), None)
    if acc is None:
        raise FingerprintError(f"account {name} is not in the IDL")
    return {
        "name": name,
        "discriminator": acc.get("discriminator"),
        "layout": _expand({"defined": {"name": name}}, _types(idl), ()),
    }


def fingerprint(canonical: dict[str, Any]) -> str:
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def first_difference(expected: Any, actual: Any, path: str = "") -> str | None:
    """Where ``actual`` first departs from ``expected`` ("path: expected X, got Y")."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        label = path + (f" {expected['defined']}" if "defined" in expected and "def" in expected else "")
        for k in sorted(set(expected) | set(actual)):
            if k not in actual:
                return f"{label}.{k}: missing on chain"
            if k not in expected:
                return f"{label}.{k}: new on chain ({json.dumps(actual[k])[:80]})"
            d = first_difference(expected[k], actual[k], f"{label}.{k}")
            if d:
                return d
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            tag = e.get("name") if isinstance(e, dict) and isinstance(e.get("name"), str) else i
            if isinstance(e, dict) and isinstance(a, dict) and e.get("name") != a.get("name"):
                return f"{path}[{i}]: expected {e.get('name')!r}, got {a.get('name')!r}"
            d = first_difference(e, a, f"{path}[{tag}]")
            if d:
                return d
        if len(expected) != len(actual):
            extra = actual[len(expected)] if len(actual) > len(expected) else expected[len(actual)]
            what = extra.get("name") if isinstance(extra, dict) else extra
            side = "new on chain" if len(actual) > len(expected) else "missing on chain"
            return f"{path}: {len(actual)} entries instead of {len(expected)} ({what!r} {side})"
        return None
    if expected != actual:
        return f"{path}: expected {json.dumps(expected)[:80]}, got {json.dumps(actual)[:80]}"
    return None


@dataclass
class IdlComparison:
    """The used items of a reference IDL compared with another (e.g. the one on chain)."""

    instructions: dict[str, str | None] = field(default_factory=dict)  # name -> first difference
    accounts: dict[str, str | None] = field(default_factory=dict)

    @property
    def differences(self) -> list[str]:
        out = [f"instruction {n}{d}" for n, d in self.instructions.items() if d]
        return out + [f"account {n}{d}" for n, d in self.accounts.items() if d]

    @property
    def matches(self) -> bool:
        return not self.differences

    def account_matches(self, name: str) -> bool:
        return self.accounts.get(name, "missing") is None


def _difference(canonical: Callable[[dict[str, Any], str], dict[str, Any]], reference: dict[str, Any],
                other: dict[str, Any], name: str) -> str | None:
    want = canonical(reference, name)
    try:
        got = canonical(other, name)
    except FingerprintError as e:
        return f": {e}"
    d = first_difference(want, got)
    return f" {d.lstrip('.')}" if d else None


def compare(
    reference: dict[str, Any], other: dict[str, Any], instructions: list[str], accounts: list[str]
) -> IdlComparison:
    """Compare the listed items of ``reference`` with ``other`` (missing in ``other`` = different)."""
    out = IdlComparison()
    for name in instructions:
        out.instructions[name] = _difference(canonical_instruction, reference, other, name)
    for name in accounts:
        out.accounts[name] = _difference(canonical_account, reference, other, name)
    return out
