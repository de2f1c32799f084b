"""Wire market state, guards and the signal to the bus.

:class:`GuardMonitor` feeds :class:`~core.market_state.MarketState` from the market topics and
re-evaluates the guards after each input, on the given clock (wall time live, event time in
replay). The latest Drift liquidation map (``onchain:drift:liq_map``) feeds the ``liq_gap``
guard with its cluster prices while it is at most ``liq_map_max_age_ms`` old; without one (or
with a stale one) the report says "liq-map unavailable" and why (no scanner for the engine's
venue, scanning off, the last scan failed, the map too old; see ``GuardMonitor.liq_map_note``),
and ``guards.liq_gap.when_unavailable`` decides whether that blocks. It publishes a
:class:`~core.guards.GuardReport` on ``guards`` at every status change and at least once per
``heartbeat_ms`` of clock time.

After an input only the *status* is computed (:func:`core.guard_status.status_now`, a few µs, the
same comparisons as :func:`core.guards.evaluate`); the full report, with every check's reason, is
built when it is published, asked for (:meth:`GuardMonitor.check`) or read (``latest``), and is
then exactly the report of that evaluation: nothing is skipped or delayed, so staleness is seen at
the first evaluation past an input's max age, live and in replay alike.

:class:`SignalRunner` runs the VWAP-reclaim signal on each closed 1-minute bar with the report
evaluated at that instant, publishing intents on ``engine:intents`` and regime changes on
``engine:regime``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar

import msgspec

from core.bus import Bus, Topics
from core.clock import Clock
from core.guard_config import GuardsConfig, RiskConfig, SignalConfig
from core.guard_status import StatusCache
from core.guards import GUARDS, GuardReport, Status, evaluate
from core.intents import INTENTS, REGIME, Intent, SignalVeto
from core.liqmap_map import LIQ_MAP, LiqMap
from core.market_history import MarketHistory
from core.market_state import MarketState
from core.models import Bar, FeedStatus
from core.signal import VwapReclaimSignal

M = TypeVar("M")

# Live connections that carry each venue's liquidations; the guards' liquidation input is the
# liveness of the venue (the market state keys it by venue name, as replay publishes it).
LIQUIDATION_FEEDS: Mapping[str, str] = {
    "binance.market": "binance",
    "bybit.linear": "bybit",
    "okx.public": "okx",
}


class GuardMonitor:
    def __init__(
        self,
        bus: Bus,
        cfg: GuardsConfig,
        clock: Clock,
        data_source: Literal["live", "replay"],
        heartbeat_ms: int = 60_000,
        liq_map_max_age_ms: int = 7_200_000,
    ) -> None:
        self.bus = bus
        self.cfg = cfg
        self.clock = clock
        self.data_source = data_source
        self.heartbeat_ms = heartbeat_ms
        self.state = MarketState(cfg)
        self.liq_map: LiqMap | None = None
        self.liq_map_max_age_ms = liq_map_max_age_ms
        #: why there is no map (set by whoever owns the scanner); shown while no fresh map is held
        self.liq_map_unavailable = "no liq-map received"
        self.evaluations = 0
        self._last_published_ms: int | None = None
        self._report: GuardReport | None = None  # built for (_eval_ms, _eval_version), or None
        self._status: Status | None = None  # status at the last evaluation
        self._eval_ms: int | None = None
        self._eval_version = -1
        self._status_cache = StatusCache()  # status_now, the non-book part kept between inputs
        st = self.state
        self._offs: list[Callable[[], None]] = [
            bus.on(Topics.BOOK, self._wrap(st.on_book)),
            bus.on(Topics.BOOK_RESYNC, self._wrap(st.on_book_resync)),
            bus.on(Topics.FUNDING, self._wrap(st.on_funding)),
            bus.on(Topics.OPEN_INTEREST, self._wrap(st.on_open_interest)),
            bus.on(Topics.BASIS, self._wrap(st.on_basis)),
            bus.on(Topics.LIQUIDATIONS, self._wrap(st.on_liquidation)),
            bus.on(Topics.FEED_STATUS, self._on_feed_status),
            bus.on(Topics.BARS, self._on_bar),
            bus.on(LIQ_MAP, self._on_liq_map),
        ]

    def _wrap(self, handler: Callable[[M], None]) -> Callable[[M], None]:
        def on_input(msg: M) -> None:
            handler(msg)
            self.tick()

        return on_input

    def _on_feed_status(self, msg: FeedStatus) -> None:
        venue = LIQUIDATION_FEEDS.get(msg.feed)
        self.state.on_feed_status(msg if venue is None else msgspec.structs.replace(msg, feed=venue))
        self.tick()

    def _on_bar(self, bar: Bar) -> None:
        self.state.on_bar(bar)
        self.tick()

    @property
    def latest(self) -> GuardReport | None:
        """The report of the last evaluation (None before the first one); built on first read.

        The state only changes in this monitor's input handlers, each followed by an evaluation,
        so the state seen here is the one that evaluation saw."""
        at = self._eval_ms
        if at is None:
            return None
        report = self._report
        if report is None or report.ts != at:
            report = self._report = self._full(at)
        return report

    @property
    def status(self) -> Status | None:
        """Status of the last evaluation (None before the first one)."""
        return self._status

    def _full(self, now: int) -> GuardReport:
        clusters = self.liq_clusters(now)
        return evaluate(self.state.snapshot(now), self.cfg, now, self.data_source, liq_clusters=clusters,
                        liq_map_note="" if clusters is not None else self.liq_map_note(now))

    def liq_map_note(self, now_ms: int) -> str:
        """Why no liq-map feeds ``liq_gap`` now."""
        m = self.liq_map
        if m is not None:
            age_h = (now_ms - m.updated_at) / 3_600_000
            stale = f"the latest map is {age_h:.1f} h old > {self.liq_map_max_age_ms / 3_600_000:g} h"
            why = self.liq_map_unavailable
            extra = why if why.startswith("last scan failed") else ""
            return stale + (f"; {extra}" if extra else "")
        return self.liq_map_unavailable

    def set_liq_map_status(self, reason: str) -> None:
        """The scanner's side: why no (new) map comes, e.g. "last scan failed: timeout"."""
        if reason != self.liq_map_unavailable:
            self.liq_map_unavailable = reason
            self._eval_version = -1
            self.check()

    def tick(self) -> Status:
        """Evaluate the status now; publish the full report when it changed or the heartbeat is due."""
        now = self.clock.now_ms()
        state = self.state
        if now == self._eval_ms and state.version == self._eval_version and self._status is not None:
            status = self._status  # nothing changed since the last evaluation
        else:
            status = self._status_cache.status(state, now, self.liq_clusters(now))
            self._report = None
        self.evaluations += 1
        prev = self._status
        self._status = status
        self._eval_ms = now
        self._eval_version = state.version
        last = self._last_published_ms
        if prev is None or prev != status or last is None or now - last >= self.heartbeat_ms:
            self._last_published_ms = now
            report = self.latest
            assert report is not None
            self.bus.publish(GUARDS, report)
        return status

    def load_history(self, h: MarketHistory) -> None:
        """Stored market data at start, before any live input (see MarketState.load_history)."""
        self.state.load_history(h.bars, h.liquidations, h.open_interest, h.funding)
        self._eval_version = -1
        self.tick()

    def _on_liq_map(self, m: LiqMap) -> None:
        self.liq_map = m
        self._eval_version = -1  # not a market-state change: force a fresh evaluation
        self.check()

    def set_config(self, cfg: GuardsConfig) -> None:
        """New thresholds (the operator's settings): the full report and the per-input status read
        the same config from the next evaluation on. Window lengths and indicator periods are
        those the market state was built with."""
        self.cfg = cfg
        self.state.cfg = cfg
        self._status_cache = StatusCache()
        self._eval_version = -1

    def liq_clusters(self, now_ms: int) -> list[float] | None:
        """Cluster prices of the latest map, None without a map or when it is too old."""
        m = self.liq_map
        if m is None or now_ms - m.updated_at > self.liq_map_max_age_ms:
            return None
        return m.cluster_prices()

    def check(self) -> GuardReport:
        """Evaluate now; publish when the status changed or the heartbeat is due. Returns the report."""
        self.tick()
        report = self.latest
        assert report is not None
        return report

    def close(self) -> None:
        for off in self._offs:
            off()
        self._offs.clear()


