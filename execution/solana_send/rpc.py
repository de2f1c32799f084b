"""A small Solana JSON-RPC client on aiohttp: the calls the send path and the venues make.

solana-py 0.36 has no ``getRecentPrioritizationFees`` nor ``isBlockhashValid``, and its error
mapping hides HTTP 429; so the venues talk JSON-RPC directly (one shared aiohttp session) and
hand driftpy an ``AsyncClient`` only as the instruction builder's (unused) connection.

Errors: :class:`RpcError` with ``code`` = the JSON-RPC error code (the node answered and refused),
the HTTP status (``http=True``: a proxy or the node failed, the request may have been processed),
or ``None`` (no answer: timeout, reset). Only a JSON-RPC error proves a ``sendTransaction`` was not
forwarded; see :attr:`RpcError.answered`.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from typing import Any

import aiohttp
from solders.hash import Hash
from solders.pubkey import Pubkey

from core.secrets import scrub


class RpcError(Exception):
    def __init__(
        self, message: str, *, code: int | None = None, retryable: bool = False, http: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.http = http

    @property
    def answered(self) -> bool:
        """The node itself answered with a JSON-RPC error: the request was refused, not processed."""
        return self.code is not None and not self.http


@dataclass(frozen=True)
class Blockhash:
    blockhash: Hash
    last_valid_block_height: int
    slot: int  # the context slot of the answer: nothing signed over it can land before


# JSON-RPC error codes that mean "try again" (node behind, slot skipped, blockhash not found...)
_RETRYABLE_CODES = {-32002, -32004, -32005, -32007, -32014, -32016}


class RpcClient:
    def __init__(
        self, url: str, session: aiohttp.ClientSession | None = None, timeout_s: float = 10.0
    ) -> None:
        self.url = url
        self._session = session
        self._own = session is None
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._ids = itertools.count(1)

    async def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own = True
        return self._session

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        sess = await self._sess()
        try:
            async with sess.post(self.url, json=body, timeout=self.timeout) as resp:
                if resp.status == 429:
                    raise RpcError(f"{method}: rate limited (HTTP 429)", code=429, retryable=True, http=True)
                if resp.status >= 400:
                    raise RpcError(
                        f"{method}: HTTP {resp.status}",
                        code=resp.status,
                        retryable=resp.status >= 500,
                        http=True,
                    )
                data = await resp.json(content_type=None)
        except RpcError:
            raise
        except TimeoutError:
            raise RpcError(f"{method}: timed out", retryable=True) from None
        except (aiohttp.ClientError, ValueError) as e:  # aiohttp may quote the URL: never its API key
            raise RpcError(scrub(f"{method}: {type(e).__name__}: {e}", self.url), retryable=True) from None
        if not isinstance(data, dict):
            raise RpcError(f"{method}: unexpected answer {str(data)[:100]}", retryable=True)
        err = data.get("error")
        if err is not None:
            code = int(err.get("code", 0)) if isinstance(err, dict) else 0
            msg = str(err.get("message", err)) if isinstance(err, dict) else str(err)
            retry = code in _RETRYABLE_CODES or "blockhash not found" in msg.lower()
            raise RpcError(f"{method}: {msg} (code {code})", code=code, retryable=retry)
        return data.get("result")

    # ------------------------------------------------------------------ typed helpers
    async def get_multiple_accounts(self, keys: list[Pubkey]) -> tuple[int, list[bytes | None]]:
        res = await self.call(
            "getMultipleAccounts", [[str(k) for k in keys], {"encoding": "base64", "commitment": "confirmed"}]
        )
        slot = int(res["context"]["slot"])
        out: list[bytes | None] = []
        for acc in res["value"]:
            out.append(None if acc is None else base64.b64decode(acc["data"][0]))
        return slot, out

    async def get_account(self, key: Pubkey) -> tuple[int, bytes | None]:
        slot, accs = await self.get_multiple_accounts([key])
        return slot, accs[0]

    async def latest_blockhash(self) -> Blockhash:
        res = await self.call("getLatestBlockhash", [{"commitment": "confirmed"}])
        v = res["value"]
        return Blockhash(
            Hash.from_string(v["blockhash"]), int(v["lastValidBlockHeight"]), int(res["context"]["slot"])
        )

    async def block_height(self, commitment: str = "finalized") -> int:
        """The chain's block height. ``finalized`` (default): once it is past a transaction's
        ``lastValidBlockHeight``, no block that could still hold that transaction is to come."""
        return int(await self.call("getBlockHeight", [{"commitment": commitment}]))

    async def is_blockhash_valid(self, blockhash: Hash) -> bool:
        res = await self.call("isBlockhashValid", [str(blockhash), {"commitment": "processed"}])
        return bool(res["value"])

    async def send_transaction(self, raw: bytes) -> str:
        """Send a signed transaction; the RPC node does not retry (maxRetries 0): we do."""
        opts = {
            "encoding": "base64",
            "skipPreflight": True,
            "maxRetries": 0,
            "preflightCommitment": "processed",
        }
        return str(await self.call("sendTransaction", [base64.b64encode(raw).decode(), opts]))

    async def signature_statuses(
        self, signatures: list[str], search_history: bool = False
    ) -> list[dict[str, Any] | None]:
        res = await self.call(
            "getSignatureStatuses", [signatures, {"searchTransactionHistory": search_history}]
        )
        return list(res["value"])

    async def signatures_for_address(self, address: Pubkey, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest transactions that touched ``address`` (signature, slot, err), newest first."""
        res = await self.call(
            "getSignaturesForAddress", [str(address), {"limit": limit, "commitment": "confirmed"}]
        )
        return list(res or [])

    async def recent_prioritization_fees(self, accounts: list[Pubkey]) -> list[int]:
        res = await self.call("getRecentPrioritizationFees", [[str(a) for a in accounts]])
        return [int(x.get("prioritizationFee", 0)) for x in res or []]
