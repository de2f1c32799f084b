"""Prometheus metrics on 127.0.0.1 (``metrics.port``; 0 = off), one registry per app instance.

Metrics (prometheus-client appends ``_total`` to counters):

* ``orders_submitted_total{role}``, ``orders_filled_total{role}``, ``orders_cancelled_total{role}``,
  ``orders_rejected_total{role}`` (role = entry, sl, tp, ...), ``intents_rejected_total``,
  ``engine_errors_total{kind}`` (error, entry_abandoned, order_missing), ``guard_blocks_total``,
  ``order_submit_confirm_latency_seconds`` (histogram: submit until the venue confirmed the
  order: on-chain confirmation on Drift, the acknowledgement on paper), ``kill_switch_total``;
* ``trading_state`` (0 active, 1 reducing, 2 halted), ``automation_enabled``, ``venue_state``
  (0 active, 1 reduce-only, 2 paused, 3 down), ``equity_usd``, ``day_pnl_pct``,
  ``position_size``, ``unrealized_pnl_usd``, ``realized_pnl_usd`` (:meth:`Metrics.update_trading`,
  every second from :func:`refresh_loop`), ``autotrader_heartbeat_timestamp_seconds`` (wall
  time of that refresh: an instance whose loop stalls stops moving it), ``autotrader_info``;
* ``guard_status`` (0 passing, 1 warning, 2 breach, 3 stale) and ``guard_check_status{guard}`` from
  the ``guards`` topic; ``guard_breaches_total{guard}`` counts a check *entering* the breach level
  (reports repeat every minute, so counting reports would inflate it);
* ``feed_messages_total{feed}``, ``feed_reconnects_total{feed}``, ``feed_resyncs_total{feed}``,
  ``feed_errors_total{feed}`` from the cumulative counters of ``FeedStatus`` (incremented by
  delta; a counter that went down — the feed object was recreated — counts its new value),
  ``feed_state{feed}`` (0 live, 1 connecting, 2 stale, 3 down) and
  ``feed_last_message_age_seconds{feed}`` (staleness; absent while nothing was received).

The names the dashboard (``ops/grafana``) and the alert rules (``ops/prometheus/alerts.yml``)
query are exported from the start (a test scrapes a running instance for every one of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, make_wsgi_app

from core.bus import Bus, Topics
from core.engine_types import EngineEvent
from core.guard_config import GUARD_NAMES
from core.guards import GUARDS, RANK, GuardReport
from core.models import FeedStatus

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
FEED_STATE_VALUE = {"live": 0, "connecting": 1, "stale": 2, "down": 3}
TRADING_STATE_VALUE = {"active": 0, "reducing": 1, "halted": 2}
VENUE_STATE_VALUE = {"active": 0, "reduce_only": 1, "paused": 2, "down": 3}
ERROR_KINDS = ("error", "entry_abandoned", "order_missing")
_FEED_COUNTERS = ("messages", "reconnects", "resyncs", "errors")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingWSGIServer6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MetricsServer:
    """The HTTP exposition server (a daemon thread); ``close()`` stops it."""

    def __init__(self, httpd: WSGIServer, thread: threading.Thread, host: str) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host = host
        self.port = int(httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.orders_submitted = Counter(
            "orders_submitted", "Orders submitted to the venue", ["role"], registry=r
        )
        self.orders_filled = Counter("orders_filled", "Orders completely filled", ["role"], registry=r)
        self.orders_cancelled = Counter("orders_cancelled", "Orders cancelled", ["role"], registry=r)
        self.submit_latency = Histogram(
            "order_submit_confirm_latency_seconds",
            "Time from submitting an order to the venue confirming it",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.kills = Counter("kill_switch", "Kill switch activations", registry=r)
        self.orders_rejected = Counter("orders_rejected", "Orders the venue rejected", ["role"], registry=r)
        self.intents_rejected = Counter("intents_rejected", "Intents the engine refused", registry=r)
        self.errors = Counter("engine_errors", "Engine errors by kind", ["kind"], registry=r)
        self.guard_blocks = Counter("guard_blocks", "Entries blocked by the guards", registry=r)
        self.trading_state = Gauge("trading_state", "0 active, 1 reducing, 2 halted", registry=r)
        self.automation = Gauge("automation_enabled", "1 when signal automation is on", registry=r)
        self.venue_state = Gauge("venue_state", "0 active, 1 reduce-only, 2 paused, 3 down", registry=r)
        self.equity = Gauge("equity_usd", "Account equity (USD)", registry=r)
        self.day_pnl = Gauge("day_pnl_pct", "PnL of the UTC day, percent of start equity", registry=r)
        self.position = Gauge("position_size", "Signed position of the traded market (base units)",
                              registry=r)
        self.unrealized = Gauge("unrealized_pnl_usd", "Unrealized PnL of the position (USD)", registry=r)
        self.realized = Gauge("realized_pnl_usd", "Realized PnL of the position (USD)", registry=r)
        self.heartbeat = Gauge("autotrader_heartbeat_timestamp_seconds",
                               "Wall time of the last metrics refresh (unix seconds)", registry=r)
        self.info = Gauge("autotrader_info", "This instance", ["data_source", "venue"], registry=r)
        self.feed_age = Gauge("feed_last_message_age_seconds", "Seconds since the feed's last message",
                              ["feed"], registry=r)

        self.guard_status = Gauge(
            "guard_status", "Guard status: 0 passing, 1 warning, 2 breach, 3 stale", registry=r
        )
        self.guard_check_status = Gauge(
            "guard_check_status", "Level of one guard check: 0 passing, 1 warning, 2 breach, 3 stale",
            ["guard"], registry=r,
        )
        self.guard_breaches = Counter(
            "guard_breaches", "Times a guard check entered the breach level", ["guard"], registry=r
        )
        self.feed_counters = {
            name: Counter(f"feed_{name}", f"Feed {name} (from FeedStatus)", ["feed"], registry=r)
            for name in _FEED_COUNTERS
        }
        self.feed_state = Gauge(
            "feed_state", "Feed state: 0 live, 1 connecting, 2 stale, 3 down", ["feed"], registry=r
        )
        for c in (self.orders_submitted, self.orders_filled, self.orders_cancelled, self.orders_rejected):
            c.labels(role="entry")  # the series exist (at 0) before the first order
        for kind in ERROR_KINDS:
            self.errors.labels(kind=kind)
        for guard in GUARD_NAMES:
            self.guard_breaches.labels(guard=guard)
        # no report yet = stale (fail closed)
        self.guard_status.set(RANK["stale"])
        self._last_levels: dict[str, str] = {}
        self._last_feed: dict[tuple[str, str], int] = {}

    # --- engine hooks ------------------------------------------------------------------------

    def order_submitted(self, role: str = "entry") -> None:
        self.orders_submitted.labels(role=role).inc()

    def order_filled(self, role: str = "entry") -> None:
        self.orders_filled.labels(role=role).inc()

    def order_cancelled(self, role: str = "entry") -> None:
        self.orders_cancelled.labels(role=role).inc()

    def submit_confirmed(self, latency_s: float) -> None:
        if latency_s >= 0:
            self.submit_latency.observe(latency_s)

    def kill_switch(self) -> None:
        self.kills.inc()

    def on_engine_event(self, ev: EngineEvent) -> None:
        """Order counters from the engine's events (role: entry, convert, sl, tp, flat)."""
        k, role = ev.kind, str(ev.data.get("role", ""))
        if k == "order_submitted":
            self.order_submitted(role or "entry")
        elif k == "sl_placed":
            self.order_submitted("sl")
        elif k == "tp_placed":
            self.order_submitted("tp")
        elif k == "order_filled":
            self.order_filled(role or "entry")
        elif k == "sl_hit":
            self.order_filled("sl")
        elif k == "tp_hit":
            self.order_filled("tp")
        elif k == "order_cancelled":
            self.order_cancelled(role or "entry")
        elif k == "kill_switch" and ev.data.get("stage") == "engaged":
            self.kill_switch()
        elif k == "order_rejected":
            self.orders_rejected.labels(role=role or "entry").inc()
        elif k == "intent_rejected":
            self.intents_rejected.inc()
        elif k == "guard_block":
            self.guard_blocks.inc()
        elif k in ERROR_KINDS:
            self.errors.labels(kind=k).inc()

    def update_trading(self, snapshot: Mapping[str, Any], equity: float | None = None,
                       position: Mapping[str, Any] | None = None, unrealized: float | None = None) -> None:
        """Trading gauges from the engine's snapshot (and the venue's position when known)."""
        self.trading_state.set(TRADING_STATE_VALUE.get(str(snapshot.get("trading_state")), 2))
        self.automation.set(1 if snapshot.get("automation_on") else 0)
        self.venue_state.set(VENUE_STATE_VALUE.get(str(snapshot.get("venue_state")), 3))
        pnl = snapshot.get("day_pnl_pct")
        if isinstance(pnl, int | float):
            self.day_pnl.set(pnl)
        if equity is not None:
            self.equity.set(equity)
        if position is not None:
            self.position.set(float(position.get("size") or 0.0))
            self.realized.set(float(position.get("realized_pnl") or 0.0))
        if unrealized is not None:
            self.unrealized.set(unrealized)
        self.heartbeat.set(time.time())

    # --- bus hooks ---------------------------------------------------------------------------

    def on_guard_report(self, report: GuardReport) -> None:
        self.guard_status.set(RANK[report.status])
        for c in report.checks:
            if c.level == "skipped":
                continue
            self.guard_check_status.labels(guard=c.name).set(RANK[c.level])
            if c.level == "breach" and self._last_levels.get(c.name) != "breach":
                self.guard_breaches.labels(guard=c.name).inc()
            self._last_levels[c.name] = c.level
        seen = {c.name for c in report.checks if c.level != "skipped"}
        for name in list(self._last_levels):
            if name not in seen:
                del self._last_levels[name]

    def on_feed_status(self, st: FeedStatus) -> None:
        self.feed_state.labels(feed=st.feed).set(FEED_STATE_VALUE.get(st.state, 3))
        if st.last_msg_age_s is not None:
            self.feed_age.labels(feed=st.feed).set(st.last_msg_age_s)
        for name in _FEED_COUNTERS:
            value = int(getattr(st, name))
            key = (st.feed, name)
            last = self._last_feed.get(key, 0)
            delta = value - last if value >= last else value  # went down: the source restarted
            if delta > 0:
                self.feed_counters[name].labels(feed=st.feed).inc(delta)
            else:
                self.feed_counters[name].labels(feed=st.feed)  # expose the series at 0
            self._last_feed[key] = value

    def bind_bus(self, bus: Bus) -> Callable[[], None]:
        """Follow guard reports and feed status; returns a function that unsubscribes."""
        offs = [bus.on(GUARDS, self.on_guard_report), bus.on(Topics.FEED_STATUS, self.on_feed_status)]

        def off() -> None:
            for f in offs:
                f()

        return off

    # --- exposition --------------------------------------------------------------------------

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def start_http(self, host: str = "127.0.0.1", port: int = 0) -> MetricsServer | None:
        """Serve ``/metrics`` on ``host:port`` (loopback only); ``port == 0`` means off (None)."""
        if port == 0:
            return None
        if not 0 < port < 65536:
            raise ValueError(f"metrics.port must be 0 (off) or 1..65535, got {port}")
        if not _is_loopback(host):
            raise ValueError(f"metrics are served on loopback only (127.0.0.1 / ::1), got host {host!r}")
        server_class = _ThreadingWSGIServer6 if ":" in host else _ThreadingWSGIServer
        app = make_wsgi_app(self.registry)
        httpd = make_server(host, port, app, server_class, handler_class=_QuietHandler)
        thread = threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True)
        thread.start()
        return MetricsServer(httpd, thread, host)


async def refresh_loop(metrics: Metrics, snapshot: Callable[[], Mapping[str, Any]],
                       equity: Callable[[], float], status: Callable[[], Awaitable[Mapping[str, Any]]],
                       interval_s: float = 1.0, status_every: int = 5) -> None:
    """Trading gauges every ``interval_s``; the venue's position every ``status_every`` rounds
    (a venue call, bounded by a timeout: a slow venue never stalls the gauges)."""
    n = 0
    position: Mapping[str, Any] | None = None
    unrealized: float | None = None
    while True:
        if n % status_every == 0:
            with contextlib.suppress(Exception):
                st = await asyncio.wait_for(status(), timeout=max(interval_s * status_every, 1.0))
                pos = st.get("position")
                position = pos if isinstance(pos, Mapping) else position
                u = st.get("unrealized_pnl")
                unrealized = float(u) if isinstance(u, int | float) else unrealized
        metrics.update_trading(snapshot(), equity(), position, unrealized)
        n += 1
        await asyncio.sleep(interval_s)
