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
from core.engine_types import EngineEvent, TradingState
from core.guards import GuardReport
from core.journal_port import OrderJournal
from core.storage_health import StorageHealth
from core.venue import Venue
from execution.engine import Engine
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
    from execution.velocity.venue import VelocityVenue

PAPER_KEY = "paper.account"
CONTROL_KEY = "engine.control"
DAY_KEY = "engine.day_start"  # the start-of-day equity, per UTC day
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
        self.async_venue: DriftVenue | VelocityVenue | None = None
        self.delegation: Any = None  # autotrader.drift_stack.DelegationWatch on Drift with a delegate
        self.venue: Venue = self._build_venue(clock)
        ecfg = engine_config(cfg)
        self.engine = Engine(
            bus,
            self.venue,
            clock,
            ecfg,
            self._on_event,
            equity=self.venue_equity if self.async_venue is not None else self.equity,
            equity_from_venue=self.async_venue is not None,
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
            day = self.store.get_json(DAY_KEY)
            if isinstance(day, dict) and isinstance(day.get("day"), int):
                self.engine.pnl.restore(int(day["day"]), float(day.get("equity") or 0.0))
            st = self.store

            def on_roll(day: int, equity: float) -> None:
                st.put_json(DAY_KEY, {"day": day, "equity": equity})  # kept in memory if the disk fails

            self.engine.pnl.on_roll = on_roll
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
        if self.cfg.engine.venue == "velocity":
            return self._build_velocity(clock)
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
        from autotrader.drift_stack import build_drift
        from execution.drift.factory import DriftSetupError
        from execution.signers.keystore import KeyStoreError

        try:
            venue = build_drift(self.cfg, clock, self._drift_journal(), default_data_dir())
        except (DriftSetupError, KeyStoreError) as e:
            raise VenueUnavailable(f"Drift venue: {e}") from e
        self.async_venue = venue
        return venue

    def _build_velocity(self, clock: Clock) -> Venue:
        """VelocityVenue (docs/VELOCITY_VENUE.md): keys, journal bindings and the journaled send
        path as for Drift."""
        from autotrader.config import default_data_dir
        from autotrader.drift_stack import journal_bindings
        from execution.signers.base import KeypairSigner, Signer
        from execution.signers.keystore import KeyStoreError, passphrase_source
        from execution.velocity.factory import (
            VelocitySetupError,
            build_velocity_venue,
            key_store,
            owner_signer,
        )

        cfg = self.cfg
        try:
            keys = key_store(cfg, passphrase_source(None), default_data_dir())
            signer: Signer = (KeypairSigner(keys.load(cfg.keys.delegate_name), "delegate")
                              if cfg.venues.velocity.use_delegate else owner_signer(cfg, keys))
            journal = self._drift_journal()
            restore, on_bind = journal_bindings(journal)
            venue = build_velocity_venue(cfg, clock, signer, on_bind=on_bind, restore=restore,
                                         journal=journal)
        except (VelocitySetupError, KeyStoreError) as e:
            raise VenueUnavailable(f"Velocity venue: {e}") from e
        self.async_venue = venue
        return venue

    def _drift_journal(self) -> JournalBuffer | Journal | None:
        """The journal as the on-chain venues need it (orders and signed transactions)."""
        j = self.journal
        return j if isinstance(j, JournalBuffer | Journal) else None

    async def start(self) -> None:
        """Connect a venue that needs it (Drift, Velocity: transactions the journal holds unresolved
        are followed again, first account read, then polling; Drift: the delegate session watch)."""
        if self.async_venue is not None:
            from autotrader.drift_stack import resume_sends
            from core.cluster import ClusterMismatch
            from core.secrets import redact_url
            from execution.drift.genesis import verify_cluster

            v = self.async_venue
            name = self.cfg.engine.venue
            chain_cfg = self.cfg.venues.velocity if name == "velocity" else self.cfg.venues.drift
            try:
                await verify_cluster(v.chain.rpc, chain_cfg.cluster)
            except ClusterMismatch as e:
                raise VenueUnavailable(f"{name.capitalize()} venue: {e}") from e
            try:
                n = resume_sends(v, self._drift_journal())  # type: ignore[arg-type]  # Velocity: same shape
                await v.start()
            except Exception as e:
                raise VenueUnavailable(f"{name.capitalize()} venue: cannot read the accounts at "
                                       f"{redact_url(chain_cfg.rpc_url)}: {e}") from e
            self._check_market_leverage()
            if n and self.log is not None:
                log_event(self.log, "unresolved transactions followed again", count=n)
            if chain_cfg.use_delegate:
                self._watch_delegation(v)  # type: ignore[arg-type]

    def _check_market_leverage(self) -> None:
        """guards.max_leverage above the market's own maximum would lie: refuse to start."""
        from core.guard_config import market_max_leverage

        chain = self.async_venue.chain if self.async_venue is not None else None
        pm = getattr(chain.view, "perp_market", None) if chain is not None else None
        if chain is not None and pm is None and hasattr(chain.view, "perp"):  # Velocity: by index
            pm = chain.view.perp.get(chain.market_index or 0)
        cap = market_max_leverage(int(getattr(pm, "margin_ratio_initial", 0) or 0))
        if cap is not None and self.cfg.guards.max_leverage > cap + 1e-9:
            raise VenueUnavailable(f"guards.max_leverage {self.cfg.guards.max_leverage:g} is above the "
                                   f"market's maximum {cap:g}x (initial margin {100 / cap:g} %)")

    def _watch_delegation(self, v: DriftVenue) -> None:
        from autotrader.config import default_data_dir
        from autotrader.drift_stack import DelegationWatch, owner_at_hand

        cfg = self.cfg
        watch: Any = DelegationWatch
        if cfg.engine.venue == "velocity":  # issue 17: the same watch on the Velocity program
            from autotrader.velocity_stack import VelocityDelegationWatch as watch
        self.delegation = watch(cfg, v, self.engine, self.store, self.engine.clock.now_ms,
                                lambda: owner_at_hand(cfg, default_data_dir()))
        u = v.chain.view.user
        if u is not None:
            self.delegation.check(getattr(u, "snapshot", u).delegate)
        self.delegation.start()

    async def aclose(self) -> None:
        if self.delegation is not None:
            await self.delegation.close()
        if self.async_venue is not None:
            await self.async_venue.close()
            await self.async_venue.chain.rpc.close()  # its own HTTP session (the genesis check opens it)

    def priority_fee(self) -> float | None:
        """The network's recent priority fee (before the cap) for the engine's preflight."""
        v = self.async_venue
        est = v.builder.last_estimate if v is not None else None
        return None if est is None else float(est)

    def venue_equity(self) -> float | None:
        """Drift: the account's total collateral (None when it cannot be read: fail closed)."""
        v = self.async_venue
        return None if v is None else v.equity()

    def _woken(self, venue: PaperVenue, handler: Callable[[M], None]) -> Callable[[M], None]:
        """Market input to the paper venue; a fill or trigger wakes the engine at once."""

        def on_input(msg: M) -> None:
            handler(msg)
            if venue.pending_events:
                self._wake()

        return on_input

    def equity(self) -> float:
        """For sizing: the paper account, or the Drift account's total collateral (0 when unknown:
        nothing is sized on an unknown equity)."""
        v = self.venue
        if isinstance(v, PaperVenue):
            return v.equity()
        if self.async_venue is not None:
            return self.venue_equity() or 0.0
        return self.cfg.paper.equity_usd

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
            chain_status = getattr(v, "velocity_status", getattr(v, "drift_status", None))
            decoded = chain_status() if callable(chain_status) else None
            if decoded is not None:  # a paused venue may still take cancels (the kill's)
                out["venue"]["cancels_allowed"] = bool(decoded.cancels_allowed)
        except Exception as e:  # the venue may be down: say so, never invent numbers
            out["venue_error"] = str(e)
        if isinstance(v, PaperVenue):
            out["equity"] = v.equity()
            out["equity_source"] = "paper account"
            out["unrealized_pnl"] = v.unrealized_pnl()
        if self.async_venue is not None:
            out.update(self.async_venue_status())
        out["state_db"] = str(self.state_db) if self.state_db is not None else None
        out["storage"] = self.health.as_dict()
        return out

    def async_venue_status(self) -> dict[str, Any]:
        """Drift: equity and its source, the delegate session, the liquidation price."""
        v = self.async_venue
        assert v is not None
        if self.cfg.engine.venue == "velocity":  # issue 17: no liquidation price from the chain here
            view: Any = v.chain.view
            return {
                "equity": v.equity(),
                "equity_source": "velocity: spot collateral + perp PnL at oracle prices, in USDT",
                "liq_price": None,
                "oracle_price": view.oracle_price / 1e6 if getattr(view, "oracle_live", False) else None,
                "delegation": self.delegation.verdict.to_json() if self.delegation is not None
                else {"badge": "OWNER KEY", "delegate": v.delegate(), "ok": True},
            }
        err = v.chain.view.equity_error  # type: ignore[union-attr]
        out: dict[str, Any] = {
            "equity": v.equity(),
            "equity_source": "drift: total collateral (initial weights, all markets)"
            + (f" — unknown: {err}" if err else ""),
            "liq_price": v.chain.liq_price(),  # type: ignore[union-attr]
            "oracle_price": v.chain.oracle_price(),  # type: ignore[union-attr]
        }
        if self.delegation is not None:
            out["delegation"] = self.delegation.verdict.to_json()
        else:
            out["delegation"] = {"badge": "OWNER KEY", "delegate": v.delegate(), "ok": True}
        return out

    def close(self) -> None:
        self.engine.close()
        for closable in (self.activity, self.journal, self.store):
            close = getattr(closable, "close", None)
            if close is not None:
                close()
