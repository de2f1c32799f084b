"""Typed, validated configuration of the guards, the signal and the per-trade risk (pure).

These Structs are the ``guards``, ``signal`` and ``risk`` sections of the application config. They
are validated when msgspec converts the config tree: type and range errors come from ``Meta``
constraints and name the key (``- at `$.guards.max_age.book_s```); cross-field rules are checked in
``__post_init__`` and raise :class:`ValueError` whose message starts with the field name
(``"tp_split: must sum to 100, got 90"``), which msgspec reports at the section's path.
"""

from __future__ import annotations

import math
from typing import Annotated, Final, Literal, get_args

import msgspec

GuardName = Literal[
    "spread", "depth", "funding", "basis", "liquidations", "leverage",
    "rsi_gate", "obv_cliff", "liq_gap", "daily_stop",
]
GUARD_NAMES: Final[tuple[str, ...]] = get_args(GuardName)

InputName = Literal["book", "funding", "oi", "basis", "liquidations", "bars"]
INPUT_NAMES: Final[tuple[str, ...]] = get_args(InputName)

NonNeg = Annotated[float, msgspec.Meta(ge=0)]
Pos = Annotated[float, msgspec.Meta(gt=0)]
PosInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
Pct100 = Annotated[float, msgspec.Meta(ge=0, le=100)]
#: an age or window in seconds: > 0 and at most a day (an unbounded age would switch staleness off);
#: every float of the config must also be finite (autotrader.config checks the whole tree)
Age = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
#: leverage: from 1 to SOL-PERP's maximum (Drift: initial margin 5 % = 20x); the Drift venue also
#: refuses to start when it is above the market's own maximum (1 / initial margin ratio)
MAX_LEVERAGE: Final[float] = 20.0
Leverage = Annotated[float, msgspec.Meta(ge=1, le=MAX_LEVERAGE)]
AtrMult = Annotated[float, msgspec.Meta(gt=0, le=100)]
DRIFT_MARGIN_PRECISION: Final[int] = 10_000  # Drift's margin ratios: 500 = 5 %


def market_max_leverage(margin_ratio_initial: int) -> float | None:
    """A Drift perp market's maximum leverage, 1 / initial margin ratio; None when unknown (0)."""
    return DRIFT_MARGIN_PRECISION / margin_ratio_initial if margin_ratio_initial > 0 else None
MAX_RISK_PER_TRADE_PCT: Final[float] = 10.0


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


def _all_guards() -> list[GuardName]:
    return list(get_args(GuardName))


class MaxAgeConfig(_Section):
    """Max age (seconds, by event time) of each guard input before it counts as stale.

    ``bars`` is measured from the END of the latest closed 1-minute bar; ``liquidations`` from the
    last sign of life of every liquidation venue's feed (a ``live`` feed status or a liquidation),
    because liquidations themselves are sporadic.
    """

    book_s: Age = 5.0
    funding_s: Age = 300.0
    oi_s: Age = 300.0
    basis_s: Age = 120.0
    liquidations_s: Age = 60.0
    bars_s: Age = 180.0

    def of(self, name: str) -> float:
        value: float = getattr(self, f"{name}_s")
        return value


class RsiGateConfig(_Section):
    """RSI(1m) gate: warning when RSI is above ``overbought`` (blocks longs) or below ``oversold``
    (blocks shorts); with no side given, either extreme warns."""

    enabled: bool = False
    period: PosInt = 14
    overbought: Pct100 = 70.0
    oversold: Pct100 = 30.0

    def __post_init__(self) -> None:
        if not self.oversold < self.overbought:
            raise ValueError(f"oversold: must be below overbought ({self.oversold} >= {self.overbought})")


class ObvCliffConfig(_Section):
    """OBV-cliff veto: a cliff (see :mod:`core.indicators`) vetoes entries for ``hold_bars`` bars
    after the cliff bar (0 = only on the cliff bar itself)."""

    enabled: bool = False
    mode: Literal["close", "flow"] = "close"
    lookback_bars: PosInt = 20
    mult: Pos = 3.0
    hold_bars: NonNegInt = 5


class LiqGapConfig(_Section):
    """Nearest on-chain liquidation cluster must be at least ``atr_mult`` × ATR(5m) from mid.
    Without a usable liq-map (none scanned, too old, no scanner for the engine's venue) the check
    says "liq-map unavailable" and why; ``when_unavailable`` decides: ``skip`` (the check does
    not count; the report lists it under ``notes``) or ``block`` (stale: entries are blocked)."""

    enabled: bool = True
    atr_mult: NonNeg = 4.0
    when_unavailable: Literal["skip", "block"] = "skip"