class SignalRunner:
    """Runs after the monitor on each closed bar (register it second), so it sees the report
    evaluated with that bar included."""

    def __init__(
        self,
        bus: Bus,
        monitor: GuardMonitor,
        signal_cfg: SignalConfig,
        risk: RiskConfig,
        equity_usd: Callable[[], float],
        on_veto: Callable[[SignalVeto], None] | None = None,
    ) -> None:
        self.bus = bus
        self.monitor = monitor
        self.signal = VwapReclaimSignal(signal_cfg, risk)
        self.equity_usd = equity_usd
        #: a detected setup that produced no intent (the composition root records it in the activity log)
        self.on_veto = on_veto
        self.intents: list[Intent] = []
        self.skips: deque[str] = deque(maxlen=10_000)  # bounded: a daemon runs for days
        self.vetoes: deque[SignalVeto] = deque(maxlen=10_000)
        self._off = bus.on(Topics.BARS, self._on_bar)

    def _on_bar(self, bar: Bar) -> None:
        if not bar.closed:
            return
        state = self.monitor.state
        report = self.monitor.latest
        intent = self.signal.on_bar(bar, report, state.book, state.atr_5m, self.equity_usd())
        regime = self.signal.regime_update()
        if regime is not None:
            self.bus.publish(REGIME, regime)
        if intent is not None:
            self.intents.append(intent)
            self.bus.publish(INTENTS, intent)
        elif self.signal.last_skip:
            self.skips.append(self.signal.last_skip)
            self.signal.last_skip = ""
            v = self.signal.last_veto
            if v is not None:
                self.signal.last_veto = None
                self.vetoes.append(v)
                if self.on_veto is not None:
                    self.on_veto(v)

    def close(self) -> None:
        self._off()
