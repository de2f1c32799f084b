from __future__ import annotations

from typing import Any

import msgspec
import pytest

from core.guard_config import GUARD_NAMES, GuardsConfig, RiskConfig, SignalConfig


def test_defaults_match_the_issue() -> None:
    g = GuardsConfig()
    assert (g.spread_bps_max, g.depth_usd_min, g.funding_apr_abs_max_pct, g.basis_bps_abs_max) == (
        10,
        50_000,
        300,
        25,
    )
    assert (g.liq_events_max, g.liq_window_s, g.max_leverage) == (10, 300, 5)
    assert set(g.blocking) == set(GUARD_NAMES)
    r = RiskConfig()
    assert (r.sl_atr_mult, r.tp_atr_mult, r.tp_split) == (1.5, [2, 3, 4], [50, 30, 20])
    assert SignalConfig().cvd_lookback_bars >= 1


def test_round_trip_through_builtins() -> None:
    for cls in (GuardsConfig, SignalConfig, RiskConfig):
        obj = cls()
        assert msgspec.convert(msgspec.to_builtins(obj), cls) == obj


@pytest.mark.parametrize(
    ("cls", "tree", "key"),
    [
        (GuardsConfig, {"spread_bps_max": -1}, "$.spread_bps_max"),
        (GuardsConfig, {"depth_usd_min": -5}, "$.depth_usd_min"),
        (GuardsConfig, {"funding_apr_abs_max_pct": -0.1}, "$.funding_apr_abs_max_pct"),
        (GuardsConfig, {"basis_bps_abs_max": -3}, "$.basis_bps_abs_max"),
        (GuardsConfig, {"liq_events_max": -1}, "$.liq_events_max"),
        (GuardsConfig, {"max_leverage": 0}, "$.max_leverage"),
        (GuardsConfig, {"max_age": {"book_s": -1}}, "$.max_age.book_s"),
        (GuardsConfig, {"max_age": {"bars_s": 0}}, "$.max_age.bars_s"),
        (GuardsConfig, {"blocking": ["spread", "sprad"]}, "$.blocking[1]"),
        (GuardsConfig, {"rsi_gate": {"enabled": True, "period": 0}}, "$.rsi_gate.period"),
        (GuardsConfig, {"liq_gap": {"atr_mult": -4}}, "$.liq_gap.atr_mult"),
        (GuardsConfig, {"nope": 1}, "nope"),
        (RiskConfig, {"risk_per_trade_pct": -1}, "$.risk_per_trade_pct"),
        (RiskConfig, {"tp_split": [50, 30, -20]}, "$.tp_split[2]"),
        (SignalConfig, {"cvd_lookback_bars": 0}, "$.cvd_lookback_bars"),
    ],
)
def test_bad_values_are_refused_naming_the_key(cls: type[Any], tree: dict[str, Any], key: str) -> None:
    with pytest.raises(msgspec.ValidationError) as exc:
        msgspec.convert(tree, cls)
    assert key in str(exc.value)


@pytest.mark.parametrize(
    ("cls", "tree", "field", "at"),
    [
        (RiskConfig, {"tp_split": [50, 30, 10]}, "tp_split", ""),
        (RiskConfig, {"tp_split": [50, 50], "tp_atr_mult": [2, 3, 4]}, "tp_split", ""),
        (RiskConfig, {"tp_atr_mult": [2, 4, 3]}, "tp_atr_mult", ""),
        (GuardsConfig, {"rsi_gate": {"overbought": 30, "oversold": 70}}, "oversold", "$.rsi_gate"),
        (GuardsConfig, {"liquidation_venues": []}, "liquidation_venues", ""),
    ],
)
def test_cross_field_rules_name_the_field(cls: type[Any], tree: dict[str, Any], field: str, at: str) -> None:
    with pytest.raises(msgspec.ValidationError) as exc:
        msgspec.convert(tree, cls)
    msg = str(exc.value)
    assert msg.startswith(f"{field}: ")
    if at:  # msgspec only appends the path below the root
        assert msg.endswith(f"at `{at}`")


def test_errors_carry_the_section_path_when_nested() -> None:
    class Root(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
        guards: GuardsConfig = msgspec.field(default_factory=GuardsConfig)
        risk: RiskConfig = msgspec.field(default_factory=RiskConfig)

    with pytest.raises(msgspec.ValidationError, match=r"tp_split: must sum to 100.*\$\.risk`"):
        msgspec.convert({"risk": {"tp_split": [60, 30, 20]}}, Root)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.guards\.blocking\[0\]"):
        msgspec.convert({"guards": {"blocking": ["magic"]}}, Root)


def test_unknown_guard_refused_when_built_in_code() -> None:
    with pytest.raises(ValueError, match="blocking: unknown guard 'magic'"):
        GuardsConfig(blocking=["magic"])  # type: ignore[list-item]


def test_tp_split_summing_to_100_with_floats_is_accepted() -> None:
    assert msgspec.convert({"tp_split": [33.3, 33.3, 33.4]}, RiskConfig).tp_split == [33.3, 33.3, 33.4]
