"""The Drift liquidation-map scanner: getProgramAccounts over every non-idle User account, decode
and solve with :mod:`core.liqmap`, publish on ``onchain:drift:liq_map``.

getProgramAccounts over Drift's users is slow and large on mainnet (hundreds of MB, minutes), so:
one long timeout per call (``timeout_s``), retries with capped exponential backoff and jitter on
timeouts / HTTP 429 / 5xx / retryable JSON-RPC errors, the body streamed in chunks with progress
reported (bytes received, then accounts decoded) through a callback.

Filters: the User discriminator at 0 and ``idle == 0`` at 4350 (driftpy's
``get_non_idle_user_filter``). SOL-PERP is market index 0, the value empty position slots hold,
so the market filter is client-side (a non-zero base in a slot of that market).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import base58
import orjson
from driftpy.addresses import get_perp_market_public_key
from solders.pubkey import Pubkey

from core.cluster import ClusterMismatch, check_cluster
from core.liqmap import IDLE_OFFSET, USER_DISCRIMINATOR, USER_SIZE, LiqMap, MarketParams, build_map
from core.liqmap_fast import scan_buffer
from core.secrets import redact_url, scrub
from feeds.drift.markets import decode, discriminator, market_params, oracle_price, variant
from feeds.transport.backoff import Backoff

log = logging.getLogger(__name__)

#: (stage, done, total): stage "download" counts bytes (total 0 when unknown), "decode" accounts
Progress = Callable[[str, int, int], None]
_RETRYABLE_CODES = {-32002, -32004, -32005, -32007, -32014, -32016}


class ScanError(Exception):
    def __init__(self, message: str, *, retryable: bool = False, refused: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.refused = refused  # the RPC serves another cluster than the configured one


@dataclass(frozen=True)
class ScanConfig:
    rpc_url: str
    program_id: str
    market_index: int = 0
    timeout_s: float = 120.0
    retries: int = 4  # attempts after the first
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    bucket_bps: float = 25.0
    progress_every: int = 10_000  # accounts between decode progress reports
    cluster: str = ""  # the configured label: the RPC's genesis hash must match ("" = not checked)


class JsonRpc:
    """Minimal JSON-RPC over aiohttp, streaming the answer so progress can be reported."""

    def __init__(self, cfg: ScanConfig, progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.progress = progress
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call_once(self, method: str, params: list[Any], report: bool) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s)
        try:
            async with self._session.post(self.cfg.rpc_url, json=body, timeout=timeout) as resp:
                if resp.status == 429 or resp.status >= 500:
                    raise ScanError(f"{method}: HTTP {resp.status}", retryable=True)
                if resp.status >= 400:
                    raise ScanError(f"{method}: HTTP {resp.status}")
                total = resp.content_length or 0
                chunks: list[bytes] = []
                got = 0
                async for chunk in resp.content.iter_chunked(1 << 20):
                    chunks.append(chunk)
                    got += len(chunk)
                    if report and self.progress is not None:
                        self.progress("download", got, total)
                data = orjson.loads(b"".join(chunks))
        except ScanError:
            raise
        except TimeoutError:
            raise ScanError(f"{method}: timed out after {self.cfg.timeout_s:g} s", retryable=True) from None
        except (aiohttp.ClientError, orjson.JSONDecodeError) as e:  # never the URL's API key
            why = scrub(f"{method}: {type(e).__name__}: {e}", self.cfg.rpc_url)
            raise ScanError(why, retryable=True) from None
        if not isinstance(data, dict):
            raise ScanError(f"{method}: unexpected answer", retryable=True)
        err = data.get("error")
        if err is not None:
            code = int(err.get("code", 0)) if isinstance(err, dict) else 0
            msg = str(err.get("message", err)) if isinstance(err, dict) else str(err)
            raise ScanError(f"{method}: {msg} (code {code})", retryable=code in _RETRYABLE_CODES)
        return data.get("result")

    async def call(self, method: str, params: list[Any], report: bool = False) -> Any:
        """One call, retried on retryable failures with capped exponential backoff + jitter."""
        backoff = Backoff(self.cfg.backoff_base_s, self.cfg.backoff_cap_s)
        for attempt in itertools.count():
            try:
                return await self._call_once(method, params, report)
            except ScanError as e:
                if not e.retryable or attempt >= self.cfg.retries:
                    raise
                delay = backoff.next()
                log.warning("liqmap: %s; retry %d/%d in %.1f s", e, attempt + 1, self.cfg.retries, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def multiple_accounts(self, keys: Sequence[str]) -> tuple[int, list[bytes | None]]:
        res = await self.call(
            "getMultipleAccounts", [list(keys), {"encoding": "base64", "commitment": "confirmed"}]
        )
        try:
            out = [None if a is None else base64.b64decode(a["data"][0]) for a in res["value"]]
            return int(res["context"]["slot"]), out
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise ScanError(f"getMultipleAccounts: malformed answer ({type(e).__name__}: {e})") from None

    async def program_accounts(
        self, program: str, filters: list[dict[str, Any]], report: bool = False
    ) -> tuple[int, list[tuple[str, str]]]:
        """(slot, [(pubkey, base64 data)])"""
        opts = {"encoding": "base64", "commitment": "confirmed", "withContext": True, "filters": filters}
        res = await self.call("getProgramAccounts", [program, opts], report)
        try:
            return self._parse_program_accounts(res)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise ScanError(f"getProgramAccounts: malformed answer ({type(e).__name__}: {e})") from None

    @staticmethod
    def _parse_program_accounts(res: Any) -> tuple[int, list[tuple[str, str]]]:
        if isinstance(res, dict):
            slot, items = int(res.get("context", {}).get("slot", 0)), res.get("value") or []
        else:
            slot, items = 0, res or []
        return slot, [(str(i["pubkey"]), str(i["account"]["data"][0])) for i in items]


def memcmp(offset: int, data: bytes) -> dict[str, Any]:
    return {"memcmp": {"offset": offset, "bytes": base58.b58encode(data).decode()}}


USER_FILTERS = [memcmp(0, USER_DISCRIMINATOR), memcmp(IDLE_OFFSET, b"\x00")]


class LiqMapScanner:
    def __init__(self, cfg: ScanConfig, progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.progress = progress
        self.rpc = JsonRpc(cfg, progress)
        self.last: LiqMap | None = None

    async def close(self) -> None:
        await self.rpc.close()

    async def market(self) -> MarketParams:
        """The perp market, every spot market, and their oracles' prices."""
        pid = self.cfg.program_id
        perp_key = str(get_perp_market_public_key(Pubkey.from_string(pid), self.cfg.market_index))
        _, (perp_raw,) = await self.rpc.multiple_accounts([perp_key])
        if perp_raw is None:
            raise ScanError(f"perp market {self.cfg.market_index} ({perp_key}) not found")
        _, spot_items = await self.rpc.program_accounts(pid, [memcmp(0, discriminator("SpotMarket"))])
        try:
            perp = decode(perp_raw)
            spots = [decode(base64.b64decode(d)) for _, d in spot_items]
        except Exception as e:  # anchorpy raises assorted errors on foreign bytes
            raise ScanError(f"cannot decode the Drift market accounts: {type(e).__name__}: {e}") from None
        wanted = [str(perp.amm.oracle)] + [str(s.oracle) for s in spots]
        _, raws = await self.rpc.multiple_accounts(wanted)
        perp_px = oracle_price(raws[0], perp.amm.oracle_source)
        priced: list[tuple[Any, int]] = []
        for sm, raw in zip(spots, raws[1:], strict=True):
            try:
                priced.append((sm, oracle_price(raw, sm.oracle_source)))
            except ValueError as e:  # that market's balances are then flagged approximate
                log.warning(
                    "liqmap: spot market %d (%s) left out: %s", sm.market_index, variant(sm.oracle_source), e
                )
        return market_params(perp, perp_px, priced)

    def user_filters(self) -> list[dict[str, Any]]:
        """getProgramAccounts filters for the User accounts (a subclass scans another layout)."""
        return USER_FILTERS

    def _decode(self, items: list[tuple[str, str]]) -> tuple[list[str], bytearray]:
        """base64 → one contiguous buffer of the User-sized accounts (others dropped)."""
        total = len(items)
        every = max(1, self.cfg.progress_every)
        buf = bytearray(total * USER_SIZE)
        keys: list[str] = []
        b64 = base64.b64decode
        for i, (key, data) in enumerate(items, 1):
            try:
                raw = b64(data)
            except ValueError:
                raw = b""  # not base64: skipped like any foreign account
            if len(raw) == USER_SIZE:
                off = len(keys) * USER_SIZE
                buf[off : off + USER_SIZE] = raw
                keys.append(key)
            if self.progress is not None and (i % every == 0 or i == total):
                self.progress("decode", i, total)
        del buf[len(keys) * USER_SIZE :]
        return keys, buf

    async def verify_cluster(self) -> None:
        """Refuse (ScanError, not retried) an RPC whose genesis hash is not the configured cluster's:
        a map of another cluster's users must never reach the liq_gap guard."""
        if not self.cfg.cluster:
            return
        genesis = await self.rpc.call("getGenesisHash", [])
        try:
            check_cluster(self.cfg.cluster, genesis, f"the liq-map RPC at {redact_url(self.cfg.rpc_url)}")
        except ClusterMismatch as e:
            raise ScanError(str(e), refused=True) from None

    async def scan_once(self, now_ms: int | None = None) -> LiqMap:
        started = time.monotonic()
        await self.verify_cluster()
        params = await self.market()
        slot, items = await self.rpc.program_accounts(self.cfg.program_id, self.user_filters(), report=True)
        ts = int(time.time() * 1000) if now_ms is None else now_ms
        keys, buf = self._decode(items)
        entries = scan_buffer(keys, buf, params, ts)
        seen = len(items)
        m = build_map(entries, params, ts, slot, seen, self.cfg.bucket_bps)
        log.info(
            "liqmap: %d accounts, %d positions in market %d, %.1f s",
            seen,
            len(entries),
            self.cfg.market_index,
            time.monotonic() - started,
        )
        self.last = m
        return m