class DailyStopConfig(_Section):
    """Daily hard stop: breach when today's PnL is at or below ``-max_loss_pct`` % of equity.
    Evaluated only when the caller supplies the day's PnL."""

    enabled: bool = True
    max_loss_pct: Annotated[float, msgspec.Meta(gt=0, le=100)] = 3.0


class GuardsConfig(_Section):
    """Thresholds of the pre-trade guards (defaults from the original design)."""

    spread_bps_max: NonNeg = 10.0
    depth_usd_min: NonNeg = 50_000.0
    funding_apr_abs_max_pct: NonNeg = 300.0
    basis_bps_abs_max: NonNeg = 25.0
    liq_events_max: NonNegInt = 10
    liq_window_s: Age = 300.0
    max_leverage: Leverage = 5.0
    atr_period: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 14
    atr_bar_minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)] = 5
    liquidation_venues: list[str] = msgspec.field(default_factory=lambda: ["binance", "bybit", "okx"])
    funding_venue: str = ""
    oi_venue: str = ""
    max_age: MaxAgeConfig = msgspec.field(default_factory=MaxAgeConfig)
    blocking: list[GuardName] = msgspec.field(default_factory=_all_guards)
    rsi_gate: RsiGateConfig = msgspec.field(default_factory=RsiGateConfig)
    obv_cliff: ObvCliffConfig = msgspec.field(default_factory=ObvCliffConfig)
    liq_gap: LiqGapConfig = msgspec.field(default_factory=LiqGapConfig)
    daily_stop: DailyStopConfig = msgspec.field(default_factory=DailyStopConfig)

    def __post_init__(self) -> None:
        if not self.liquidation_venues:
            raise ValueError("liquidation_venues: must name at least one venue")
        for name in self.blocking:
            if name not in GUARD_NAMES:  # only reachable when built in code, not via msgspec
                known = ", ".join(GUARD_NAMES)
                raise ValueError(f"blocking: unknown guard {name!r}; expected one of {known}")

    def blocks(self, name: str) -> bool:
        return name in self.blocking


class SignalConfig(_Section):
    """1-minute CVD + VWAP reclaim signal.

    Long when a closed bar closes above its session VWAP by at least ``min_reclaim_bps`` after the
    previous bar closed below its VWAP, with the aggressor flow (Σ buy_vol − sell_vol, i.e. the CVD
    change) over the last ``cvd_lookback_bars`` bars greater than ``min_cvd_delta``; short is the
    mirror image. ``skip_session_open`` ignores a reclaim whose previous bar belongs to another
    UTC day (the VWAP anchor reset). ``max_input_age_s`` bounds how old the guard report and book
    top may be relative to the bar's end.
    """

    enabled: bool = True
    market: str = "SOL-PERP"
    cvd_lookback_bars: PosInt = 5
    min_cvd_delta: NonNeg = 0.0
    min_reclaim_bps: NonNeg = 0.0
    skip_session_open: bool = True
    max_input_age_s: Age = 10.0


class RiskConfig(_Section):
    """Per-trade sizing and the SL/TP ladder, in multiples of ATR(5m)."""

    #: percent of equity at risk per trade; above 10 % is refused (50 typed for 0.5 % would be ruinous)
    risk_per_trade_pct: Annotated[float, msgspec.Meta(gt=0, le=MAX_RISK_PER_TRADE_PCT)] = 0.5
    leverage: Leverage = 3.0
    sl_atr_mult: AtrMult = 1.5
    tp_atr_mult: Annotated[list[AtrMult], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: [2.0, 3.0, 4.0]
    )
    tp_split: Annotated[list[Pos], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: [50.0, 30.0, 20.0]
    )
    size_step: NonNeg = 0.0

    def __post_init__(self) -> None:
        total = sum(self.tp_split)
        if not math.isclose(total, 100.0, rel_tol=0.0, abs_tol=1e-9):
            raise ValueError(f"tp_split: must sum to 100 (percent), got {total:g}")
        if len(self.tp_split) != len(self.tp_atr_mult):
            raise ValueError(
                f"tp_split: has {len(self.tp_split)} entries but tp_atr_mult has {len(self.tp_atr_mult)}"
            )
        if any(b <= a for a, b in zip(self.tp_atr_mult, self.tp_atr_mult[1:], strict=False)):
            raise ValueError(f"tp_atr_mult: must be strictly increasing, got {self.tp_atr_mult}")
