"""The demo's script: phases, per-minute price targets and the market regime of each phase.

Every minute of the session has a target close, either relative to the session's opening price
(``anchor="open"``) or to the running session VWAP (``anchor="vwap"``, so the chop really does
cross the VWAP the signal watches). Within a minute the generator walks the mid from the previous
close to the target and holds it there. ``strict`` minutes are the ones that set up a VWAP
reclaim/loss: the generator makes sure their aggressor flow has the sign of the move, so CVD
rises (or falls) over the bars leading to the cross.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Anchor = Literal["open", "vwap"]


@dataclass(frozen=True, slots=True)
class Regime:
    """Market conditions of one phase (rates per second, sizes in SOL)."""

    name: str
    trade_rate: float  # Binance aggressor trades/s besides the sweeps that move the price
    spread: tuple[int, int]  # Binance spread in ticks (min, max)
    wide_p: float  # per-step chance of re-drawing the spread inside that range
    depth_scale: float  # multiplies resting size per level
    fill: float  # chance that a tick level holds an order
    sweep: tuple[float, float]  # share of a level traded when the price moves through it
    liq_binance: float  # forceOrder events/s (Binance pushes at most one per second)
    liq_bybit: float  # allLiquidation messages/s
    liq_long: float  # share of liquidations that hit longs
    okx_rate: float  # OKX SOL-USDC-SWAP trades/s
    okx_lag_steps: int  # OKX prices follow Binance with this lag (100 ms steps)
    basis_bps: float  # OKX USDC premium over Binance USDT
    funding: float  # Bybit funding rate per 8 h interval
    oi_drift: float  # relative change of open interest per second
    noise_ticks: float  # stationary std of the mid's wiggle around the planned path


REGIMES: dict[str, Regime] = {
    r.name: r
    for r in (
        Regime("trend", 3.0, (1, 2), 0.04, 1.0, 0.95, (0.35, 0.9), 1 / 420, 1 / 260, 0.3, 0.8, 5,
               2.0, 0.00012, 2e-6, 2.5),
        Regime("chop", 2.5, (1, 2), 0.03, 1.0, 0.95, (0.35, 0.9), 1 / 500, 1 / 300, 0.5, 0.7, 5,
               1.5, 0.0001, 0.0, 2.0),
        Regime("slide", 6.0, (1, 5), 0.2, 0.45, 0.8, (0.6, 1.0), 0.25, 0.3, 0.97, 1.5, 8,
               3.0, 0.00005, -2e-5, 3.0),
        Regime("cascade", 14.0, (5, 24), 0.3, 0.16, 0.55, (0.9, 1.0), 0.85, 1.2, 0.98, 4.0, 15,
               6.0, -0.00006, -1.5e-4, 4.0),
        Regime("bounce", 9.0, (3, 14), 0.25, 0.3, 0.7, (0.7, 1.0), 0.5, 0.6, 0.35, 2.5, 10,
               4.0, -0.00003, -3e-5, 3.5),
        Regime("recovery", 4.5, (1, 3), 0.08, 0.7, 0.9, (0.4, 0.95), 1 / 300, 1 / 200, 0.4, 1.0, 6,
               2.5, 0.00002, 1e-5, 2.5),
        Regime("calm", 3.5, (1, 2), 0.04, 1.0, 0.95, (0.35, 0.9), 1 / 420, 1 / 260, 0.4, 0.8, 5,
               2.0, 0.00006, 1e-5, 2.5),
    )
}


@dataclass(frozen=True, slots=True)
class MinutePlan:
    phase: str  # one of DemoPhase names
    regime: str  # key of REGIMES
    anchor: Anchor
    bps: float  # target close: anchor price * (1 + bps / 1e4)
    strict: bool = False  # enforce the flow sign (bars that set up a signal)


def _m(phase: str, regime: str, anchor: Anchor, bps: float, strict: bool = False) -> MinutePlan:
    return MinutePlan(phase, regime, anchor, bps, strict)


# 45 minutes. Targets in bps: "open" = vs the session's first price, "vwap" = vs the running VWAP.
PLAN: tuple[MinutePlan, ...] = (
    # 0-13: calm up-trend with pullbacks (about +2.5 %)
    _m("trend", "trend", "open", 12), _m("trend", "trend", "open", 35),
    _m("trend", "trend", "open", 60), _m("trend", "trend", "open", 45),
    _m("trend", "trend", "open", 75), _m("trend", "trend", "open", 105),
    _m("trend", "trend", "open", 135), _m("trend", "trend", "open", 118),
    _m("trend", "trend", "open", 108), _m("trend", "trend", "open", 145),
    _m("trend", "trend", "open", 185), _m("trend", "trend", "open", 215),
    _m("trend", "trend", "open", 195), _m("trend", "trend", "open", 235),
    # 14-25: chop around the VWAP: a loss (short) at 16, a reclaim (long) at 20, a loss at 24
    _m("chop", "chop", "vwap", 80, True), _m("chop", "chop", "vwap", 35, True),
    _m("chop", "chop", "vwap", -25, True), _m("chop", "chop", "vwap", -40),
    _m("chop", "chop", "vwap", -30, True), _m("chop", "chop", "vwap", -18, True),
    _m("chop", "chop", "vwap", 25, True), _m("chop", "chop", "vwap", 40),
    _m("chop", "chop", "vwap", 30, True), _m("chop", "chop", "vwap", 12, True),
    _m("chop", "chop", "vwap", -18, True), _m("chop", "chop", "vwap", -30),
    # 26-30: liquidation cascade (about -7 % from the top of the slide), then a bounce
    _m("cascade", "slide", "vwap", -110), _m("cascade", "cascade", "vwap", -330),
    _m("cascade", "cascade", "vwap", -560), _m("cascade", "cascade", "vwap", -640),
    _m("cascade", "bounce", "vwap", -470),
    # 31-44: recovery back to the VWAP (book refilling) and a second reclaim (long) at 41
    _m("recovery", "recovery", "vwap", -420), _m("recovery", "recovery", "vwap", -350),
    _m("recovery", "recovery", "vwap", -380), _m("recovery", "recovery", "vwap", -290),
    _m("recovery", "calm", "vwap", -210), _m("recovery", "calm", "vwap", -150),
    _m("recovery", "calm", "vwap", -95), _m("recovery", "calm", "vwap", -60, True),
    _m("recovery", "calm", "vwap", -42, True), _m("recovery", "calm", "vwap", -25, True),
    _m("recovery", "calm", "vwap", 22, True), _m("recovery", "calm", "vwap", 38),
    _m("recovery", "calm", "vwap", 28), _m("recovery", "calm", "vwap", 35),
)

# Bars (minute index) the script sets up to fire the 1m CVD + VWAP signal (fires at their close).
PLANNED_SIGNALS: tuple[tuple[int, str], ...] = ((16, "short"), (20, "long"), (24, "short"), (41, "long"))


def plan_for(minute: int) -> MinutePlan:
    """The plan of ``minute``; past the script the market keeps chopping just above the VWAP."""
    if minute < len(PLAN):
        return PLAN[minute]
    return _m("recovery", "calm", "vwap", (25, 40, 30, 45)[minute % 4])


def phase_spans(minutes: int) -> list[tuple[str, int, int]]:
    """``(phase, first minute, end minute)`` runs of the first ``minutes`` minutes."""
    spans: list[tuple[str, int, int]] = []
    for m in range(minutes):
        name = plan_for(m).phase
        if spans and spans[-1][0] == name:
            spans[-1] = (name, spans[-1][1], m + 1)
        else:
            spans.append((name, m, m + 1))
    return spans
