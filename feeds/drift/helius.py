"""Helius webhook receiver: ``POST /webhooks/helius`` and ``GET /webhooks/helius/health``.

Authentication is Helius's: the webhook's configured ``authHeader`` value arrives verbatim in the
``Authorization`` header and is compared in constant time (:func:`hmac.compare_digest`). Then:
body size limit (413), JSON validation (400: not JSON, or not a transaction object / array of
them), dedupe on the signature (Helius retries, so duplicates are normal: the last
``dedupe_signatures`` are remembered in memory, and every kept signature in a
:class:`~core.onchain.SeenSignatures` store that survives restarts), keep only transactions
touching the Drift program id, and publish them on ``onchain:drift:events`` (storage persists them
to Parquet). The only I/O besides the socket is the seen-signature store (SQLite, WAL without
fsync per request), so it answers at once (Helius wants an answer within its timeout). The HTTP
side (:mod:`feeds.drift.webhook_server`) reads whole bodies, enforces header/body timeouts and a
connection cap, and binds loopback unless ``bind_public``.

Payloads: enhanced webhooks (``signature``, ``slot``, ``timestamp``, ``type``, ``source``,
``instructions[].programId``, ``accountData[].account``...) and raw ones (``transaction.signatures``,
``transaction.message.accountKeys``, ``blockTime``). "Touching" = the program id appears as any
string value of the transaction object (account keys, instruction program ids, inner instructions).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.bus import Bus
from core.onchain import DRIFT_EVENTS, DriftTxEvent, SeenSignatures
from feeds.drift.webhook_server import Answer, Request, ServerLimits, WebhookServer

log = logging.getLogger(__name__)
PATH = "/webhooks/helius"
_MAX_DEPTH = 12


@dataclass
class HeliusStats:
    requests: int = 0
    unauthorized: int = 0
    too_large: int = 0
    malformed: int = 0
    transactions: int = 0
    kept: int = 0
    duplicates: int = 0
    ignored: int = 0
    store_errors: int = 0  # failed reads/writes of the persisted seen-signature store
    last_kept_ms: int | None = None
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def _touches(obj: Any, program_id: str, depth: int = 0) -> bool:
    if isinstance(obj, str):
        return obj == program_id
    if depth > _MAX_DEPTH:
        return False
    if isinstance(obj, dict):
        return any(_touches(v, program_id, depth + 1) for v in obj.values())
    if isinstance(obj, list):
        return any(_touches(v, program_id, depth + 1) for v in obj)
    return False


def _signature(tx: dict[str, Any]) -> str | None:
    sig = tx.get("signature")
    if isinstance(sig, str) and sig:
        return sig
    inner = tx.get("transaction")
    if isinstance(inner, dict):
        sigs = inner.get("signatures")
        if isinstance(sigs, list) and sigs and isinstance(sigs[0], str) and sigs[0]:
            return sigs[0]
    return None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class HeliusReceiver:
    def __init__(
        self,
        bus: Bus,
        program_id: str,
        auth_header: str,
        *,
        max_body_bytes: int = 1024 * 1024,
        dedupe_signatures: int = 100_000,
        header_timeout_s: float = 5.0,
        body_timeout_s: float = 15.0,
        max_connections: int = 64,
        seen: SeenSignatures | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        if not auth_header:
            raise ValueError("the Helius receiver needs an auth header (venues.helius.auth_header)")
        self.bus = bus
        self.program_id = program_id
        self._auth = auth_header.encode()
        self.max_body_bytes = max_body_bytes
        self.dedupe_n = dedupe_signatures
        self.seen = seen
        self.now_ms = now_ms
        self.stats = HeliusStats()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.server = WebhookServer(self._head, self._handle, ServerLimits(
            max_body_bytes=max_body_bytes, header_timeout_s=header_timeout_s, body_timeout_s=body_timeout_s,
            max_connections=max_connections))
        self.url = ""

    # ------------------------------------------------------------------ the logic (no sockets)
    def authorized(self, header: str | None) -> bool:
        return hmac.compare_digest((header or "").encode(), self._auth)

    def handle(self, authorization: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for one POST."""
        st = self.stats
        st.requests += 1
        if not self.authorized(authorization):
            st.unauthorized += 1
            return 401, {"error": "unauthorized"}
        if len(body) > self.max_body_bytes:
            st.too_large += 1
            return 413, {"error": f"body larger than {self.max_body_bytes} bytes"}
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            st.malformed += 1
            return 400, {"error": "body is not JSON"}
        txs = [data] if isinstance(data, dict) else data
        if not isinstance(txs, list) or not all(isinstance(t, dict) for t in txs):
            st.malformed += 1
            return 400, {"error": "expected a transaction object or an array of them"}
        dup = ignored = 0
        now = self.now_ms()
        fresh: dict[str, dict[str, Any]] = {}
        for tx in txs:
            st.transactions += 1
            sig = _signature(tx)
            if sig is None:
                ignored += 1
            elif sig in fresh or self._is_duplicate(sig, now):
                dup += 1
            elif not _touches(tx, self.program_id):
                ignored += 1
            else:
                fresh[sig] = tx
        self._persist(list(fresh), now)
        for sig, tx in fresh.items():
            self._remember(sig)
            self.bus.publish(DRIFT_EVENTS, DriftTxEvent(
                signature=sig,
                slot=_int(tx.get("slot")),
                timestamp=_int(tx.get("timestamp", tx.get("blockTime"))),
                type=str(tx.get("type") or ""),
                source=str(tx.get("source") or ""),
                received_at=now,
                payload=orjson.dumps(tx).decode(),
            ))
        kept = len(fresh)
        st.kept += kept
        st.duplicates += dup
        st.ignored += ignored
        if kept:
            st.last_kept_ms = now
        return 200, {"received": len(txs), "kept": kept, "duplicates": dup, "ignored": ignored}

    def _is_duplicate(self, sig: str, now: int) -> bool:
        if sig in self._seen:
            self._seen.move_to_end(sig)
            return True
        if self.seen is not None:
            try:
                return self.seen.contains(sig, now)
            except OSError as e:
                self._store_failed(e)
        return False

    def _persist(self, sigs: list[str], now: int) -> None:
        """Durably remember the kept signatures; a failed write keeps the in-memory dedupe (a restart
        could then re-apply these deliveries) and is counted and logged, never a failed webhook."""
        if self.seen is None or not sigs:
            return
        try:
            self.seen.add(sigs, now)
        except OSError as e:
            self._store_failed(e)

    def _store_failed(self, e: OSError) -> None:
        self.stats.store_errors += 1
        if self.stats.store_errors in (1, 10, 100) or self.stats.store_errors % 1000 == 0:
            log.error("helius: the seen-signature store failed (%d so far): %s", self.stats.store_errors, e)

    def _remember(self, sig: str) -> None:
        self._seen[sig] = None
        while len(self._seen) > self.dedupe_n:
            self._seen.popitem(last=False)

    def health(self) -> dict[str, Any]:
        s, n = self.stats, self.server.stats
        return {"status": "ok", "program_id": self.program_id, "requests": s.requests, "kept": s.kept,
                "duplicates": s.duplicates, "ignored": s.ignored, "unauthorized": s.unauthorized,
                "malformed": s.malformed, "too_large": s.too_large + n.too_large,
                "store_errors": s.store_errors, "last_kept_ms": s.last_kept_ms,
                "connections": n.connections, "refused_busy": n.refused_busy,
                "header_timeouts": n.header_timeouts, "body_timeouts": n.body_timeouts,
                "bad_requests": n.bad_requests}

    # ------------------------------------------------------------------ HTTP
    def _head(self, req: Request) -> Answer | None:
        """Answer from the headers alone: route, method, auth (an unauthenticated body is never read)."""
        if req.path == PATH + "/health":
            return (200, self.health()) if req.method in ("GET", "HEAD") else (405, {"error": "use GET"})
        if req.path != PATH:
            return 404, {"error": "not found"}
        if req.method != "POST":
            return 405, {"error": "use POST"}
        auth = req.headers.get("authorization")
        if not self.authorized(auth):
            return self.handle(auth, b"")
        return None

    def _handle(self, req: Request, body: bytes) -> Answer:
        return self.handle(req.headers.get("authorization"), body)

    async def start(self, host: str, port: int, *, bind_public: bool = False) -> str:
        """Listen on ``host:port`` (loopback unless ``bind_public``); returns the base URL."""
        host, bound = await self.server.start(host, port, bind_public=bind_public)
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}"
        log.info("helius receiver on %s%s", self.url, PATH)
        return self.url

    async def close(self) -> None:
        await self.server.close()


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) → (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)
