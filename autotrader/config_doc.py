"""The configuration reference (docs/CONFIGURATION.md), generated from the schema so every key's
type, range and default is documented and never drifts: ``python -m autotrader.config_doc``."""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi

from core.config_schema import MAX_CONFIG_INT, Config
from core.engine_types import OWNED_ELSEWHERE

HEADER = """# Configuration reference

Generated from `core/config_schema.py` by `python -m autotrader.config_doc > docs/CONFIGURATION.md`
(a test fails when this page and the schema disagree). Every key can be set in the TOML file, by
`AUTOTRADER__SECTION__KEY` and by `--set section.key=value`; `autotrader config show` prints what
is in effect and where each value comes from, secrets masked.

Every number must be finite (`inf`/`nan` are refused everywhere) and integers lie within ±2^53;
the ranges below come on top. Cross-field rules: `risk.leverage` ≤ `guards.max_leverage`;
`paper.maker_fee_bps` ≥ −`paper.taker_fee_bps` (a rebate never pays a round trip);
`risk.tp_split` sums to 100 and has as many entries as the strictly increasing `risk.tp_atr_mult`;
`guards.rsi_gate.oversold` < `overbought`; `venues.helius.listen` needs `auth_header`, and a
non-loopback address needs `bind_public`; `venues.drift.cluster = "mainnet"` needs `allow_mainnet`
(or `--mainnet`), and the RPC's genesis hash must be the labelled cluster's. The Drift venue also
refuses to start when `guards.max_leverage` is above the market's own maximum.

| key | type | range / form | default |
| --- | --- | --- | --- |
"""


def _range(t: Any) -> str:
    parts = []
    for attr, sym in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
        v = getattr(t, attr, None)
        if v is not None:
            parts.append(f"{sym} {v}" if isinstance(v, int) else f"{sym} {v:g}")
    if isinstance(t, mi.StrType) and t.pattern:
        parts.append(f"matches `{t.pattern}`")
    if isinstance(t, mi.FloatType):
        parts.append("finite")
    if isinstance(t, mi.IntType) and t.le is None and t.lt is None:
        parts.append(f"≤ 2^{MAX_CONFIG_INT.bit_length() - 1}")
    min_length = getattr(t, "min_length", None)
    if min_length:
        parts.append(f"at least {min_length} item(s)" if not isinstance(t, mi.StrType) else "not empty")
    return ", ".join(parts)


def _type(t: Any) -> tuple[str, str]:
    """(type name, range/form) of a leaf type."""
    if isinstance(t, mi.LiteralType):
        return "one of", " \\| ".join(f"`{v}`" for v in t.values)
    if isinstance(t, mi.ListType):
        name, rng = _type(t.item_type)
        own = _range(t)
        return f"list of {name}", "; ".join(p for p in (rng and f"each {rng}", own) if p)
    if isinstance(t, mi.DictType):
        return "table", f"keys {_type(t.key_type)[1]}; values {_type(t.value_type)[1]}"
    names: dict[type, str] = {mi.FloatType: "float", mi.IntType: "int", mi.BoolType: "bool",
                              mi.StrType: "string"}
    return names.get(type(t), type(t).__name__), _range(t)


def rows(t: Any | None = None, prefix: str = "", default: Any = None) -> list[tuple[str, str, str, str]]:
    t = mi.type_info(Config) if t is None else t
    assert isinstance(t, mi.StructType)
    out: list[tuple[str, str, str, str]] = []
    defaults = msgspec.to_builtins(default if default is not None else Config())
    for f in t.fields:
        key = f"{prefix}{f.name}"
        if prefix == "engine." and f.name in OWNED_ELSEWHERE:
            continue  # set in its own section (an [engine] value is refused)
        ft = f.type
        if isinstance(ft, mi.StructType):
            out += rows(ft, key + ".", getattr(default if default is not None else Config(), f.name))
            continue
        name, rng = _type(ft)
        value = defaults.get(f.name)
        shown = "`\"\"`" if value == "" else f"`{msgspec.json.encode(value).decode()}`"
        out.append((key, name, rng.replace("|", "\\|") if name != "one of" else rng, shown))
    return out


def reference() -> str:
    return HEADER + "".join(f"| `{k}` | {t} | {r} | {d} |\n" for k, t, r, d in rows())


if __name__ == "__main__":
    print(reference(), end="")
