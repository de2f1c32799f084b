"""Live market data: every venue connection and REST poller on one ``aiohttp.ClientSession``.

:class:`LiveFeeds` owns the session, one :class:`~feeds.transport.ws.WsConnection` per stream,
the REST pollers, the Binance snapshot worker and the health monitor; every task it starts is
kept and cancelled on shutdown, then the session is closed. Frames go to the
:class:`~feeds.pipeline.MarketPipeline` (``on_ws``/``on_http``), optionally through a recorder tap.

Open interest and funding are polled over REST on every venue (``derivs_poll_s``, 60 s), beside the
streams that carry them (Bybit ``tickers``, OKX ``open-interest``/``funding-rate``, Binance
``markPrice``); Binance has no open-interest stream. Each host's documented public limits are far
above these rates (per IP: Binance 2,400 request weight per minute, each of these calls weight 1,
``fundingInfo`` 500 per 5 minutes; OKX ``open-interest``/``funding-rate`` 20 per 2 s; Bybit 600
per 5 s), and every poller of a host shares its rate-limit gate (429/418/403 back off or stop it).

Entry point for the composition root::

    await run_live(cfg, bus, pipeline, stop_event, recorder=None, options=None)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from core.bus import Bus
from core.config_schema import Config
from core.models import ResyncNeeded
from feeds.pipeline import MarketPipeline
from feeds.transport.health import FeedHealth, HealthMonitor
from feeds.transport.rest import RestClient, RestTiming, classify_bybit, classify_generic
from feeds.transport.venues import Endpoints, endpoints, ws_specs
from feeds.transport.ws import Tap, Timing, WsConnection, WsSpec

log = logging.getLogger(__name__)

ALL_FEEDS = frozenset({"binance.public", "binance.market", "bybit.linear", "okx.public"})


@dataclass(slots=True)
class LiveOptions:
    """Knobs with production defaults; tests shrink the timings."""

    timing: Timing = field(default_factory=Timing)
    rest: RestTiming = field(default_factory=RestTiming)
    feeds: frozenset[str] = ALL_FEEDS
    status_interval_s: float = 1.0
    max_conn_age_s: float = 23.5 * 3600
    bybit_poll_s: float = 60.0
    derivs_poll_s: float = 60.0  # Binance / OKX open interest and funding over REST
    funding_info_poll_s: float = 3600.0  # Binance fundingInfo: an interval can change intraday
    instruments_refresh_s: float = 86_400.0
    spec_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # per feed name


class LiveFeeds:
    """The live transports of one process. ``await run(stop_event)`` until the event is set."""

    def __init__(self, cfg: Config, bus: Bus, pipeline: MarketPipeline, *, tap: Tap | None = None,
                 options: LiveOptions | None = None) -> None:
        self.cfg = cfg
        self.bus = bus
        self.pipeline = pipeline
        self.tap = tap
        self.options = opts = options or LiveOptions()
        self.endpoints: Endpoints = endpoints(cfg)
        self.monitor = HealthMonitor(bus, opts.status_interval_s, dropped=pipeline.dropped)
        self.specs: list[WsSpec] = []
        for spec in ws_specs(cfg, opts.max_conn_age_s):
            if spec.name not in opts.feeds:
                continue
            over = opts.spec_overrides.get(spec.name)
            if over:
                from dataclasses import replace

                spec = replace(spec, **over)
            self.specs.append(spec)
        self.connections: dict[str, WsConnection] = {}
        self.rest: RestClient | None = None
        self.session: aiohttp.ClientSession | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.resync_requests = 0
        self.snapshots_fetched = 0
        self._resync_wanted = asyncio.Event()
        self._refresh_wanted = asyncio.Event()
        self._instruments_ready = asyncio.Event()  # funding history needs the funding interval
        prev = pipeline.on_resync
        pipeline.on_resync = self._chain(prev)

    # ------------------------------------------------------------------ wiring
    def _chain(self, prev: Callable[[ResyncNeeded], None] | None) -> Callable[[ResyncNeeded], None]:
        def on_resync(ev: ResyncNeeded) -> None:
            if prev is not None:
                prev(ev)
            self.request_resync(ev)

        return on_resync

    def request_resync(self, ev: ResyncNeeded | None = None) -> None:
        """Ask for a Binance depth snapshot (coalesced; the codec keeps buffering diffs)."""
        self.resync_requests += 1
        conn = self.connections.get("binance.public")
        if conn is not None:
            conn.health.resyncs += 1
            if ev is not None:
                conn.health.detail = f"resync: {ev.reason}"
        self._resync_wanted.set()

    def refresh_static(self) -> None:
        """Fetch the snapshot and instruments again (the recorder calls this on file rotation so
        each hourly file replays on its own)."""
        if "binance.public" in self.connections:
            self._resync_wanted.set()
        self._refresh_wanted.set()

    @property
    def health(self) -> dict[str, FeedHealth]:
        return dict(self.monitor.feeds)

    def _spawn(self, factory: Callable[[], Coroutine[Any, Any, Any]], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(self._guard(factory, name), name=name)
        self.tasks.append(task)
        return task

    @staticmethod
    async def _guard(factory: Callable[[], Coroutine[Any, Any, Any]], name: str) -> None:
        """Run a supervised loop; an unexpected exception is logged and the loop restarted."""
        while True:
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task %s crashed; restarting in 1 s", name)
                await asyncio.sleep(1.0)

    # ------------------------------------------------------------------ workers
    async def _resync_worker(self) -> None:
        assert self.rest is not None
        url = self.endpoints.binance_depth_url
        while True:
            await self._resync_wanted.wait()
            self._resync_wanted.clear()
            await self.rest.get_until_ok("binance", url, classify_generic)
            self.snapshots_fetched += 1

    async def _static_worker(self) -> None:
        """Instruments at start, daily, and when asked (file rotation)."""
        assert self.rest is not None
        ep, opts = self.endpoints, self.options
        while True:
            self._refresh_wanted.clear()
            if "okx.public" in self.connections:
                for url in ep.okx_instruments_urls or (ep.okx_instruments_url,):
                    await self.rest.get_until_ok("okx", url, classify_generic)
            if "bybit.linear" in self.connections:
                await self.rest.get_until_ok("bybit", ep.bybit_instruments_url, classify_bybit)
            if "binance.market" in self.connections and ep.binance_funding_info_url:
                await self.rest.get_until_ok("binance", ep.binance_funding_info_url, classify_generic)
            self._instruments_ready.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refresh_wanted.wait(), opts.instruments_refresh_s)

    async def _poll_bybit(self, url: str) -> None:
        assert self.rest is not None
        await self._instruments_ready.wait()
        await self.rest.poll("bybit", url, self.options.bybit_poll_s, classify_bybit)

    async def _poll_derivs(self, venue: str, url: str) -> None:
        """Open interest / funding of Binance or OKX (after the instruments: ctVal, intervals)."""
        assert self.rest is not None
        await self._instruments_ready.wait()
        await self.rest.poll(venue, url, self.options.derivs_poll_s, classify_generic)

    async def _refresh_funding_info(self, url: str) -> None:
        """Binance funding intervals again every ``funding_info_poll_s`` (the first came with the
        instruments): Binance can shorten a symbol's interval within a day, and the APR follows it."""
        assert self.rest is not None
        await self._instruments_ready.wait()
        while True:
            await asyncio.sleep(self.options.funding_info_poll_s)
            await self.rest.get_until_ok("binance", url, classify_generic)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        opts = self.options
        connector = aiohttp.TCPConnector(limit=32, ttl_dns_cache=300, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, connect=opts.timing.connect_timeout_s,
                                          sock_connect=opts.timing.connect_timeout_s),
            headers={"User-Agent": "autotrader/0.1"},
        )
        self.rest = RestClient(self.session, self.pipeline.on_http, self.tap, opts.rest)
        for spec in self.specs:
            conn = WsConnection(spec, self.session, self.pipeline.on_ws, tap=self.tap, timing=opts.timing,
                                on_state=self.monitor.publish)
            self.connections[spec.name] = conn
            self.monitor.add(conn.health)
        ep = self.endpoints
        hosts = []
        if "binance.public" in self.connections or "binance.market" in self.connections:
            hosts.append(self.rest.gate("binance", ep.binance_depth_url))
        if "bybit.linear" in self.connections:
            hosts.append(self.rest.gate("bybit", ep.bybit_oi_url, max_age_s=3 * opts.bybit_poll_s + 30))
        if "okx.public" in self.connections:
            hosts.append(self.rest.gate("okx", ep.okx_instruments_url))
        for g in hosts:
            self.monitor.add(g.health)
        self._spawn(self.monitor.run, "feeds:monitor")
        if "binance.public" in self.connections:
            self._spawn(self._resync_worker, "feeds:binance-snapshot")
        self._spawn(self._static_worker, "feeds:instruments")
        if "bybit.linear" in self.connections:
            self._spawn(lambda: self._poll_bybit(ep.bybit_oi_url), "feeds:bybit-oi")
            self._spawn(lambda: self._poll_bybit(ep.bybit_funding_url), "feeds:bybit-funding")
        polls: list[tuple[str, str]] = []
        if "binance.market" in self.connections:
            polls += [("binance", u) for u in (ep.binance_oi_url, ep.binance_premium_url) if u]
        if "okx.public" in self.connections:
            polls += [("okx", u) for u in (*ep.okx_oi_urls, *ep.okx_funding_urls)]
        for venue, url in polls:
            self._spawn(functools.partial(self._poll_derivs, venue, url), f"feeds:{venue}-poll:{url}")
        if "binance.market" in self.connections and ep.binance_funding_info_url:
            self._spawn(functools.partial(self._refresh_funding_info, ep.binance_funding_info_url),
                        "feeds:binance-funding-info")
        for name, conn in self.connections.items():
            self._spawn(conn.run, f"feeds:ws:{name}")

    async def stop(self) -> None:
        tasks, self.tasks = self.tasks, []
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for t, r in zip(tasks, results, strict=True):
            if isinstance(r, Exception):
                log.error("task %s ended with %r", t.get_name(), r)
        for conn in self.connections.values():
            conn.health.on_disconnected("stopped")
        self.monitor.publish_all()
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def run(self, stop_event: asyncio.Event) -> None:
        await self.start()
        try:
            await stop_event.wait()
        finally:
            await self.stop()


async def run_live(cfg: Config, bus: Bus, pipeline: MarketPipeline, stop_event: asyncio.Event,
                   recorder: Tap | None = None, options: LiveOptions | None = None) -> LiveFeeds:
    """Run every live feed until ``stop_event`` is set; returns the (stopped) :class:`LiveFeeds`
    so the caller can read its counters. ``recorder`` (e.g. :class:`feeds.record.HourlyRecorder`)
    sees every frame before the codec does."""
    feeds = LiveFeeds(cfg, bus, pipeline, tap=recorder, options=options)
    if recorder is not None and hasattr(recorder, "on_rotate") and recorder.on_rotate is None:
        recorder.on_rotate = feeds.refresh_static
    await feeds.run(stop_event)
    return feeds
