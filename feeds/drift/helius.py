"""Helius webhook receiver: ``POST /webhooks/helius`` and ``GET /webhooks/helius/health``.

Authentication is Helius's: the webhook's configured ``authHeader`` value arrives verbatim in the
``Authorization`` header and is compared in constant time (:func:`hmac.compare_digest`). Then:
body size limit (413), JSON validation (400: not JSON, or not a transaction object / array of
them), dedupe on the signature (Helius retries, so duplicates are normal; the last
``dedupe_signatures`` are remembered), keep only transactions touching the Drift program id, and
publish them on ``onchain:drift:events`` (storage persists them to Parquet). The handler does no
I/O beyond the socket, so it answers at once (Helius wants an answer within its timeout).

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
from aiohttp import web

from core.bus import Bus
from core.onchain import DRIFT_EVENTS, DriftTxEvent

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
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        if not auth_header:
            raise ValueError("the Helius receiver needs an auth header (venues.helius.auth_header)")
        self.bus = bus
        self.program_id = program_id
        self._auth = auth_header.encode()
        self.max_body_bytes = max_body_bytes
        self.dedupe_n = dedupe_signatures
        self.now_ms = now_ms
        self.stats = HeliusStats()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._runner: web.AppRunner | None = None
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
        kept = dup = ignored = 0
        now = self.now_ms()
        for tx in txs:
            st.transactions += 1
            sig = _signature(tx)
            if sig is None:
                ignored += 1
                continue
            if sig in self._seen:
                dup += 1
                self._seen.move_to_end(sig)
                continue
            if not _touches(tx, self.program_id):
                ignored += 1
                continue
            self._remember(sig)
            ev = DriftTxEvent(
                signature=sig,
                slot=_int(tx.get("slot")),
                timestamp=_int(tx.get("timestamp", tx.get("blockTime"))),
                type=str(tx.get("type") or ""),
                source=str(tx.get("source") or ""),
                received_at=now,
                payload=orjson.dumps(tx).decode(),
            )
            self.bus.publish(DRIFT_EVENTS, ev)
            kept += 1
        st.kept += kept
        st.duplicates += dup
        st.ignored += ignored
        if kept:
            st.last_kept_ms = now
        return 200, {"received": len(txs), "kept": kept, "duplicates": dup, "ignored": ignored}

    def _remember(self, sig: str) -> None:
        self._seen[sig] = None
        while len(self._seen) > self.dedupe_n:
            self._seen.popitem(last=False)

    def health(self) -> dict[str, Any]:
        s = self.stats
        return {"status": "ok", "program_id": self.program_id, "requests": s.requests, "kept": s.kept,
                "duplicates": s.duplicates, "ignored": s.ignored, "unauthorized": s.unauthorized,
                "malformed": s.malformed, "too_large": s.too_large, "last_kept_ms": s.last_kept_ms}

    # ------------------------------------------------------------------ HTTP
    async def _post(self, request: web.Request) -> web.Response:
        try:
            if not self.authorized(request.headers.get("Authorization")):
                status, answer = self.handle(request.headers.get("Authorization"), b"")
                return web.json_response(answer, status=status)
            if request.content_length is not None and request.content_length > self.max_body_bytes:
                self.stats.requests += 1
                self.stats.too_large += 1
                return web.json_response({"error": f"body larger than {self.max_body_bytes} bytes"},
                                         status=413)
            body = await request.content.read(self.max_body_bytes + 1)
            status, answer = self.handle(request.headers.get("Authorization"), body)
            return web.json_response(answer, status=status)
        except (ConnectionError, web.HTTPException):
            raise
        except Exception as e:  # never a 5xx for a client's bytes: this is our bug, logged
            log.exception("helius: unexpected error")
            return web.json_response({"error": f"rejected: {type(e).__name__}"}, status=400)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(self.health())

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes + 1)
        app.router.add_post(PATH, self._post)
        app.router.add_get(PATH + "/health", self._health)
        return app

    async def start(self, host: str, port: int) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        bound = server.sockets[0].getsockname()  # type: ignore[attr-defined]
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}"
        log.info("helius receiver on %s%s", self.url, PATH)
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) → (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)
