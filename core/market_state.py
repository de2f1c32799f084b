"""Market state for the guards and the signal (pure: plain methods, no bus, no clock).

The runtime wires each ``on_*`` method to its bus topic with ``bus.on``; :meth:`MarketState.snapshot`
then gives the guards everything they need at a given (event-clock) time, with the age of every
input. Ages are measured by event timestamps, never by arrival time, so replay behaves like live.

* A newer value replaces an older one only if its timestamp is not older (a late REST row never
  overwrites a fresher websocket value).
* Funding and open interest keep the latest value per venue and instrument
  (:class:`core.derivatives.Derivatives`); ``GuardsConfig.funding_venue`` / ``oi_venue`` pick one
  venue, empty = the freshest of any venue (that value's age is the input's age). The snapshot's
  ``oi_notional`` is the sum over the chosen venue(s) of the values within ``max_age.oi_s``
  (the freshest value when none is), ``oi_by_venue`` / ``funding_by_venue`` the per-venue figures.
* Liquidations are kept for ``liq_window_s`` per venue. Because they are sporadic, their *input age*
  is the age of the last sign of life of every configured liquidation venue (a ``live``
  :class:`FeedStatus`, whose time is ``ts - last_msg_age_s``, or a liquidation from it); the oldest
  venue counts, a venue never heard from makes the input missing, and a non-live status newer than
  the last sign of life makes it not live.
* Only closed 1-minute bars feed the indicators: RSI and OBV on 1m closes, ATR on resampled bars.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from typing import TypeVar

import msgspec

from core.derivatives import Derivatives, Key
from core.guard_config import INPUT_NAMES, GuardsConfig
from core.indicators import Atr, Obv, ObvCliff, Resampler, Rsi
from core.models import Bar, Basis, BookTop, FeedStatus, Funding, Liquidation, OpenInterest, ResyncNeeded

MINUTE_MS = 60_000
MAX_LIQ_EVENTS = 100_000  # memory bound for a liquidation cascade; the count saturates here
RECENT_BARS = 240
_FO = TypeVar("_FO", Funding, OpenInterest)


class MarketSnapshot(msgspec.Struct, kw_only=True):
    """Everything the guards read, at ``ts``. A value is None when it was never received (or, for
    indicators, is still warming up). ``ages_s`` has one entry per input of
    :data:`core.guard_config.INPUT_NAMES` (None = missing); ``not_live`` names inputs whose feed
    reports itself not live, with the reason."""

    ts: int
    best_bid: float | None = None
    best_ask: float | None = None
    spread_bps: float | None = None
    bid_usd: float | None = None
    ask_usd: float | None = None
    funding_apr: float | None = None
    oi_notional: float | None = None
    basis_bps: float | None = None
    liq_events_5m: int = 0
    liq_by_venue: dict[str, int] = msgspec.field(default_factory=dict)
    liq_notional_5m: float = 0.0
    oi_by_venue: dict[str, float] = msgspec.field(default_factory=dict)
    funding_by_venue: dict[str, float] = msgspec.field(default_factory=dict)
    last_close: float | None = None
    atr_5m: float | None = None
    rsi: float | None = None
    obv: float | None = None
    obv_cliff: int = 0
    bars_seen: int = 0
    ages_s: dict[str, float | None] = msgspec.field(default_factory=dict)
    not_live: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def mid(self) -> float | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) / 2.0


def _age(now_ms: int, ts: int | None) -> float | None:
    if ts is None:
        return None
    return max(0.0, (now_ms - ts) / 1000.0)


def _pick(by_key: dict[Key, _FO], venue: str) -> _FO | None:
    """The freshest value of ``venue`` (any venue when empty)."""
    best: _FO | None = None
    for (v_name, _), v in by_key.items():
        if (not venue or v_name == venue) and (best is None or v.ts > best.ts):
            best = v
    return best


class MarketState:
    """Latest market values, a liquidation window by venue, closed bars and their indicators."""

    def __init__(self, cfg: GuardsConfig | None = None) -> None:
        self.cfg = cfg = cfg if cfg is not None else GuardsConfig()
        self.book: BookTop | None = None
        self.book_resync = ""  # why the book is being resynced ("": it is not); a newer top ends it
        self.derivs = Derivatives()
        self.funding: dict[Key, Funding] = self.derivs.funding
        self.oi: dict[Key, OpenInterest] = self.derivs.oi
        self.basis: Basis | None = None
        self.liqs: deque[Liquidation] = deque(maxlen=MAX_LIQ_EVENTS)
        self.alive_ms: dict[str, int] = {}
        self.dead: dict[str, tuple[int, str]] = {}
        self.bars: deque[Bar] = deque(maxlen=RECENT_BARS)
        self.bars_5m: deque[Bar] = deque(maxlen=RECENT_BARS)
        self.bars_seen = 0
        self._resampler = Resampler(cfg.atr_bar_minutes)
        self._atr = Atr(cfg.atr_period)
        self._rsi = Rsi(cfg.rsi_gate.period)
        self._obv = Obv(cfg.obv_cliff.mode)
        self._cliff = ObvCliff(cfg.obv_cliff.lookback_bars, cfg.obv_cliff.mult)
        self._cliff_dir = 0
        self._cliff_bar = -1  # bars_seen index of the last cliff
        #: bumped on every ingested input: a cache key for whatever is derived from the state
        self.version = 0
        #: how many of those inputs were book tops (``version - book_updates``: the other inputs)
        self.book_updates = 0
        # the liquidation window last counted: (horizon, first expiry, by venue, count, notional);
        # valid for any horizon in [horizon, first expiry) until a liquidation arrives
        self._liq_win: tuple[int, float, dict[str, int], int, float] | None = None
        self._liq_ts: list[int] = []  # the timestamps of ``liqs``, sorted

    # ------------------------------------------------------------------ ingest
    def on_book(self, m: BookTop) -> None:
        self.version += 1
        self.book_updates += 1
        b = self.book
        if b is None or (m.timestamp, m.update_id) >= (b.timestamp, b.update_id):
            self.book = m
            self.book_resync = ""

    def on_book_resync(self, m: ResyncNeeded) -> None:
        """The book was dropped and awaits a snapshot: its input is not live until the next top
        (counted as a book update: only the book's checks depend on it)."""
        self.version += 1
        self.book_updates += 1
        self.book_resync = m.reason or "resync"

    def on_funding(self, m: Funding) -> None:
        self.version += 1
        self.derivs.on_funding(m)

    def on_open_interest(self, m: OpenInterest) -> None:
        self.version += 1
        self.derivs.on_open_interest(m)

    def on_basis(self, m: Basis) -> None:
        self.version += 1
        if self.basis is None or m.ts >= self.basis.ts:
            self.basis = m

    def on_liquidation(self, m: Liquidation) -> None:
        self.version += 1
        self._liq_win = None
        liqs, times = self.liqs, self._liq_ts
        if len(liqs) == liqs.maxlen:  # the append below evicts the oldest
            del times[bisect_left(times, liqs[0].ts)]
        liqs.append(m)
        insort(times, m.ts)
        if m.ts > self.alive_ms.get(m.venue, -1):
            self.alive_ms[m.venue] = m.ts
        horizon = m.ts - int(self.cfg.liq_window_s * 1000)
        while liqs and liqs[0].ts <= horizon:
            del times[bisect_left(times, liqs.popleft().ts)]

    def load_history(self, bars: list[Bar], liqs: list[Liquidation], oi: list[OpenInterest],
                     funding: list[Funding]) -> None:
        """Stored data at start (time-ordered), before any live input: closed bars feed the
        indicators, liquidations the window, OI and funding their latest values (ages stay honest:
        they are event times). A stored liquidation is never a sign of life of its feed."""
        for b in bars:
            self.on_bar(b)
        alive = dict(self.alive_ms)
        for x in liqs:
            self.on_liquidation(x)
        self.alive_ms = alive
        for o in oi:
            self.on_open_interest(o)
        for f in funding:
            self.on_funding(f)

    def on_feed_status(self, m: FeedStatus) -> None:
        self.version += 1
        if m.state == "live":
            seen = m.ts - int((m.last_msg_age_s or 0.0) * 1000)
            if seen > self.alive_ms.get(m.feed, -1):
                self.alive_ms[m.feed] = seen
        else:
            self.dead[m.feed] = (m.ts, f"{m.feed} feed {m.state}" + (f" ({m.detail})" if m.detail else ""))

    def on_bar(self, m: Bar) -> list[Bar]:
        """Ingest a 1-minute bar; returns the resampled (ATR) bars it closed. Partial bars
        (``closed=False``) and bars not later than the last one are ignored."""
        if not m.closed or (self.bars and m.timestamp <= self.bars[-1].timestamp):
            return []
        self.version += 1
        self.bars.append(m)
        self.bars_seen += 1
        self._rsi.update(m.close)
        self._obv.update(m)
        if self._cliff.update(self._obv.last_change):
            self._cliff_dir = self._cliff.value
            self._cliff_bar = self.bars_seen
        closed = self._resampler.add(m)
        for b in closed:
            self.bars_5m.append(b)
            self._atr.update_bar(b)
        return closed

    # ------------------------------------------------------------------ queries
    @property
    def atr_5m(self) -> float | None:
        return self._atr.value

    @property
    def rsi(self) -> float | None:
        return self._rsi.value

    @property
    def obv(self) -> float | None:
        return self._obv.value if self.bars_seen else None

    @property
    def last_bar(self) -> Bar | None:
        return self.bars[-1] if self.bars else None

    def obv_cliff(self) -> int:
        """Direction of the last cliff while it is within ``hold_bars`` bars, else 0."""
        if self._cliff_bar < 0 or self.bars_seen - self._cliff_bar > self.cfg.obv_cliff.hold_bars:
            return 0
        return self._cliff_dir

    def liq_count(self, now_ms: int) -> int:
        """How many liquidations have ``ts > now - liq_window_s`` (a bisection, no scan)."""
        times = self._liq_ts
        return len(times) - bisect_right(times, now_ms - int(self.cfg.liq_window_s * 1000))

    def liq_window(self, now_ms: int) -> tuple[dict[str, int], int, float]:
        """Liquidations with ``ts > now - liq_window_s``: count by venue, total count, notional.

        Cached: a window counted at horizon ``h`` stays exact for any horizon in ``[h, e)``, ``e``
        being the oldest counted timestamp (nothing counted drops out, nothing older enters), until
        a liquidation arrives. A recount walks the deque in the same order, so the notional sum is
        bit for bit the one a fresh scan gives. The returned dict is shared: do not modify it."""
        horizon = now_ms - int(self.cfg.liq_window_s * 1000)
        win = self._liq_win
        if win is not None and win[0] <= horizon < win[1]:
            return win[2], win[3], win[4]
        by_venue: dict[str, int] = {}
        notional = 0.0
        first = math.inf
        for liq in self.liqs:
            ts = liq.ts
            if ts > horizon:
                by_venue[liq.venue] = by_venue.get(liq.venue, 0) + 1
                notional += liq.notional
                if ts < first:
                    first = ts
        count = sum(by_venue.values())
        self._liq_win = (horizon, first, by_venue, count, notional)
        return by_venue, count, notional

    def _liq_input(self, now_ms: int) -> tuple[float | None, str]:
        alive, why = self._liq_alive()
        return _age(now_ms, alive), why

    def _liq_alive(self) -> tuple[int | None, str]:
        """When the liquidation input was last known alive (its age runs from there) and why it is
        not, if a feed went down since; ``None`` while a venue has not been seen."""
        oldest: int | None = None
        for venue in self.cfg.liquidation_venues:
            alive = self.alive_ms.get(venue)
            if alive is None:
                return None, ""
            dead = self.dead.get(venue)
            if dead is not None and dead[0] > alive:
                return alive, dead[1]
            oldest = alive if oldest is None else min(oldest, alive)
        return oldest, ""

    def snapshot(self, now_ms: int) -> MarketSnapshot:
        cfg = self.cfg
        snap = MarketSnapshot(ts=now_ms, bars_seen=self.bars_seen)
        ages: dict[str, float | None] = dict.fromkeys(INPUT_NAMES)
        if (b := self.book) is not None:
            snap.best_bid, snap.best_ask, snap.spread_bps = b.bid_px, b.ask_px, b.spread_bps
            snap.bid_usd, snap.ask_usd = b.bid_usd, b.ask_usd
            ages["book"] = _age(now_ms, b.timestamp)
        if self.book_resync:
            snap.not_live["book"] = f"resyncing ({self.book_resync})"
        if (f := _pick(self.funding, cfg.funding_venue)) is not None:
            snap.funding_apr = f.apr_pct
            ages["funding"] = _age(now_ms, f.ts)
        if (o := _pick(self.oi, cfg.oi_venue)) is not None:
            oi_venues = self.derivs.oi_by_venue(now_ms, cfg.max_age.oi_s)
            chosen = [n for v, n in oi_venues.items() if not cfg.oi_venue or v == cfg.oi_venue]
            snap.oi_notional = sum(chosen) if chosen else o.oi_notional
            snap.oi_by_venue = oi_venues
            ages["oi"] = _age(now_ms, o.ts)
        snap.funding_by_venue = self.derivs.funding_by_venue(now_ms, cfg.max_age.funding_s,
                                                             cfg.max_age.oi_s)
        if (ba := self.basis) is not None:
            snap.basis_bps = ba.basis_bps
            ages["basis"] = _age(now_ms, ba.ts)
        by_venue, snap.liq_events_5m, snap.liq_notional_5m = self.liq_window(now_ms)
        snap.liq_by_venue = dict(by_venue)
        ages["liquidations"], why = self._liq_input(now_ms)
        if why:
            snap.not_live["liquidations"] = why
        if (last := self.last_bar) is not None:
            snap.last_close = last.close
            ages["bars"] = _age(now_ms, last.timestamp + MINUTE_MS)
        snap.atr_5m, snap.rsi, snap.obv, snap.obv_cliff = self.atr_5m, self.rsi, self.obv, self.obv_cliff()
        snap.ages_s = ages
        return snap
