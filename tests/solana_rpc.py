"""A local Solana JSON-RPC server for tests (aiohttp on 127.0.0.1): real wire format, fake chain.

Not a test module. Tests put real-format accounts (built with driftpy's own coder) into
:attr:`LocalSolanaRpc.accounts`, point a client at :attr:`LocalSolanaRpc.url`, and inspect what
the client sent (:attr:`LocalSolanaRpc.sent`, :attr:`LocalSolanaRpc.calls`).

Methods: getAccountInfo, getMultipleAccounts, getProgramAccounts (``memcmp`` and ``dataSize``
filters, ``dataSlice``), getLatestBlockhash, isBlockhashValid, sendTransaction,
getSignatureStatuses, getSlot, getBlockHeight, getRecentPrioritizationFees,
getMinimumBalanceForRentExemption, getHealth, getVersion, getGenesisHash, getEpochInfo,
simulateTransaction, getBalance. Batch requests are answered as a list. More can be registered
in :attr:`LocalSolanaRpc.methods`.

Faults (:meth:`LocalSolanaRpc.fault`), consumed one per matching request, in order:
``("http", 429)`` an HTTP status with no JSON body; ``("error", code, message)`` a JSON-RPC
error; ``("delay", seconds)`` answer late (a client timeout); ``("drop",)`` close the
connection without answering.

Signatures: :meth:`LocalSolanaRpc.send_transaction` keeps the raw transaction and its first
signature; :attr:`LocalSolanaRpc.confirm` decides how ``getSignatureStatuses`` reports it
(``"processed"``/``"confirmed"``/``"finalized"`` at once, ``"never"`` = unknown forever, or a
callable ``(signature, polls) -> status | None``). ``on_send`` hooks let a test react to a sent
transaction, e.g. rewrite a User account to simulate a fill.
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
            "getBlockHeight": lambda p: self.slot - 20_000_000,
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
        if spec is not None:
            kind = spec[0]
            if kind == "http":
                return web.Response(status=int(spec[1]), text=f"HTTP {spec[1]}")
            if kind == "delay":
                await asyncio.sleep(float(spec[1]))
            elif kind == "drop":
                transport = request.transport
                if transport is not None:
                    transport.close()
                return web.Response(status=500)
            elif kind == "error":
                out = [{"jsonrpc": "2.0", "id": r.get("id"),
                        "error": {"code": int(spec[1]), "message": str(spec[2])}} for r in reqs]
                return web.json_response(out if batch else out[0])
        answers = [self._answer(r) for r in reqs]
        return web.json_response(answers if batch else answers[0])

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

    def _status(self, sig: str) -> str | None:
        if not any(t.signature == sig for t in self.sent):
            return None
        polls = self._polls[sig] = self._polls.get(sig, 0) + 1
        if callable(self.confirm):
            return self.confirm(sig, polls)
        return None if self.confirm == "never" else self.confirm

    def _get_signature_statuses(self, params: list[Any]) -> Any:
        out: list[Any] = []
        for sig in params[0]:
            st = self._status(str(sig))
            out.append(None if st is None else {
                "slot": self.slot, "confirmations": None if st == "finalized" else 1, "err": None,
                "status": {"Ok": None}, "confirmationStatus": st})
        return self._ctx(out)

    def _get_prioritization_fees(self, params: list[Any]) -> Any:
        n = len(self.prioritization_fees)
        fees = self.prioritization_fees
        return [{"slot": self.slot - n + i, "prioritizationFee": f} for i, f in enumerate(fees)]

    def _get_balance(self, params: list[Any]) -> Any:
        acc = self.accounts.get(str(params[0]))
        return self._ctx(acc.lamports if acc else 0)
