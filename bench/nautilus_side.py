"""NautilusTrader's side of ``bench/bench_vs_nautilus.py``: run in a throwaway venv that has
``nautilus_trader`` and ``orjson`` (never the project's), pinned by the caller. Prints one JSON line.

Work measured, from Binance ``@trade`` frames already in memory to 1-minute bars: ``orjson.loads``,
one ``TradeTick`` per frame (``Price``/``Quantity`` at the instrument's precisions, aggressor side
from ``m``, trade id, event time), ``BacktestEngine.add_data`` + ``run`` with a strategy subscribed
to ``<instrument>-1-MINUTE-LAST-INTERNAL`` bars. The engine, venue, instrument and strategy are
built before the clock starts (our backtest's setup is outside its timing too). Best of N, wall
time and CPU time of the process.
"""

from __future__ import annotations

import gzip
import json
import sys
import time

import orjson
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import BarType, TradeTick
from nautilus_trader.model.enums import AccountType, AggressorSide, OmsType
from nautilus_trader.model.identifiers import TradeId, Venue
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy


class BarsConfig(StrategyConfig, frozen=True):
    bar_type: str


class CountBars(Strategy):
    def __init__(self, config: BarsConfig) -> None:
        super().__init__(config)
        self.bars = 0

    def on_start(self) -> None:
        self.subscribe_bars(BarType.from_str(self.config.bar_type))

    def on_bar(self, bar: object) -> None:
        self.bars += 1


def load_trades(path: str) -> list[bytes]:
    out = []
    with gzip.open(path, "rb") as fh:
        for line in fh:
            frame = line.rstrip(b"\r\n").partition(b" ")[2]
            if b'@trade"' in frame[:48]:
                out.append(frame)
    return out


def run_once(frames: list[bytes]) -> tuple[float, float, int]:
    inst = TestInstrumentProvider.btcusdt_perp_binance()
    eng = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    eng.add_venue(Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.MARGIN,
                  base_currency=None, starting_balances=[Money(1_000_000, USDT)])
    eng.add_instrument(inst)
    strat = CountBars(BarsConfig(bar_type=f"{inst.id}-1-MINUTE-LAST-INTERNAL"))
    eng.add_strategy(strat)
    iid, pp, sp = inst.id, inst.price_precision, inst.size_precision
    buyer, seller = AggressorSide.BUYER, AggressorSide.SELLER
    loads = orjson.loads
    t0, c0 = time.perf_counter(), time.process_time()
    ticks = []
    for f in frames:
        d = loads(f)["data"]
        ts = d["T"] * 1_000_000
        ticks.append(TradeTick(iid, Price(float(d["p"]), pp), Quantity(float(d["q"]), sp),
                               seller if d["m"] else buyer, TradeId(str(d["t"])), ts, ts))
    eng.add_data(ticks)
    eng.run()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    bars = strat.bars
    eng.dispose()
    return dt, cpu, bars


def main() -> None:
    path, repeat = sys.argv[1], int(sys.argv[2])
    frames = load_trades(path)
    best, best_cpu, bars = float("inf"), float("inf"), 0
    for _ in range(repeat):
        dt, cpu, bars = run_once(frames)
        best, best_cpu = min(best, dt), min(best_cpu, cpu)
    import nautilus_trader

    print(json.dumps({"nautilus_version": nautilus_trader.__version__, "trades": len(frames), "bars": bars,
                      "best_s": best, "trades_per_s": len(frames) / best, "cpu_s": best_cpu,
                      "trades_per_cpu_s": len(frames) / best_cpu}))


if __name__ == "__main__":
    main()
