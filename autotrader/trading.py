"""The trading side of one app instance: venue + engine + activity log + journal + metrics, on a bus.

Used by the runtime (live, replay, demo: durable state in the state database) and by the backtest
(everything in memory). The venue follows the market topics of the same bus the guards and the
signal read, so paper fills happen on exactly the market the engine sees.

Event path (safety principle 4, "nothing is lost"): engine event → activity log row (fsynced) →
metrics → JSON log line carrying the intent id → bus ``engine:events`` (UI, control clients).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from autotrader.logs import log_event
from autotrader.metrics import Metrics
from core.bus import Bus, Topics
from core.clock import Clock
from core.config_schema import Config, engine_config
from core.engine_types import EngineEvent
from core.guards import GuardReport
from core.journal_port import OrderJournal
from core.storage_health import StorageHealth
from core.venue import Venue
from execution.engine import Engine, TradingState
from execution.paper import PaperVenue
from storage.activity_log import ActivityLog
from storage.journal import Journal
from storage.journal_buffer import JournalBuffer
from storage.kill_marker import KillMarker
from storage.state_store import StateStore
from storage.write_buffer import ActivityBuffer, StateBuffer

M = TypeVar("M")
if TYPE_CHECKING:
    from execution.drift.venue import DriftVenue  # driftpy is imported only when Drift is used

PAPER_KEY = "paper.account"
CONTROL_KEY = "engine.control"
_CONTROL_KINDS = frozenset({"kill_switch", "automation", "trading_state"})


class VenueUnavailable(RuntimeError):
    """The configured venue cannot be built (e.g. not built yet, bad keys)."""


def build_paper(cfg: Config, clock: Clock, persist: Callable[[bytes], None] | None = None) -> PaperVenue:
    p = cfg.paper
    return PaperVenue(
        clock=clock,
        maker_fee_bps=p.maker_fee_bps,
        taker_fee_bps=p.taker_fee_bps,
        tick_size=p.tick_size,
        start_equity=p.equity_usd,
        funding=p.funding,
        latency_ms=p.latency_ms,
        slippage_ticks=p.slippage_ticks,
        queue_behind_factor=p.queue_behind_factor,
        mark_from_mid=True,
        persist=persist,
    )


class TradingStack:
    """``state_db=None``: in memory (backtests); otherwise the activity log, the journal, the paper
    account and the engine's control state live in that SQLite file and survive restarts.

    Storage fails closed (:class:`core.storage_health.StorageHealth`): a write the disk refuses is
    kept in memory and retried (:meth:`flush_storage`), and the engine takes no new risk until the
    operator resumes. A kill the database cannot record goes to a marker file (``storage.kill_marker``)
    so the next start is HALTED all the same."""

    def __init__(
        self,
        cfg: Config,
        bus: Bus,
        clock: Clock,
        *,
        state_db: Path | None,
        logger: logging.Logger | None = None,
        metrics: Metrics | None = None,
        guard_now: Callable[[], GuardReport | None] | None = None,
        guard_tick: Callable[[], object] | None = None,
        on_event: Callable[[EngineEvent], None] | None = None,
        runtime_dir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.bus = bus
        self.log = logger
        self.metrics = metrics
        self.extra_on_event = on_event
        self.state_db = state_db
        self.health = StorageHealth()
        self.activity: ActivityBuffer | None = None
        self.store: StateBuffer | None = None
        self.kill_marker: KillMarker | None = None
        journal: OrderJournal | None = None
        if state_db is not None:
            now = clock.now_ms
            self.activity = ActivityBuffer(ActivityLog(state_db), self.health, now_ms=now)
            journal = JournalBuffer(Journal(state_db), self.health, now_ms=now)
            self.store = StateBuffer(StateStore(state_db), self.health, now_ms=now)
            self.kill_marker = KillMarker(state_db, runtime_dir)
        self.journal = journal
        self._wake: Callable[[], None] = lambda: None  # the engine's, once it exists
        self.async_venue: DriftVenue | None = None
        self.venue: Venue = self._build_venue(clock)
        ecfg = engine_config(cfg)
        self.engine = Engine(
            bus,
            self.venue,
            clock,
            ecfg,
            self._on_event,
            equity=self.equity,
            priority_fee=self.priority_fee,
            journal=journal,
            guard_now=guard_now,
            guard_tick=guard_tick,
            on_latency=metrics.submit_confirmed if metrics is not None else None,
            storage_health=self.health,
        )
        self._wake = self.engine.wake
        if self.store is not None:
            saved = self.store.get_json(CONTROL_KEY)
            if isinstance(saved, dict):
                self.engine.restore_control(saved)
        self._restore_marked_kill()

    def _restore_marked_kill(self) -> None:
        """A kill only the marker file recorded (the database could not take it) still holds."""
        marker = self.kill_marker
        if marker is None:
            return
        found = marker.read()
        marker.prepare()
        if found is None:
            return
        marker.engaged = True
        reason = str(found.get("reason") or "kill switch engaged before restart")
        self.engine.restore_control({"trading_state": "halted", "automation_on": False,
                                     "kill_reason": reason})
        if self.log is not None:
            log_event(self.log, "kill restored from marker", logging.WARNING, reason=reason,
                      marker=found.get("path"))
        self._persist_control()

    def _build_venue(self, clock: Clock) -> Venue:
        if self.cfg.engine.venue == "drift":
            return self._build_drift(clock)
        return self._build_paper(clock)

    def _build_paper(self, clock: Clock) -> PaperVenue:
        """The paper venue on this bus's market (the only venue of :class:`autotrader.paper_stack
        .PaperTradingStack`: demo, replay, backtest)."""
        store = self.store
        persist: Callable[[bytes], None] | None = None
        if store is not None:
            def persist(blob: bytes) -> None:
                store.put(PAPER_KEY, blob)  # never raises for the disk: kept in memory, retried
        venue = build_paper(self.cfg, clock, persist)
        if store is not None:
            blob = store.get(PAPER_KEY)
            if blob is not None:
                summary = venue.load_state(blob)
                if self.log is not None:
                    log_event(self.log, "paper account restored", summary=summary)
        bus = self.bus
        bus.on(Topics.BOOK, self._woken(venue, venue.on_book))
        bus.on(Topics.TRADES, self._woken(venue, venue.on_trade))
        if self.cfg.paper.funding:
            bus.on(Topics.FUNDING, venue.on_funding)
        return venue

    def _build_drift(self, clock: Clock) -> Venue:
        """DriftVenue signing as the delegate (``venues.drift.use_delegate``) or the owner; keys come
        from the key store (the passphrase of an encrypted file is asked on the terminal, or read
        from ``AUTOTRADER_PASSPHRASE``). Bindings of client tags to user order ids are restored from
        the journal so open orders are recognised after a restart."""
        from autotrader.config import default_data_dir
        from execution.drift.factory import DriftSetupError, build_drift_venue, key_store, owner_signer
        from execution.drift.venue import TagBinding
        from execution.signers.base import KeypairSigner, Signer
        from execution.signers.keystore import KeyStoreError, passphrase_source

        cfg = self.cfg
        try:
            keys = key_store(cfg, passphrase_source(None), default_data_dir())
            signer: Signer
            if cfg.venues.drift.use_delegate:
                signer = KeypairSigner(keys.load(cfg.keys.delegate_name), "delegate")
            else:
                signer = owner_signer(cfg, keys)
            journal = self.journal
            restore = [TagBinding(o.client_tag, o.user_order_id, o.order_id or o.client_tag)
                       for o in (journal.open_orders() if journal is not None else []) if o.user_order_id]

            def on_bind(b: TagBinding) -> None:
                if journal is not None and journal.find_order(client_tag=b.client_tag) is not None:
                    journal.update_order(b.client_tag, order_id=b.order_id, user_order_id=b.user_order_id)

            venue = build_drift_venue(cfg, clock, signer, on_bind=on_bind, restore=restore)
        except (DriftSetupError, KeyStoreError) as e:
            raise VenueUnavailable(f"Drift venue: {e}") from e
        self.async_venue = venue
        return venue

    async def start(self) -> None:
        """Connect a venue that needs it (Drift: first account read, then polling)."""
        if self.async_venue is not None:
            from core.cluster import ClusterMismatch
            from core.secrets import redact_url
            from execution.drift.genesis import verify_cluster

            try:
                await verify_cluster(self.async_venue.chain.rpc, self.cfg.venues.drift.cluster)
            except ClusterMismatch as e:
                raise VenueUnavailable(f"Drift venue: {e}") from e
            try:
                await self.async_venue.start()
            except Exception as e:
                raise VenueUnavailable(f"Drift venue: cannot read the accounts at "
                                       f"{redact_url(self.cfg.venues.drift.rpc_url)}: {e}") from e
            self._check_market_leverage()

    def _check_market_leverage(self) -> None:
        """guards.max_leverage above the market's own maximum would lie: refuse to start."""
        from core.guard_config import market_max_leverage

        pm = self.async_venue.chain.view.perp_market if self.async_venue is not None else None
        cap = market_max_leverage(int(getattr(pm, "margin_ratio_initial", 0) or 0))
        if cap is not None and self.cfg.guards.max_leverage > cap + 1e-9:
            raise VenueUnavailable(f"guards.max_leverage {self.cfg.guards.max_leverage:g} is above the "
                                   f"market's maximum {cap:g}x (initial margin {100 / cap:g} %)")

    async def aclose(self) -> None:
        if self.async_venue is not None:
            await self.async_venue.close()
            await self.async_venue.chain.rpc.close()  # its own HTTP session (the genesis check opens it)

    def priority_fee(self) -> float | None:
        """The network's recent priority fee (before the cap) for the engine's preflight."""
        v = self.async_venue
        est = v.sender.last_estimate if v is not None else None
        return None if est is None else float(est)

    def _woken(self, venue: PaperVenue, handler: Callable[[M], None]) -> Callable[[M], None]:
        """Market input to the paper venue; a fill or trigger wakes the engine at once."""

        def on_input(msg: M) -> None:
            handler(msg)
            if venue.pending_events:
                self._wake()

        return on_input

    def equity(self) -> float:
        v = self.venue
        return v.equity() if isinstance(v, PaperVenue) else self.cfg.paper.equity_usd

    def _on_event(self, ev: EngineEvent) -> None:
        if self.activity is not None:
            self.activity.append_event(ev)  # durable before anything else sees it
        if self.metrics is not None:
            self.metrics.on_engine_event(ev)
        if self.log is not None:
            level = logging.WARNING if ev.kind in ("error", "kill_switch", "guard_block") else logging.INFO
            data = {"intent_id": ev.intent_id, "event_ts": ev.ts, **ev.data}
            self.log.log(level, ev.kind, extra={"data": data})
        if ev.kind in _CONTROL_KINDS:
            self._persist_control()
        if self.extra_on_event is not None:
            self.extra_on_event(ev)

    def _persist_control(self) -> None:
        """The engine's control state to the database; a kill it cannot take goes to the marker."""
        store, marker = self.store, self.kill_marker
        if store is None or marker is None:
            return
        durable = store.put_json(CONTROL_KEY, self.engine.control_state())
        if durable:
            if marker.engaged:
                marker.clear()
        elif self.engine.trading_state == TradingState.HALTED:
            where = marker.write(self.engine.killswitch.reason, self.engine.clock.now_ms())
            if self.log is not None:
                log_event(self.log, "kill recorded in the marker file" if where else
                          "kill NOT recorded: neither the database nor a marker file can be written",
                          logging.ERROR, marker=str(where) if where else None)

    def flush_storage(self) -> bool:
        """Write what waits in memory (about once a second); True when everything is durable."""
        if self.activity is not None:
            self.activity.flush()
        if self.journal is not None and isinstance(self.journal, JournalBuffer):
            self.journal.flush()
        if self.store is not None and self.store.flush() and self.kill_marker is not None \
                and self.kill_marker.engaged:
            self.kill_marker.clear()  # the database holds the control state again
        return self.health.ok

    async def status(self) -> dict[str, Any]:
        """Engine state plus what the venue says now (position, open orders, equity)."""
        out = self.engine.snapshot()
        m = self.engine.cfg.market
        v = self.venue
        try:
            pos = await v.position(m)
            orders = await v.open_orders(m)
            vs = await v.status()
            out["position"] = {"size": pos.size, "avg_price": pos.avg_price,
                               "realized_pnl": pos.realized_pnl, "fees": pos.fees, "funding": pos.funding}
            out["open_orders"] = [
                {"order_id": o.order_id, "tag": o.request.client_tag, "side": o.request.side,
                 "type": str(o.request.type), "size": o.request.size, "filled": o.filled,
                 "price": o.request.price, "trigger_price": o.request.trigger_price,
                 "reduce_only": o.request.reduce_only, "status": str(o.status)}
                for o in orders
            ]
            out["venue"] = {"name": v.name, "state": str(vs.state), "reason": vs.reason}
        except Exception as e:  # the venue may be down: say so, never invent numbers
            out["venue_error"] = str(e)
        if isinstance(v, PaperVenue):
            out["equity"] = v.equity()
            out["unrealized_pnl"] = v.unrealized_pnl()
        out["state_db"] = str(self.state_db) if self.state_db is not None else None
        out["storage"] = self.health.as_dict()
        return out

    def close(self) -> None:
        self.engine.close()
        for closable in (self.activity, self.journal, self.store):
            close = getattr(closable, "close", None)
            if close is not None:
                close()
