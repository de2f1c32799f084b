"""Generate the synthetic demo session (deterministic: one ``random.Random(seed)``, no wall clock).

The session runs in 100 ms steps. Each step: aggressor trades hit the Binance touch, the touch
moves toward the planned mid (sweeping the side it moves through), the book re-quotes a few levels
and one ``depth@100ms`` diff plus a ``bookTicker`` with the same ``u`` go out. Bybit tickers
follow every 1-3 s, OKX SOL-USDC-SWAP trades follow Binance's mid with a short lag, and
liquidations arrive at the rate of the current regime. Binance mark price and open interest, OKX
open interest and funding and OKX liquidations come from :mod:`feeds.demo.derivs` (their own
random stream). All records are written in receive-time
order with :class:`~feeds.replay.RecordingWriter`.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from feeds.demo import wire
from feeds.demo.book import Print, SyntheticBook
from feeds.demo.derivs import DerivStreams
from feeds.demo.scenario import PLANNED_SIGNALS, REGIMES, Regime, phase_spans, plan_for
from feeds.replay import RecordingWriter

DEMO_VERSION = 2  # 2: open interest and funding from every venue, OKX liquidations (issue 19)
LABEL = "synthetic demo"
DEFAULT_START_MS = 1_741_565_100_000  # 2025-03-10 00:05:00 UTC: a fresh 00:00-anchored VWAP session
STEP_MS = 100
OPEN_TICK = 15_000  # 150.00 USDT


@dataclass(frozen=True, slots=True)
class DemoPhase:
    name: str
    start_minute: int
    end_minute: int  # exclusive
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class DemoInfo:
    """What :func:`generate_demo` wrote."""

    path: Path
    seed: int
    start_ms: int
    end_ms: int
    minutes: int
    version: int
    phases: tuple[DemoPhase, ...]
    planned_signals: tuple[tuple[int, str], ...]  # (bar minute index, "long"/"short")
    records: int
    counts: dict[str, int] = field(default_factory=dict)


class _Out:
    """Records buffered in receive-time order until no later step can precede them."""

    def __init__(self, writer: RecordingWriter) -> None:
        self.w = writer
        self.heap: list[tuple[int, int, str, str, str, str]] = []
        self.seq = 0
        self.counts: dict[str, int] = {}
        self.last_ns: dict[str, int] = {}

    def add(self, ts_ns: int, kind: str, conn: str, data: str, url: str = "", tag: str = "") -> None:
        """Queue a record; one connection delivers in the order its messages were produced."""
        ts_ns = max(ts_ns, self.last_ns.get(conn, 0) + 1000)
        self.last_ns[conn] = ts_ns
        self.seq += 1
        heapq.heappush(self.heap, (ts_ns, self.seq, kind, conn, url, data))
        if tag:
            self.counts[tag] = self.counts.get(tag, 0) + 1

    def drain(self, before_ns: int | None = None) -> None:
        h, w = self.heap, self.w
        while h and (before_ns is None or h[0][0] < before_ns):
            ts, _, kind, conn, url, data = heapq.heappop(h)
            if kind == "recv":
                w.write_recv(conn, data, ts_ns=ts)
            elif kind == "http":
                w.write_http(conn, url, data, ts_ns=ts)
            elif kind == "send":
                w.write_send(conn, data, ts_ns=ts, url=url)
            else:
                w.write_connect(conn, url, ts_ns=ts)


class _Session:
    def __init__(self, out: _Out, seed: int, start_ms: int) -> None:
        self.out = out
        self.rng = random.Random(seed)
        self.start_ms = start_ms
        self.book = SyntheticBook(self.rng, OPEN_TICK, 1)
        self.regime: Regime = REGIMES["trend"]
        self.noise = 0.0
        self.center = float(OPEN_TICK) + 0.5
        # ids
        self.agg_id = 2_183_000_000
        self.trade_id = 5_962_000_000
        self.update_id = 7_214_530_000_000
        self.okx_trade_id = 291_000_000
        self.bybit_cs = 281_406_000_000
        # session VWAP / bar state (mirrors core.bars for the plan's VWAP anchoring)
        self.pq = 0.0
        self.vol = 0.0
        self.bar_delta = 0
        self.flow = 0
        self.strict = False
        self.minute_from = float(OPEN_TICK)
        self.minute_to = float(OPEN_TICK)
        self.mids: deque[float] = deque(maxlen=64)
        self.next_trade = 0.0
        self.next_okx = 0.0
        self.next_ticker = 0.0
        self.next_bybit_liq = 0.0
        self.last_force_s = -1
        self._snap: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
        self.oi = 6_184_210.0
        self.funding = 0.00011
        self.ticker: dict[str, str] = {}
        self.turnover = 412_880_112.5
        self.volume = 2_716_540.2
        self.derivs = DerivStreams(out, seed)

    # ------------------------------------------------------------------ helpers
    def vwap_tick(self) -> float:
        return self.pq / self.vol if self.vol > 0 else (self.book.bid + self.book.ask) / 2

    def mid(self) -> float:
        return (self.book.bid + self.book.ask) / 2

    def _record_trade(self, p: Print, ts_ms: int) -> None:
        rng = self.rng
        fills = 1 + int(rng.expovariate(1 / 1.5))
        first = self.trade_id + 1
        self.trade_id += fills
        self.agg_id += 1
        recv = ts_ms * 1_000_000 + rng.randrange(3_000_000, 12_000_000)
        self.out.add(recv, "recv", "binance.ws.1",
                     wire.binance_agg_trade(self.agg_id, first, self.trade_id, p.tick, p.qty, p.sell, ts_ms,
                                            ts_ms + rng.randrange(0, 3)), tag="binance.aggTrade")
        self.pq += p.tick * p.qty
        self.vol += p.qty
        self.bar_delta += -p.qty if p.sell else p.qty
        self.turnover += p.tick * p.qty / 100
        self.volume += p.qty

    def _buy_prob(self, sec: float) -> float:
        prob = 0.5 + 0.08 * self.flow
        if self.strict and sec > 40 and self.bar_delta * self.flow < 60:
            prob = 0.5 + 0.42 * self.flow
        return prob

    # ------------------------------------------------------------------ per minute
    def start_minute(self, minute: int) -> None:
        plan = plan_for(minute)
        if REGIMES[plan.regime] is not self.regime:  # re-draw the waits at the new rates
            self.next_trade = self.next_okx = self.next_bybit_liq = 0.0
        self.regime = REGIMES[plan.regime]
        base = OPEN_TICK if plan.anchor == "open" else self.vwap_tick()
        self.minute_from = self.center
        self.minute_to = base * (1 + plan.bps / 1e4)
        self.flow = 1 if self.minute_to > self.minute_from else -1
        self.strict = plan.strict
        self.bar_delta = 0
        self.book.depth_scale = self.regime.depth_scale
        self.book.fill = self.regime.fill

    # ------------------------------------------------------------------ per step
    def step(self, step: int) -> None:
        rng, reg, book = self.rng, self.regime, self.book
        t0 = self.start_ms + step * STEP_MS
        sec = (step % 600) * STEP_MS / 1000
        # background trades at the touch
        end = float(t0 + STEP_MS - 2)  # the sweep and the diff close the step
        if self.next_trade < t0:
            self.next_trade = t0 + rng.expovariate(reg.trade_rate) * 1000
        while self.next_trade < end:
            ts = int(self.next_trade)
            sell = rng.random() >= self._buy_prob(sec)
            qty = max(1, round(math.exp(rng.gauss(1.0, 1.0))))
            self._record_trade(book.hit(qty, sell), ts)
            self.next_trade += rng.expovariate(reg.trade_rate) * 1000
        # planned path + wiggle -> touch
        ramp = 35.0 if reg.name in ("cascade", "slide") else 42.0
        x = min(1.0, sec / ramp)
        path = self.minute_from + (self.minute_to - self.minute_from) * (x * x * (3 - 2 * x))
        k = 0.01
        self.noise += -k * self.noise + reg.noise_ticks * math.sqrt(2 * k) * rng.gauss(0, 1)
        damp = 0.3 if self.strict and sec > 45 else 1.0
        target = path + self.noise * damp
        if abs(target - self.center) > 0.6:
            self.center = target
        spread = book.ask - book.bid
        if rng.random() < reg.wide_p or not reg.spread[0] <= spread <= reg.spread[1]:
            spread = rng.randint(*reg.spread) if rng.random() < 0.5 or reg.spread[0] > 1 else reg.spread[0]
        bid = math.floor(self.center - spread / 2)
        ts_diff = t0 + STEP_MS - 1
        sweep_ms = ts_diff - 1
        for p in book.move(bid, bid + spread, reg.sweep):
            self._record_trade(p, sweep_ms)
        book.refresh(rng.randint(3, 9))
        self.mids.append(self.mid())
        self._depth(step, ts_diff)
        self._bybit(t0)
        self._okx(t0)
        self._liquidations(t0)
        self.derivs.step(t0, STEP_MS, self.mid() / 100, self.funding, reg.name == "cascade")

    def _depth(self, step: int, ts_ms: int) -> None:
        rng, book = self.rng, self.book
        bids, asks = book.take_diff()
        first = self.update_id + 1
        final = first + rng.randrange(40, 900)
        prev = self.update_id
        self.update_id = final
        recv = ts_ms * 1_000_000 + rng.randrange(4_000_000, 14_000_000)
        if step == 2:  # the REST snapshot will show the book as of this diff's u
            self._snap = book.levels()
        elif step == 3:  # ... with a lastUpdateId inside this diff, so this diff is the first applied
            last = rng.randrange(first, final + 1)
            body = wire.binance_snapshot(last, *self._snap, ts_ms - 50, ts_ms - 45)
            self.out.add(recv - 1000, "http", "binance.http.1", body, url=wire.BINANCE_DEPTH_URL,
                         tag="binance.snapshot")
        e_ms = ts_ms + rng.randrange(1, 4)
        self.out.add(recv, "recv", "binance.ws.1",
                     wire.binance_depth(first, final, prev, bids, asks, ts_ms, e_ms), tag="binance.depth")
        b, bq, a, aq = book.top()
        self.out.add(recv + 1000, "recv", "binance.ws.1",
                     wire.binance_book_ticker(final, b, bq, a, aq, ts_ms, e_ms), tag="binance.bookTicker")

    def _bybit(self, t0: int) -> None:
        rng, reg = self.rng, self.regime
        if t0 < self.next_ticker:
            return
        first = not self.ticker
        self.next_ticker = t0 + rng.uniform(1000, 3000)
        mid = self.mid() * (1 + rng.gauss(0, 0.3) / 1e4)
        bid = math.floor(mid - 0.5)
        self.oi *= 1 + reg.oi_drift * 2 + rng.gauss(0, 2e-5)
        if first or rng.random() < 0.04:
            self.funding += (reg.funding - self.funding) * 0.5 + rng.gauss(0, 2e-6)
        lag = self.mids[0] if self.mids else mid
        index = (0.7 * lag + 0.3 * mid) * (1 + 2e-4)
        single = round(self.oi / 2, 1)
        fields = {
            "lastPrice": wire.px3(bid + (1 if rng.random() < 0.5 else 0)),
            "markPrice": wire.px3(round(mid)), "indexPrice": wire.dec(index / 100, 3),
            "openInterest": wire.dec(single * 2, 1), "openInterestValue": wire.dec(single * 2 * mid / 100, 2),
            "singleOpenInterest": wire.dec(single, 1),
            "singleOpenInterestValue": wire.dec(single * mid / 100, 2),
            "turnover24h": wire.dec(self.turnover * 0.93, 4), "volume24h": wire.dec(self.volume * 0.93, 4),
            "fundingRate": wire.rate(self.funding),
            "bid1Price": wire.px3(bid), "bid1Size": wire.dec(rng.uniform(20, 900) * reg.depth_scale, 1),
            "ask1Price": wire.px3(bid + 1), "ask1Size": wire.dec(rng.uniform(20, 900) * reg.depth_scale, 1),
        }
        if first:
            next_funding = (t0 // 28_800_000 + 1) * 28_800_000
            fields = {"tickDirection": "ZeroPlusTick", "price24hPcnt": "0.02114", **fields,
                      "prevPrice24h": "146.520", "highPrice24h": "153.880", "lowPrice24h": "144.910",
                      "prevPrice1h": "149.630", "fundingIntervalHour": "8", "fundingCap": "0.005",
                      "nextFundingTime": str(next_funding), "preOpenPrice": "", "preQty": "",
                      "curPreListingPhase": ""}
            delta = fields
        else:
            delta = {k: v for k, v in fields.items() if self.ticker.get(k) != v and rng.random() < 0.9}
            if not delta:
                return
        self.ticker.update(fields)
        self.bybit_cs += rng.randrange(200, 9000)
        ts = t0 + rng.randrange(0, STEP_MS)
        self.out.add(ts * 1_000_000 + rng.randrange(5_000_000, 20_000_000), "recv", "bybit.ws.1",
                     wire.bybit_ticker("snapshot" if first else "delta", delta, self.bybit_cs, ts),
                     tag="bybit.ticker")

    def _okx(self, t0: int) -> None:
        rng, reg = self.rng, self.regime
        if self.next_okx < t0:
            self.next_okx = t0 + rng.expovariate(reg.okx_rate) * 1000
        lag = self.mids[-1 - min(reg.okx_lag_steps, len(self.mids) - 1)]
        while self.next_okx < t0 + STEP_MS:
            ts = int(self.next_okx)
            buy = rng.random() < 0.5 + 0.08 * self.flow
            fair = lag * (1 + (reg.basis_bps + rng.gauss(0, 1.0)) / 1e4)
            tick = math.floor(fair) + (1 if buy else 0)
            sz = max(0.01, round(math.exp(rng.gauss(1.3, 1.1)), 2))
            self.okx_trade_id += rng.randrange(1, 4)
            self.out.add(ts * 1_000_000 + rng.randrange(8_000_000, 30_000_000), "recv", "okx.ws.1",
                         wire.okx_trade(self.okx_trade_id, tick, sz, "buy" if buy else "sell", ts),
                         tag="okx.trade")
            self.next_okx += rng.expovariate(reg.okx_rate) * 1000

    def _liquidations(self, t0: int) -> None:
        rng, reg, book = self.rng, self.regime, self.book
        second = t0 // 1000
        # Binance pushes at most the latest liquidation per symbol per second
        p_step = 1 - (1 - min(reg.liq_binance, 0.99)) ** (STEP_MS / 1000)
        if second != self.last_force_s and rng.random() < p_step:
            self.last_force_s = second
            long = rng.random() < reg.liq_long
            qty = max(1, round(math.exp(rng.gauss(3.1, 1.0))))
            avg = book.bid if long else book.ask
            bankrupt = round(avg * (1 - 0.006) if long else avg * (1 + 0.006))
            ts = t0 + rng.randrange(0, STEP_MS)
            self.out.add(ts * 1_000_000 + rng.randrange(3_000_000, 12_000_000), "recv", "binance.ws.1",
                         wire.binance_force_order("SELL" if long else "BUY", bankrupt, avg, qty, ts, ts + 1),
                         tag="binance.forceOrder")
        if self.next_bybit_liq < t0:
            self.next_bybit_liq = t0 + rng.expovariate(reg.liq_bybit) * 1000
        if self.next_bybit_liq < t0 + STEP_MS:
            ts = int(self.next_bybit_liq)
            n = 1 + (int(rng.expovariate(1 / 1.2)) if reg.liq_bybit > 0.5 else 0)
            items = []
            for _ in range(n):
                long = rng.random() < reg.liq_long
                px = book.bid - rng.randrange(0, 30) if long else book.ask + rng.randrange(0, 30)
                size = round(math.exp(rng.gauss(3.3, 1.1)), 1) or 0.1
                items.append((ts - rng.randrange(0, 400), "Buy" if long else "Sell", size, px))
            items.sort()
            self.out.add(ts * 1_000_000 + rng.randrange(5_000_000, 20_000_000), "recv", "bybit.ws.1",
                         wire.bybit_liquidations(items, ts), tag="bybit.allLiquidation")
            self.next_bybit_liq += rng.expovariate(reg.liq_bybit) * 1000

    # ------------------------------------------------------------------ session start
    def connect(self) -> None:
        rng, out, s = self.rng, self.out, self.start_ms * 1_000_000
        out.add(s - 2_400_000_000, "http", "okx.http.1", wire.okx_instruments(), url=wire.OKX_INSTRUMENTS_URL)
        self.derivs.connect(s)
        out.add(s - 2_000_000_000, "connect", "binance.ws.1", "", url=wire.BINANCE_WS_URL)
        out.add(s - 1_900_000_000, "connect", "bybit.ws.1", "", url=wire.BYBIT_WS_URL)
        args = [f"tickers.{wire.SYMBOL}", f"allLiquidation.{wire.SYMBOL}"]
        sub = wire.bybit_subscribe("1", args)
        out.add(s - 1_880_000_000, "send", "bybit.ws.1", sub, url=wire.BYBIT_WS_URL)
        conn_id = f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}"
        out.add(s - 1_700_000_000, "recv", "bybit.ws.1", wire.bybit_ack("1", conn_id))
        out.add(s - 1_600_000_000, "connect", "okx.ws.1", "", url=wire.OKX_WS_URL)
        out.add(s - 1_580_000_000, "send", "okx.ws.1", wire.okx_subscribe(), url=wire.OKX_WS_URL)
        out.add(s - 1_400_000_000, "recv", "okx.ws.1", wire.okx_ack(f"{rng.getrandbits(32):08x}"))


def generate_demo(
    path: Path, *, seed: int = 7, minutes: int = 45, start_ms: int = DEFAULT_START_MS
) -> DemoInfo:
    """Write the synthetic demo session to ``path`` (compression from its suffix, as the writer)."""
    if minutes < 1:
        raise ValueError("minutes must be >= 1")
    path = Path(path)
    spans = phase_spans(minutes)
    phases = tuple(DemoPhase(n, a, b, start_ms + a * 60_000, start_ms + b * 60_000) for n, a, b in spans)
    planned = tuple((m, k) for m, k in PLANNED_SIGNALS if m < minutes - 1)
    meta = {
        "synthetic": True, "label": LABEL, "generator": "feeds.demo", "generator_version": DEMO_VERSION,
        "seed": seed, "start_ms": start_ms, "minutes": minutes,
        "phases": [{"name": p.name, "start_minute": p.start_minute, "end_minute": p.end_minute}
                   for p in phases],
        "planned_signals": [{"minute": m, "side": k} for m, k in planned],
    }
    created = start_ms * 1_000_000 - 3_000_000_000
    with RecordingWriter(path, meta=meta, flush_every=1 << 40, flush_interval_s=math.inf,
                         clock_ns=lambda: created) as writer:
        out = _Out(writer)
        sess = _Session(out, seed, start_ms)
        sess.connect()
        for step in range(minutes * 600):
            if step % 600 == 0:
                sess.start_minute(step // 600)
            out.drain((start_ms + step * STEP_MS) * 1_000_000)
            sess.step(step)
        out.drain()
        records = writer.records
    return DemoInfo(path, seed, start_ms, start_ms + minutes * 60_000, minutes, DEMO_VERSION, phases, planned,
                    records, dict(out.counts))
