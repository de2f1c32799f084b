"""The Velocity venue's delegate session watch: Drift's (:class:`autotrader.drift_stack
.DelegationWatch`: a revoke, another delegate or the end of the session turns automation off; at
the end it revokes when the owner key is at hand) reading and revoking through the Velocity program
(``[venues.velocity]`` ``session_ttl_h``, ``delegation_check_s``). The session record is the same
state key as Drift's (one delegate key for both venues): a session started on one counts on the
other, which can only end it earlier."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from autotrader.drift_stack import DelegationWatch
from core.config_schema import Config
from core.delegation import evaluate
from execution.signers.base import Signer

log = logging.getLogger(__name__)


class VelocityDelegationWatch(DelegationWatch):
    def __init__(
        self,
        cfg: Config,
        venue: Any,
        engine: Any,
        store: Any,
        now_ms: Callable[[], int],
        owner: Callable[[], Signer | None],
    ) -> None:
        super().__init__(cfg, venue, engine, store, now_ms, owner)
        self.ttl_ms = int(cfg.venues.velocity.session_ttl_h * 3_600_000)
        self.verdict = evaluate(self.expected, None, None, self.ttl_ms, now_ms())

    async def _revoke(self, owner: Signer) -> None:
        from execution.velocity.delegation import NO_DELEGATE, set_delegate

        venue: Any = self.venue
        try:
            sub = await set_delegate(venue.chain, venue.sender, owner, NO_DELEGATE)
            self.engine.record(
                "delegation",
                stage="revoked_at_expiry",
                signature=sub.signature,
                reason="session over: delegate revoked" if sub.landed else sub.reason,
            )
        except Exception as e:
            self.engine.record("delegation", stage="revoke_failed", reason=str(e))

    async def run(self) -> None:
        from execution.velocity.delegation import delegate_status

        venue: Any = self.venue
        while True:
            try:
                self.check((await delegate_status(venue.chain)).delegate)
            except Exception as e:  # unreadable: the venue's own staleness check fails closed
                log.info("delegate re-read failed: %s", e)
            await asyncio.sleep(self.cfg.venues.velocity.delegation_check_s)


def record_session_now(cfg: Config, delegate: str) -> None:
    """``delegate set`` starts the session (its TTL counts from now) in the live state database,
    unless a running instance owns it (its watch starts the session when it sees the key). The
    same steps as Drift's ``delegate set`` (autotrader/drift_cmd.py)."""
    import time

    from autotrader.config import state_db_path
    from autotrader.drift_stack import record_session
    from autotrader.state_claim import StateLockError, claim_state
    from storage.state_store import StateStore

    state = state_db_path(cfg, "live")
    try:
        lock = claim_state(state)
    except StateLockError:
        return
    store_db = StateStore(state)
    try:
        record_session(store_db, delegate, int(time.time() * 1000))
    finally:
        store_db.close()
        lock.release()
