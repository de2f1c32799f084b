"""The demo session's open interest, funding and OKX liquidations (issue 19), from a random
stream of their own so the rest of the session (trades, book, signals) is unchanged: Binance
``markPrice`` every 3 s, Binance REST ``openInterest`` every minute (``fundingInfo`` at connect),
OKX ``open-interest`` (USDT and USDC swaps) every 3-6 s and ``funding-rate`` every 30-60 s, and
a few OKX SOL-USDT-SWAP liquidations during the cascade."""

from __future__ import annotations

import random
from typing import Protocol

from feeds.demo import wire

SETTLE_MS = 28_800_000
OKX_INSTS = (wire.OKX_USDT_INST, wire.OKX_INST)


class Out(Protocol):
    def add(self, ts_ns: int, kind: str, conn: str, data: str, url: str = "", tag: str = "") -> None: ...


class DerivStreams:
    def __init__(self, out: Out, seed: int) -> None:
        self.out = out
        self.rng = random.Random(seed * 7919 + 19)
        self.next_mark = self.next_oi_rest = self.next_okx_oi = self.next_okx_funding = 0.0
        self.next_liq = 0.0
        self.oi = {"binance": 14_812_000.0, wire.OKX_USDT_INST: 2_950_000.0, wire.OKX_INST: 184_000.0}

    def connect(self, start_ns: int) -> None:
        self.out.add(start_ns - 2_300_000_000, "http", "binance.http.1", wire.binance_funding_info(),
                     url=wire.BINANCE_FUNDING_INFO_URL)

    def step(self, t0: int, step_ms: int, mid: float, funding: float, cascade: bool) -> None:
        """One session step at ``t0`` (ms): ``mid`` in USD, ``funding`` per 8 h."""
        rng, out = self.rng, self.out
        settle = (t0 // SETTLE_MS + 1) * SETTLE_MS
        for k in self.oi:
            self.oi[k] *= 1 + rng.gauss(0, 2e-6)
        if t0 >= self.next_mark:
            self.next_mark = t0 + 3000
            ts = t0 + rng.randrange(0, step_ms)
            out.add(ts * 1_000_000 + rng.randrange(3_000_000, 9_000_000), "recv", "binance.ws.1",
                    wire.binance_mark_price(mid, mid * (1 - 2e-4), funding * 0.9, settle, ts),
                    tag="binance.markPrice")
        if t0 >= self.next_oi_rest:
            self.next_oi_rest = t0 + 60_000
            ts = t0 + rng.randrange(0, step_ms)
            out.add(ts * 1_000_000 + rng.randrange(40_000_000, 90_000_000), "http", "binance.http.1",
                    wire.binance_open_interest(self.oi["binance"], ts), url=wire.BINANCE_OI_URL,
                    tag="binance.openInterest")
        if t0 >= self.next_okx_oi:
            self.next_okx_oi = t0 + rng.uniform(3000, 6000)
            for inst in OKX_INSTS:
                ts = t0 + rng.randrange(0, step_ms)
                out.add(ts * 1_000_000 + rng.randrange(8_000_000, 30_000_000), "recv", "okx.ws.1",
                        wire.okx_open_interest(inst, self.oi[inst], mid, ts), tag="okx.open-interest")
        if t0 >= self.next_okx_funding:
            self.next_okx_funding = t0 + rng.uniform(30_000, 60_000)
            for inst, f in zip(OKX_INSTS, (funding * 1.1, funding * 0.7), strict=True):
                ts = t0 + rng.randrange(0, step_ms)
                out.add(ts * 1_000_000 + rng.randrange(8_000_000, 30_000_000), "recv", "okx.ws.1",
                        wire.okx_funding_rate(inst, f, settle, ts), tag="okx.funding-rate")
        if cascade:
            if self.next_liq < t0:
                self.next_liq = t0 + rng.expovariate(1 / 40) * 1000
            if self.next_liq < t0 + step_ms:
                ts = int(self.next_liq)
                long = rng.random() < 0.8
                px = mid * (0.994 if long else 1.006)
                out.add(ts * 1_000_000 + rng.randrange(8_000_000, 30_000_000), "recv", "okx.ws.1",
                        wire.okx_liquidation(wire.OKX_USDT_INST, "long" if long else "short", px,
                                             round(rng.uniform(5, 120), 2), ts), tag="okx.liquidation")
                self.next_liq += rng.expovariate(1 / 40) * 1000
