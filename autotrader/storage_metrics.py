"""Metrics of the state database's writes, read from :class:`core.storage_health.StorageHealth` at
scrape time:

* ``storage_ok`` (1 every write durable, 0 some wait in memory: the engine takes no new risk);
* ``storage_failing{store}`` (store = journal, state, activity: 1 while its writes fail);
* ``storage_write_failures_total{store}``, ``storage_pending_writes{store}``;
* ``storage_dropped_rows_total{store}`` (the activity backlog overflowed: rows lost, also logged).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from autotrader.metrics import Metrics
from core.storage_health import StorageHealth

STORES = ("journal", "state", "activity")


class StorageCollector(Collector):
    def __init__(self, health: StorageHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        h = self.health
        stores = sorted(set(STORES) | set(h.failures_total) | set(h.pending) | set(h.dropped))
        ok = GaugeMetricFamily("storage_ok", "1 when every state write is durable, 0 while some wait")
        ok.add_metric([], 1.0 if h.ok else 0.0)
        yield ok
        failing = GaugeMetricFamily("storage_failing", "1 while the store's writes fail", labels=["store"])
        failures = CounterMetricFamily("storage_write_failures", "Writes the storage refused",
                                       labels=["store"])
        pending = GaugeMetricFamily("storage_pending_writes", "Writes waiting in memory", labels=["store"])
        dropped = CounterMetricFamily("storage_dropped_rows", "Rows lost to a full backlog", labels=["store"])
        for s in stores:
            failing.add_metric([s], 1.0 if s in h.failing else 0.0)
            failures.add_metric([s], float(h.failures_total.get(s, 0)))
            pending.add_metric([s], float(h.pending.get(s, 0)))
            dropped.add_metric([s], float(h.dropped.get(s, 0)))
        yield from (failing, failures, pending, dropped)


def bind_storage(metrics: Metrics, health: StorageHealth) -> None:
    metrics.registry.register(StorageCollector(health))
