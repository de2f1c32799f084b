"""Feed the Parquet store from the bus: 1m bars, funding, open interest, liquidations, USDC trades,
and the minute signals feed (Parquet and, with ``signals_jsonl``, JSON lines)."""

from __future__ import annotations

from collections.abc import Callable

from core.bus import Bus, Topics
from core.minute_signals import SIGNALS_MINUTE, SIGNALS_VENUE, MinuteSignal
from core.models import Bar, Funding, Liquidation, OpenInterest, Trade
from storage.parquet_store import ParquetStore
from storage.signals_jsonl import SignalsJsonl


class StorageSink:
    """Subscribes to the market topics and hands each record to the store (which batches and
    flushes by its own window). Call :meth:`tick` about once a second so sparse kinds still flush
    within the window, and :meth:`close` at shutdown."""

    def __init__(self, bus: Bus, store: ParquetStore, bars_venue: str = "binance",
                 signals_jsonl: SignalsJsonl | None = None) -> None:
        self.store = store
        self.signals_jsonl = signals_jsonl
        self._offs: list[Callable[[], None]] = [
            bus.on(Topics.BARS, lambda b: self._bar(b, bars_venue)),
            bus.on(Topics.FUNDING, self._funding),
            bus.on(Topics.OPEN_INTEREST, self._oi),
            bus.on(Topics.LIQUIDATIONS, self._liq),
            bus.on(Topics.USDC_TRADES, self._usdc_trade),
            bus.on(SIGNALS_MINUTE, self._signal),
        ]

    def _bar(self, bar: Bar, venue: str) -> None:
        self.store.add("bars", venue, bar.symbol, bar)

    def _funding(self, f: Funding) -> None:
        self.store.add("funding", f.venue, f.symbol, f)

    def _oi(self, o: OpenInterest) -> None:
        self.store.add("open_interest", o.venue, o.symbol, o)

    def _liq(self, x: Liquidation) -> None:
        self.store.add("liquidations", x.venue, x.symbol, x)

    def _usdc_trade(self, t: Trade) -> None:
        self.store.add("usdc_trades", t.venue, t.symbol, t)

    def _signal(self, row: MinuteSignal) -> None:
        self.store.add("signals", SIGNALS_VENUE, row.symbol, row)
        if self.signals_jsonl is not None:
            self.signals_jsonl.write(row)

    def tick(self) -> bool:
        return self.store.maybe_flush()

    def close(self) -> None:
        for off in self._offs:
            off()
        self._offs.clear()
        if self.signals_jsonl is not None:
            self.signals_jsonl.close()
        self.store.close()
