"""REST client with per-host rate-limit gates, and the pollers built on it.

Every response is classified (:class:`Outcome`): ``OK`` bodies are recorded (tap) and handed to
``on_body(venue, url, body, recv_ns)`` (``MarketPipeline.on_http``); ``RATE_LIMIT`` (HTTP 429,
Bybit retCode 10006/10018/10429, OKX 50011) blocks the whole host for ``Retry-After`` or a capped
exponential backoff; ``BANNED`` (HTTP 403, Binance 418) stops every request to the host for
``ban_s`` (10 minutes by default; a ban is at least that long) and says so in the host's
``FeedHealth`` (state ``down``, detail naming the ban and when polling resumes) and the log;
``RETRY`` (5xx, network errors) backs off; ``FAIL`` (other 4xx, malformed) waits for the next poll.
Only bodies that reach the codec are recorded, so a replay drives the codec exactly as live did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from urllib.parse import urlsplit

import aiohttp

from core.secrets import scrub
from feeds.bybit.rest import classify_bybit_response
from feeds.transport.backoff import Backoff
from feeds.transport.health import FeedHealth
from feeds.transport.ws import Tap

log = logging.getLogger(__name__)

BodySink = Callable[[str, str, bytes, int], None]
"""``(venue, url, body, recv_ns)``: MarketPipeline.on_http has this shape."""


class Outcome(Enum):
    OK = "ok"
    RATE_LIMIT = "rate_limit"
    BANNED = "banned"
    RETRY = "retry"
    FAIL = "fail"


def classify_generic(status: int, body: bytes) -> tuple[Outcome, str]:
    """Binance / OKX responses."""
    if status == 429:
        return Outcome.RATE_LIMIT, "HTTP 429"
    if status in (403, 418):
        return Outcome.BANNED, f"HTTP {status}"
    if status >= 500:
        return Outcome.RETRY, f"HTTP {status}"
    if status >= 400:
        return Outcome.FAIL, f"HTTP {status}: {body[:200]!r}"
    if b'"code":"50011"' in body[:100] or b'"code":"50061"' in body[:100]:  # OKX rate limit in a 200
        return Outcome.RATE_LIMIT, "OKX code 50011"
    return Outcome.OK, ""


def classify_bybit(status: int, body: bytes) -> tuple[Outcome, str]:
    st = classify_bybit_response(status, body)
    if st.ok:
        return Outcome.OK, ""
    if st.stop_host:
        return Outcome.BANNED, st.describe()
    if st.rate_limited:
        return Outcome.RATE_LIMIT, st.describe()
    if st.retryable:
        return Outcome.RETRY, st.describe()
    return Outcome.FAIL, st.describe()


Classify = Callable[[int, bytes], tuple[Outcome, str]]


@dataclass(slots=True)
class RestTiming:
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    ban_s: float = 600.0
    request_timeout_s: float = 15.0


class HostGate:
    """Rate-limit state of one host, shared by every poller of that host."""

    def __init__(self, name: str, timing: RestTiming, max_age_s: float) -> None:
        self.name = name
        self.timing = timing
        self.backoff = Backoff(timing.backoff_base_s, timing.backoff_cap_s)
        self.blocked_until = 0.0
        self.banned_until = 0.0
        self.bans = 0
        self.rate_limited = 0
        self.requests = 0
        self.health = FeedHealth(name, max_age_s)
        self.health.connected = True

    @property
    def banned(self) -> bool:
        return time.monotonic() < self.banned_until

    def wait_s(self) -> float:
        return max(0.0, max(self.blocked_until, self.banned_until) - time.monotonic())

    def note(self, outcome: Outcome, why: str, retry_after: float | None) -> None:
        now = time.monotonic()
        h = self.health
        if outcome is Outcome.OK:
            self.backoff.reset()
            h.forced_down = False
            h.connected = True
            h.on_data(now)
            h.detail = ""
            return
        h.errors += 1
        if outcome is Outcome.BANNED:
            self.bans += 1
            self.banned_until = now + self.timing.ban_s
            until = datetime.fromtimestamp(time.time() + self.timing.ban_s, UTC).strftime("%H:%M:%S")
            h.forced_down = True
            h.detail = f"{why}: IP banned by {self.name}; polling this host stopped until {until} UTC"
            log.error("%s", h.detail)
        elif outcome is Outcome.RATE_LIMIT:
            self.rate_limited += 1
            delay = max(retry_after or 0.0, self.backoff.next())
            self.blocked_until = now + delay
            h.detail = f"{why}: rate limited, backing off {delay:.1f}s"
            log.warning("%s: %s", self.name, h.detail)
        elif outcome is Outcome.RETRY:
            delay = self.backoff.next()
            self.blocked_until = now + delay
            h.detail = f"{why}: retrying in {delay:.1f}s"
            log.warning("%s: %s", self.name, h.detail)
        else:
            h.detail = why
            log.warning("%s: %s", self.name, why)


class RestClient:
    """GETs through per-host gates; OK bodies go to the tap (recorder) and ``on_body``."""

    def __init__(self, session: aiohttp.ClientSession, on_body: BodySink, tap: Tap | None = None,
                 timing: RestTiming | None = None) -> None:
        self.session = session
        self.on_body = on_body
        self.tap = tap
        self.timing = timing or RestTiming()
        self.gates: dict[str, HostGate] = {}
        self._n = 0

    def gate(self, venue: str, url: str, max_age_s: float = 1e9) -> HostGate:
        host = urlsplit(url).netloc
        key = f"{venue}.rest"
        g = self.gates.get(key)
        if g is None:
            g = self.gates[key] = HostGate(key, self.timing, max_age_s)
            log.debug("gate %s for host %s", key, host)
        return g

    async def get(self, venue: str, url: str, classify: Classify = classify_generic) -> Outcome:
        """One request (waiting out the host's gate first). Never raises except on cancel."""
        gate = self.gate(venue, url)
        wait = gate.wait_s()
        if wait > 0:
            await asyncio.sleep(wait)
        gate.requests += 1
        retry_after: float | None = None
        try:
            timeout = aiohttp.ClientTimeout(total=self.timing.request_timeout_s)
            async with self.session.get(url, timeout=timeout) as resp:
                body = await resp.read()
                status = resp.status
                ra = resp.headers.get("Retry-After")
                if ra is not None:
                    try:
                        retry_after = float(ra)
                    except ValueError:
                        retry_after = None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            gate.note(Outcome.RETRY, scrub(f"{type(exc).__name__}: {exc}", url), None)  # no API key shown
            return Outcome.RETRY
        recv_ns = time.time_ns()
        outcome, why = classify(status, body)
        gate.note(outcome, why, retry_after)
        if outcome is Outcome.OK:
            if self.tap is not None:
                self.tap.http(f"{venue}.http.0", url, body, recv_ns)
            try:
                self.on_body(venue, url, body, recv_ns)
            except Exception:
                gate.health.errors += 1
                log.exception("%s: body sink raised", gate.name)
        return outcome

    async def get_until_ok(self, venue: str, url: str, classify: Classify = classify_generic,
                           fail_wait_s: float = 30.0) -> None:
        """Retry (through the gate) until one OK response; a ban just makes it wait longer."""
        while True:
            outcome = await self.get(venue, url, classify)
            if outcome is Outcome.OK:
                return
            if outcome is Outcome.FAIL:
                await asyncio.sleep(fail_wait_s)

    async def poll(self, venue: str, url: str, interval_s: float,
                   classify: Classify = classify_generic) -> None:
        """GET ``url`` every ``interval_s`` forever (retrying through the gate when it fails)."""
        while True:
            await self.get_until_ok(venue, url, classify, fail_wait_s=interval_s)
            await asyncio.sleep(interval_s)
