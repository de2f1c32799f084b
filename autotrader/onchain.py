"""On-chain services of ``autotrader run``: the periodic liquidation-map scanner and the Helius
webhook receiver (with its Parquet store). Both optional:

* scanner: ``liqmap.scan = "live"`` (default) scans every ``liqmap.interval_s`` in live runs only,
  ``"always"`` also in replay/demo, ``"off"`` never; what it scans follows the engine's venue and
  cluster (``liqmap.source``). The stored map is published first, so the liq_gap guard has
  clusters right after a restart (while the map is younger than ``max_age_s``). When nothing is
  scanned, or a scan fails, ``liqmap_status`` says why (the guard report shows it).
* receiver: only when ``venues.helius.listen`` is set (loopback unless ``bind_public``); delivered
  signatures persist in ``<helius output dir>/seen.sqlite3`` so restarts do not re-apply them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from autotrader.liqmap_cmd import helius_dir, periodic_scans, scan_config, scan_target
from core.bus import Bus
from core.config_schema import Config
from feeds.drift.helius import HeliusReceiver, parse_listen
from feeds.drift.scanner import LiqMapScanner, ScanError
from storage.helius_seen import SqliteSeenSignatures
from storage.helius_store import HeliusStore

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


class OnchainServices:
    def __init__(self, cfg: Config, bus: Bus, live: bool, logger: logging.Logger, spawn: Spawn,
                 liqmap_status: Callable[[str], None] | None = None) -> None:
        self.cfg, self.bus, self.live, self.log, self.spawn = cfg, bus, live, logger, spawn
        self.liqmap_status = liqmap_status or (lambda _why: None)
        self.receiver: HeliusReceiver | None = None
        self.store: HeliusStore | None = None
        self.seen: SqliteSeenSignatures | None = None

    @property
    def scanning(self) -> bool:
        mode = self.cfg.liqmap.scan
        return mode == "always" or (mode == "live" and self.live)

    async def start(self) -> None:
        """Raises OSError when the receiver cannot bind (the runtime then refuses to start)."""
        h = self.cfg.venues.helius
        if h.listen:
            self.store = HeliusStore(self.bus, helius_dir(self.cfg))
            self.seen = SqliteSeenSignatures(helius_dir(self.cfg) / "seen.sqlite3", ttl_s=h.dedupe_ttl_s,
                                             max_entries=h.dedupe_signatures)
            rx = HeliusReceiver(self.bus, self.cfg.venues.drift.program_id, h.auth_header,
                                max_body_bytes=h.max_body_bytes, dedupe_signatures=h.dedupe_signatures,
                                header_timeout_s=h.header_timeout_s, body_timeout_s=h.body_timeout_s,
                                max_connections=h.max_connections, seen=self.seen)
            host, port = parse_listen(h.listen)
            url = await rx.start(host, port, bind_public=h.bind_public)
            self.receiver = rx
            self.log.info("helius receiver listening on %s/webhooks/helius", url)
            self.spawn(self._flush_loop(), "helius:flush")
        target, why = scan_target(self.cfg)
        if not self.scanning:
            mode = self.cfg.liqmap.scan
            self.liqmap_status("liqmap.scan = off" if mode == "off"
                               else f"not scanned on a replay (liqmap.scan = {mode})")
        elif target is None:
            self.liqmap_status(why)
            self.log.warning("liqmap: not scanning: %s", why)
        else:
            await self._check_scan_cluster()
            self.spawn(periodic_scans(self.cfg, self.bus, self.log, self.liqmap_status), "liqmap:scan")

    async def _check_scan_cluster(self) -> None:
        """A liq-map RPC serving another cluster than ``venues.drift.cluster`` refuses the start
        (ValueError); an RPC that does not answer yet is left to the scans (each one checks)."""
        import dataclasses

        target = scan_target(self.cfg)[0] or scan_config(self.cfg)  # the engine's venue (Velocity too)
        cfg = dataclasses.replace(target, retries=0, timeout_s=min(10.0, self.cfg.liqmap.timeout_s))
        scanner = LiqMapScanner(cfg)
        try:
            await scanner.verify_cluster()
        except ScanError as e:
            if e.refused:
                raise ValueError(f"liq-map scanner: {e}") from None
            self.log.warning("liq-map scanner: cannot check the RPC's cluster yet (%s); every scan does", e)
        finally:
            await scanner.close()

    async def _flush_loop(self) -> None:
        store = self.store
        assert store is not None
        while True:
            await asyncio.sleep(1.0)
            if store.pending():
                try:
                    await asyncio.to_thread(store.flush)
                except OSError as e:
                    self.log.error("helius store flush failed: %s", e)

    async def close(self) -> None:
        if self.receiver is not None:
            await self.receiver.close()
            self.receiver = None
        if self.store is not None:
            with contextlib.suppress(OSError):
                self.store.close()
            self.store = None
        if self.seen is not None:
            self.seen.close()
            self.seen = None
