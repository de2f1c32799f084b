#!/usr/bin/env python3
"""Extract the part of Velocity's Anchor 1.0 IDL that the venue uses.

    python tools/velocity_idl/extract_subset.py velocity.json \
        --out execution/velocity/idl/velocity-2.165.0.subset.json

``velocity.json`` is ``packages/sdk/src/idl/velocity.json`` of velocity-exchange/velocity-v1
(the target: commit 0077e03b40a03217c254e045f78eaaf7ee4c14b7, version 2.165.0). The output keeps
``address`` and ``metadata``, the instructions in :data:`INSTRUCTIONS`, the accounts in
:data:`ACCOUNTS` and every type they reach, in the order of the full IDL, with ``docs`` removed
(they are not part of the layout); the lists of what is used are the venue's
(``execution/velocity/program.py``). ``--expect-sha256`` refuses an input whose hash differs.
A new IDL is a data change: run this on it, regenerate the fixtures (tools/velocity_fixtures),
and the program check compares the new fingerprints (docs/VELOCITY_VENUE.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from execution.anchor_idl.fingerprint import strip_docs
from execution.velocity.program import ACCOUNTS_USED as ACCOUNTS
from execution.velocity.program import INSTRUCTIONS_USED as INSTRUCTIONS


def referenced_types(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        defined = node.get("defined")
        if isinstance(defined, dict) and isinstance(defined.get("name"), str):
            out.add(defined["name"])
        for v in node.values():
            referenced_types(v, out)
    elif isinstance(node, list):
        for v in node:
            referenced_types(v, out)


def extract(full: dict[str, Any]) -> dict[str, Any]:
    ixs = [i for i in full["instructions"] if i["name"] in INSTRUCTIONS]
    accs = [a for a in full["accounts"] if a["name"] in ACCOUNTS]
    missing = (set(INSTRUCTIONS) - {i["name"] for i in ixs}) | (set(ACCOUNTS) - {a["name"] for a in accs})
    if missing:
        raise SystemExit(f"not in this IDL: {', '.join(sorted(missing))}")
    by_name = {t["name"]: t for t in full["types"]}
    wanted: set[str] = set(ACCOUNTS)
    referenced_types(ixs, wanted)
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name not in by_name:
            raise SystemExit(f"type {name} is referenced but not defined")
        found: set[str] = set()
        referenced_types(by_name[name]["type"], found)
        for n in found - wanted:
            wanted.add(n)
            todo.append(n)
    types = [t for t in full["types"] if t["name"] in wanted]
    return strip_docs(
        {
            "address": full["address"],
            "metadata": full["metadata"],
            "instructions": ixs,
            "accounts": accs,
            "types": types,
        }
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("idl", type=Path, help="the full velocity.json")
    p.add_argument("--out", type=Path, help="where to write the subset (default: stdout)")
    p.add_argument("--expect-sha256", help="refuse an input whose sha256 (hex) differs")
    a = p.parse_args(argv)
    raw = a.idl.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if a.expect_sha256 and digest != a.expect_sha256.lower():
        print(f"{a.idl}: sha256 {digest} is not the expected {a.expect_sha256}", file=sys.stderr)
        return 2
    full = json.loads(raw)
    print(
        f"{a.idl}: {len(raw):,} bytes, sha256 {digest}, version {full['metadata']['version']}, "
        f"{len(full['instructions'])} instructions",
        file=sys.stderr,
    )
    text = json.dumps(extract(full), indent=2) + "\n"
    if a.out:
        a.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
