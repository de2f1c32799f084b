"""A local Solana JSON-RPC server for tests (aiohttp on 127.0.0.1): real wire format, fake chain.

Not a test module. Tests put real-format accounts (built with driftpy's own coder) into
:attr:`LocalSolanaRpc.accounts`, point a client at :attr:`LocalSolanaRpc.url`, and inspect what
the client sent (:attr:`LocalSolanaRpc.sent`, :attr:`LocalSolanaRpc.calls`).

Methods: getAccountInfo, getMultipleAccounts, getProgramAccounts (``memcmp`` and ``dataSize``
filters, ``dataSlice``), getLatestBlockhash, isBlockhashValid, sendTransaction,
getSignatureStatuses, getSlot, getBlockHeight, getRecentPrioritizationFees,
getMinimumBalanceForRentExemption, getHealth, getVersion, getGenesisHash, getEpochInfo,
simulateTransaction, getBalance, getSignaturesForAddress. Batch requests are answered as a list.
More can be registered in :attr:`LocalSolanaRpc.methods`.

Faults (:meth:`LocalSolanaRpc.fault`, :meth:`LocalSolanaRpc.burst`), consumed one per matching
request, in order: ``("http", 429)`` an HTTP status with no JSON body (nothing processed);
``("error", code, message)`` a JSON-RPC error; ``("delay", seconds)`` wait, then process and
answer (a client timeout: nothing happened yet when the client gave up); ``("slow", seconds)``
process at once, answer late (the transaction is forwarded, the answer is slow);
``("accept_then_http", 502)`` process, then answer with an HTTP error; ``("accept_then_drop",)``
process, then close the connection; ``("drop",)`` close the connection without processing.

The chain: a sent transaction *lands* (see :attr:`LocalSolanaRpc.landed`) when its blockhash is
still valid — at once with ``auto_land`` (the default), or when a simulator calls
:meth:`LocalSolanaRpc.mark_landed` (``tests/drift_sim.py`` does, after applying it). The same
signature lands at most once. Block height = slot − 20 000 000; a blockhash is valid for
``blockhash_valid_slots`` slots and ``lastValidBlockHeight`` says so; ``height_step`` slots pass
on every ``getBlockHeight`` call (a chain that moves while the client waits).

Statuses: ``getSignatureStatuses`` reports landed signatures only, as
:attr:`LocalSolanaRpc.confirm` says (``"processed"``/``"confirmed"``/``"finalized"``, ``"never"``
= null forever, or a callable ``(signature, polls) -> status | None``); :attr:`statuses` breaks it
like real nodes do: ``"null"`` = null for everything (history search too), ``"null_recent"`` =
null unless ``searchTransactionHistory`` is asked. ``getSignaturesForAddress`` lists landed
transactions touching an account, newest first (``sig_list = False``: the method fails).
``on_send`` hooks let a test react to a sent transaction, e.g. rewrite a User account.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import base58
from aiohttp import web

RpcHandler = Callable[[list[Any]], Any]
Confirm = str | Callable[[str, int], str | None]


@dataclass
class Account:
    owner: str
    data: bytes
    lamports: int = 1_000_000_000
    executable: bool = False
    rent_epoch: int = 18446744073709551615

    def encode(self, encoding: str = "base64", data_slice: dict[str, int] | None = None) -> dict[str, Any]:
        data = self.data
        if data_slice:
            off, ln = int(data_slice.get("offset", 0)), int(data_slice.get("length", len(data)))
            data = data[off : off + ln]
        if encoding == "base58":
            enc: Any = [base58.b58encode(data).decode(), "base58"]
        else:
            enc = [base64.b64encode(data).decode(), "base64"]
        return {
            "data": enc,
            "executable": self.executable,
            "lamports": self.lamports,
            "owner": self.owner,
            "rentEpoch": self.rent_epoch,
            "space": len(self.data),
        }


@dataclass
class SentTransaction:
    signature: str
    raw: bytes
    opts: dict[str, Any]
    slot: int


@dataclass
class LandedTransaction:
    signature: str
    slot: int
    accounts: list[str]
    err: Any = None


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _blockhash(n: int) -> str:
    return base58.b58encode(hashlib.sha256(f"blockhash-{n}".encode()).digest()).decode()


def _first_signature(raw: bytes) -> str:
    """The first signature of a serialized (legacy or v0) transaction: compact-u16 count, 64 bytes each."""
    count, i, shift = 0, 0, 0
    while True:
        b = raw[i]
        count |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            break
        shift += 7
    if count < 1 or len(raw) < i + 64:
        raise RpcError(-32602, "invalid transaction: no signature")
    return base58.b58encode(raw[i : i + 64]).decode()


def _matches(acc: Account, filters: list[dict[str, Any]]) -> bool:
    for f in filters:
        if "dataSize" in f:
            if len(acc.data) != int(f["dataSize"]):
                return False
        elif "memcmp" in f:
            m = f["memcmp"]
            raw = m["bytes"]
            want = base64.b64decode(raw) if m.get("encoding") == "base64" else base58.b58decode(raw)
            off = int(m["offset"])
            if acc.data[off : off + len(want)] != want:
                return False
        else:
            raise RpcError(-32602, f"unsupported filter {f!r}")
    return True


@dataclass
class LocalSolanaRpc:
    """Start with ``await rpc.start()`` (or ``async with``); ``url`` is then ``http://127.0.0.1:PORT``."""

    slot: int = 300_000_000
    accounts: dict[str, Account] = field(default_factory=dict)
    prioritization_fees: list[int] = field(default_factory=lambda: [0, 1000, 5000, 20000])
    confirm: Confirm = "confirmed"
    sent: list[SentTransaction] = field(default_factory=list)
    calls: list[tuple[str, list[Any]]] = field(default_factory=list)
    on_send: list[Callable[[SentTransaction], None]] = field(default_factory=list)
    blockhash_valid_slots: int = 150
    auto_land: bool = True
    statuses: str = "ok"  # "ok" | "null" | "null_recent"
    sig_list: bool = True
    height_step: int = 0
    landed: dict[str, LandedTransaction] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        self.methods: dict[str, RpcHandler] = {
            "getAccountInfo": self._get_account_info,
            "getMultipleAccounts": self._get_multiple_accounts,
            "getProgramAccounts": self._get_program_accounts,
            "getLatestBlockhash": self._get_latest_blockhash,
            "isBlockhashValid": self._is_blockhash_valid,
            "sendTransaction": self._send_transaction,
            "getSignatureStatuses": self._get_signature_statuses,
            "getSlot": lambda p: self.slot,
            "getBlockHeight": self._get_block_height,
            "getSignaturesForAddress": self._get_signatures_for_address,
            "getRecentPrioritizationFees": self._get_prioritization_fees,
            "getMinimumBalanceForRentExemption": lambda p: 890_880 + 6_960 * int(p[0] if p else 0),
            "getHealth": lambda p: "ok",
            "getVersion": lambda p: {"solana-core": "2.1.0", "feature-set": 1},
            "getGenesisHash": lambda p: "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG",
            "getEpochInfo": lambda p: {"epoch": 700, "slotIndex": 1, "slotsInEpoch": 432000,
                                       "absoluteSlot": self.slot, "blockHeight": self.slot - 20_000_000},
            "simulateTransaction": self._simulate,
            "getBalance": self._get_balance,
        }
        self._faults: list[tuple[str | None, tuple[Any, ...]]] = []
        self._polls: dict[str, int] = {}
        self._blockhashes: dict[str, int] = {}
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> LocalSolanaRpc:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalSolanaRpc:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ test controls
    def set_account(self, pubkey: str, owner: str, data: bytes, lamports: int = 1_000_000_000) -> None:
        self.accounts[str(pubkey)] = Account(owner=str(owner), data=bytes(data), lamports=lamports)

    def fault(self, *spec: Any, method: str | None = None) -> None:
        """Queue a fault for the next request (of ``method`` when given); see the module docstring."""
        self._faults.append((method, spec))

    def burst(self, n: int, *spec: Any, method: str | None = None) -> None:
        """``n`` faults in a row (e.g. a burst of HTTP 429)."""
        for _ in range(n):
            self.fault(*spec, method=method)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def block_height(self) -> int:
        return self.slot - 20_000_000

    def mark_landed(self, signature: str, accounts: list[str], err: Any = None) -> bool:
        """The transaction is in a block (once: False when it already was)."""
        if signature in self.landed:
            return False
        self.landed[signature] = LandedTransaction(signature, self.slot, list(accounts), err)
        return True

    def landings(self) -> int:
        return len(self.landed)

    def advance(self, slots: int = 1) -> None:
        self.slot += slots

    def method_calls(self, name: str) -> list[list[Any]]:
        return [p for m, p in self.calls if m == name]

    def send_transaction(self, raw: bytes, opts: dict[str, Any] | None = None) -> str:
        sig = _first_signature(raw)
        tx = SentTransaction(signature=sig, raw=raw, opts=dict(opts or {}), slot=self.slot)
        self.sent.append(tx)
        for hook in self.on_send:
            hook(tx)
        if self.auto_land and sig not in self.landed:
            from solders.transaction import VersionedTransaction

            msg = VersionedTransaction.from_bytes(raw).message
            if self._blockhash_ok(str(msg.recent_blockhash)):
                self.mark_landed(sig, [str(k) for k in msg.account_keys])
        return sig

    # ------------------------------------------------------------------ HTTP
    def _take_fault(self, method: str) -> tuple[Any, ...] | None:
        for i, (m, spec) in enumerate(self._faults):
            if m is None or m == method:
                del self._faults[i]
                return spec
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"jsonrpc": "2.0", "id": None,
                                      "error": {"code": -32700, "message": "Parse error"}})
        batch = isinstance(body, list)
        reqs = body if batch else [body]
        first = str(reqs[0].get("method", "")) if reqs and isinstance(reqs[0], dict) else ""
        spec = self._take_fault(first)
        kind = spec[0] if spec is not None else ""
        if spec is not None:
            if kind == "http":
                return web.Response(status=int(spec[1]), text=f"HTTP {spec[1]}")
            if kind == "delay":
                await asyncio.sleep(float(spec[1]))
            elif kind == "drop":
                return self._drop(request)
            elif kind == "error":
                out = [{"jsonrpc": "2.0", "id": r.get("id"),
                        "error": {"code": int(spec[1]), "message": str(spec[2])}} for r in reqs]
                return web.json_response(out if batch else out[0])
        answers = [self._answer(r) for r in reqs]
        if kind == "slow":
            await asyncio.sleep(float(spec[1]))  # type: ignore[index]
        elif kind == "accept_then_http":
            return web.Response(status=int(spec[1]), text=f"HTTP {spec[1]}")  # type: ignore[index]
        elif kind == "accept_then_drop":
            return self._drop(request)
        return web.json_response(answers if batch else answers[0])

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.close()
        return web.Response(status=500)

    def _answer(self, req: Any) -> dict[str, Any]:
        rid = req.get("id") if isinstance(req, dict) else None
        try:
            if not isinstance(req, dict) or not isinstance(req.get("method"), str):
                raise RpcError(-32600, "Invalid request")
            method, params = req["method"], req.get("params") or []
            self.calls.append((method, params))
            handler = self.methods.get(method)
            if handler is None:
                raise RpcError(-32601, f"Method not found: {method}")
            return {"jsonrpc": "2.0", "id": rid, "result": handler(params)}
        except RpcError as e:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": e.code, "message": e.message}}

    # ------------------------------------------------------------------ methods
    def _ctx(self, value: Any) -> dict[str, Any]:
        return {"context": {"apiVersion": "2.1.0", "slot": self.slot}, "value": value}

    @staticmethod
    def _opts(params: list[Any], index: int) -> dict[str, Any]:
        o = params[index] if len(params) > index and isinstance(params[index], dict) else {}
        return o

    def _get_account_info(self, params: list[Any]) -> Any:
        o = self._opts(params, 1)
        acc = self.accounts.get(str(params[0]))
        return self._ctx(acc.encode(o.get("encoding", "base64"), o.get("dataSlice")) if acc else None)

    def _get_multiple_accounts(self, params: list[Any]) -> Any:
        o = self._opts(params, 1)
        enc, sl = o.get("encoding", "base64"), o.get("dataSlice")
        accs = [self.accounts.get(str(k)) for k in params[0]]
        return self._ctx([a.encode(enc, sl) if a else None for a in accs])

    def _get_program_accounts(self, params: list[Any]) -> Any:
        program = str(params[0])
        o = self._opts(params, 1)
        filters = o.get("filters") or []
        enc, sl = o.get("encoding", "base64"), o.get("dataSlice")
        out = [
            {"pubkey": k, "account": a.encode(enc, sl)}
            for k, a in self.accounts.items()
            if a.owner == program and _matches(a, filters)
        ]
        return self._ctx(out) if o.get("withContext") else out

    def _get_latest_blockhash(self, params: list[Any]) -> Any:
        bh = _blockhash(self.slot)
        self._blockhashes.setdefault(bh, self.slot)
        return self._ctx({"blockhash": bh, "lastValidBlockHeight": self.slot - 20_000_000
                          + self.blockhash_valid_slots})

    def _blockhash_ok(self, bh: str) -> bool:
        issued = self._blockhashes.get(bh)
        return issued is not None and self.slot - issued <= self.blockhash_valid_slots

    def _is_blockhash_valid(self, params: list[Any]) -> Any:
        return self._ctx(self._blockhash_ok(str(params[0])))

    def _decode_tx(self, params: list[Any]) -> tuple[bytes, dict[str, Any]]:
        o = self._opts(params, 1)
        text = str(params[0])
        raw = base58.b58decode(text) if o.get("encoding") == "base58" else base64.b64decode(text)
        return raw, o

    def _send_transaction(self, params: list[Any]) -> Any:
        raw, o = self._decode_tx(params)
        return self.send_transaction(raw, o)

    def _simulate(self, params: list[Any]) -> Any:
        self._decode_tx(params)
        return self._ctx({"err": None, "logs": [], "accounts": None, "unitsConsumed": 20_000,
                          "returnData": None})

    def _status(self, sig: str, history: bool) -> str | None:
        if sig not in self.landed or self.statuses == "null":
            return None
        if self.statuses == "null_recent" and not history:
            return None
        polls = self._polls[sig] = self._polls.get(sig, 0) + 1
        if callable(self.confirm):
            return self.confirm(sig, polls)
        return None if self.confirm == "never" else self.confirm

    def _get_signature_statuses(self, params: list[Any]) -> Any:
        history = bool(self._opts(params, 1).get("searchTransactionHistory"))
        out: list[Any] = []
        for sig in params[0]:
            st = self._status(str(sig), history)
            lt = self.landed.get(str(sig))
            err = lt.err if lt is not None else None
            out.append(None if st is None or lt is None else {
                "slot": lt.slot, "confirmations": None if st == "finalized" else 1, "err": err,
                "status": {"Err": err} if err is not None else {"Ok": None}, "confirmationStatus": st})
        return self._ctx(out)

    def _get_block_height(self, params: list[Any]) -> Any:
        self.slot += self.height_step
        return self.block_height

    def _get_signatures_for_address(self, params: list[Any]) -> Any:
        if not self.sig_list:
            raise RpcError(-32011, "Transaction history is not available from this node")
        addr = str(params[0])
        limit = int(self._opts(params, 1).get("limit", 1000))
        hits = [t for t in self.landed.values() if addr in t.accounts]
        hits.sort(key=lambda t: t.slot, reverse=True)
        return [{"signature": t.signature, "slot": t.slot, "err": t.err, "memo": None, "blockTime": None,
                 "confirmationStatus": "finalized"} for t in hits[:limit]]

    def _get_prioritization_fees(self, params: list[Any]) -> Any:
        n = len(self.prioritization_fees)
        fees = self.prioritization_fees
        return [{"slot": self.slot - n + i, "prioritizationFee": f} for i, f in enumerate(fees)]

    def _get_balance(self, params: list[Any]) -> Any:
        acc = self.accounts.get(str(params[0]))
        return self._ctx(acc.lamports if acc else 0)
