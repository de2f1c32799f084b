"""The unified minute signals feed (pure): one :class:`MinuteSignal` per closed 1-minute bar of the
primary symbol, on the bus topic ``signals:minute`` (stored as Parquet and JSON lines).

A row describes the minute that just closed, with the market as the guards saw it when it closed
(event time): the bar's close, CVD and VWAP; funding APR per venue (each venue's instruments,
open-interest weighted) and over every venue; basis; open interest per venue and in total; the
liquidations of the minute and of the guards' window; the guard status with the failing guards
and the first reason; the signal regime. Values older than the guards' max ages are ``None``
(missing stays missing, never 0).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from core.bus import Bus, Topic, Topics
from core.guard_monitor import GuardMonitor, SignalRunner
from core.models import Bar

MINUTE_MS = 60_000
VENUES = ("binance", "bybit", "okx")
SIGNALS_VENUE = "all"  # stored under <root>/all/<SYMBOL>/signals/ (Parquet and JSON lines)


class MinuteSignal(msgspec.Struct, frozen=True, kw_only=True):
    """One closed minute. ``ts`` is the bar's open (ms); venue fields are per venue."""

    ts: int
    symbol: str
    price: float
    cvd: float
    vwap: float
    volume: float
    funding_apr: float | None
    funding_apr_binance: float | None
    funding_apr_bybit: float | None
    funding_apr_okx: float | None
    basis_bps: float | None
    oi_usd: float | None
    oi_usd_binance: float | None
    oi_usd_bybit: float | None
    oi_usd_okx: float | None
    liq_count: int  # liquidations with ts in the minute, every venue
    liq_notional: float
    liq_count_window: int  # in the guards' window (guards.liq_window_s) at the close
    liq_notional_window: float
    guard_status: str  # passing | warning | breach | stale
    failing_guards: list[str]
    guard_reason: str  # the first block, else the first warning, else ""
    regime_on: bool
    regime_reason: str


SIGNALS_MINUTE: Topic[MinuteSignal] = Topic("signals:minute", MinuteSignal)


class MinuteSignals:
    """Builds a row on each closed bar; register after the guard monitor and the signal runner
    (bus handlers run in registration order) so the row carries their view of that bar."""

    def __init__(self, bus: Bus, monitor: GuardMonitor, signal: SignalRunner) -> None:
        self.bus = bus
        self.monitor = monitor
        self.signal = signal
        self.rows = 0
        self._off: Callable[[], None] = bus.on(Topics.BARS, self._on_bar)

    def _on_bar(self, bar: Bar) -> None:
        if not bar.closed:
            return
        row = self.build(bar)
        self.rows += 1
        self.bus.publish(SIGNALS_MINUTE, row)

    def build(self, bar: Bar) -> MinuteSignal:
        mon = self.monitor
        state, cfg = mon.state, mon.cfg
        now = max(mon.clock.now_ms(), bar.timestamp + MINUTE_MS)
        snap = state.snapshot(now)
        ages = snap.ages_s
        derivs = state.derivs
        funding = snap.funding_by_venue
        oi = snap.oi_by_venue
        n = 0
        notional = 0.0
        end = bar.timestamp + MINUTE_MS
        for liq in state.liqs:
            if bar.timestamp <= liq.ts < end:
                n += 1
                notional += liq.notional
        report = mon.latest
        failing: list[str] = []
        reason = ""
        status = "stale"
        if report is not None:
            status = report.status
            failing = sorted({c.name for c in report.checks if c.level not in ("passing", "skipped")})
            reason = (report.blocks or report.warnings or [""])[0]
        basis_age = ages.get("basis")
        regime = self.signal.signal.regime
        return MinuteSignal(
            ts=bar.timestamp, symbol=bar.symbol, price=bar.close, cvd=bar.cvd, vwap=bar.vwap,
            volume=bar.buy_vol + bar.sell_vol,
            funding_apr=derivs.funding_aggregate(now, cfg.max_age.funding_s, cfg.max_age.oi_s),
            funding_apr_binance=funding.get("binance"), funding_apr_bybit=funding.get("bybit"),
            funding_apr_okx=funding.get("okx"),
            basis_bps=snap.basis_bps if basis_age is not None and basis_age <= cfg.max_age.basis_s else None,
            oi_usd=derivs.oi_total(now, cfg.max_age.oi_s),
            oi_usd_binance=oi.get("binance"), oi_usd_bybit=oi.get("bybit"), oi_usd_okx=oi.get("okx"),
            liq_count=n, liq_notional=notional, liq_count_window=snap.liq_events_5m,
            liq_notional_window=snap.liq_notional_5m, guard_status=status, failing_guards=failing,
            guard_reason=reason, regime_on=regime.on, regime_reason=regime.reason,
        )

    def close(self) -> None:
        self._off()
