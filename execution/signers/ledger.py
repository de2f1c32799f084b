"""Ledger signer: the Solana app's APDU protocol over USB HID or Speculos' TCP APDU port.

APDUs (LedgerHQ app-solana ``doc/api.md``): CLA 0xE0; INS GET_APP_CONFIGURATION 0x04,
GET_PUBKEY 0x05, SIGN_MESSAGE 0x06; P1 0x00 = no confirmation, 0x01 = confirm on the device.
A derivation path is ``[count u8][index u32 BE]...`` (hardened = | 0x80000000), e.g. 44'/501'/0'.
SIGN_MESSAGE data = ``[signer count = 1][path][message]``, split in chunks of at most 255 bytes:
the first chunk has P2 = 0 (| P2_MORE 0x02 when more follow), the next ones P2_EXTEND 0x01
(| P2_MORE except the last). Answers end with a status word; 0x9000 = OK, 0x6985 = rejected.

Transports:

* HID (``hidapi``, optional import): 64-byte reports; each starts with channel 0x0101, tag 0x05
  and a big-endian sequence number; the first also carries the APDU length (u16 BE); written with
  a leading report id 0x00.
* TCP for the Speculos emulator: request ``[len u32 BE][apdu]``; answer ``[len u32 BE][data]``
  followed by the 2-byte status word (``len`` excludes it).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Protocol

from solders.pubkey import Pubkey

from execution.signers.base import SignerError

CLA = 0xE0
INS_GET_APP_CONFIGURATION = 0x04
INS_GET_PUBKEY = 0x05
INS_SIGN_MESSAGE = 0x06
P1_NON_CONFIRM = 0x00
P1_CONFIRM = 0x01
P2_EXTEND = 0x01
P2_MORE = 0x02
MAX_CHUNK = 255
HARDENED = 0x80000000
SW_OK = 0x9000
STATUS_WORDS = {
    0x6985: "rejected on the device",
    0x6A81: "invalid derivation path / message",
    0x6D00: "instruction not supported (is the Solana app open?)",
    0x6E00: "wrong CLA (is the Solana app open?)",
    0x6808: "blind signing is disabled in the Solana app settings",
    0x5515: "device locked",
}
LEDGER_VENDOR_ID = 0x2C97
HID_CHANNEL = 0x0101
HID_TAG = 0x05
HID_PACKET = 64


def parse_path(path: str) -> list[int]:
    parts = path.strip().removeprefix("m/").split("/")
    out = []
    for p in parts:
        hard = p.endswith("'") or p.endswith("h")
        n = int(p.rstrip("'h"))
        if not 0 <= n < HARDENED:
            raise ValueError(f"bad derivation index {p!r}")
        out.append(n | HARDENED if hard else n)
    if len(out) < 2 or out[0] != 44 | HARDENED or out[1] != 501 | HARDENED:
        raise ValueError(f"a Solana path starts with 44'/501', got {path!r}")
    return out


def serialize_path(path: str) -> bytes:
    idx = parse_path(path)
    return bytes([len(idx)]) + b"".join(struct.pack(">I", i) for i in idx)


def apdu(ins: int, p1: int, p2: int, data: bytes) -> bytes:
    if len(data) > MAX_CHUNK:
        raise ValueError("APDU data over 255 bytes")
    return bytes([CLA, ins, p1, p2, len(data)]) + data


def sign_apdus(path: str, message: bytes) -> list[bytes]:
    payload = b"\x01" + serialize_path(path) + message
    chunks = [payload[i : i + MAX_CHUNK] for i in range(0, len(payload), MAX_CHUNK)] or [b""]
    out = []
    for i, c in enumerate(chunks):
        p2 = P2_EXTEND if i > 0 else 0
        if i < len(chunks) - 1:
            p2 |= P2_MORE
        out.append(apdu(INS_SIGN_MESSAGE, P1_CONFIRM, p2, c))
    return out


def check_sw(resp: bytes) -> bytes:
    if len(resp) < 2:
        raise SignerError("short answer from the Ledger")
    sw = int.from_bytes(resp[-2:], "big")
    if sw != SW_OK:
        raise SignerError(f"Ledger error 0x{sw:04X}: {STATUS_WORDS.get(sw, 'unknown status')}")
    return resp[:-2]


# --------------------------------------------------------------------------- HID framing
def hid_frames(apdu_bytes: bytes, channel: int = HID_CHANNEL) -> list[bytes]:
    """Split an APDU into 64-byte HID reports (without the leading report id)."""
    data = struct.pack(">H", len(apdu_bytes)) + apdu_bytes
    frames, seq, i = [], 0, 0
    while i < len(data) or seq == 0:
        head = struct.pack(">HBH", channel, HID_TAG, seq)
        room = HID_PACKET - len(head)
        chunk = data[i : i + room]
        frames.append((head + chunk).ljust(HID_PACKET, b"\x00"))
        i += room
        seq += 1
    return frames


def hid_unframe(frames: list[bytes], channel: int = HID_CHANNEL) -> bytes:
    """Reassemble an answer (data + status word) from HID reports."""
    buf, want = b"", None
    for seq, f in enumerate(frames):
        ch, tag, s = struct.unpack(">HBH", f[:5])
        if ch != channel or tag != HID_TAG or s != seq:
            raise SignerError(f"bad HID frame (channel {ch:#06x}, tag {tag:#04x}, sequence {s} != {seq})")
        body = f[5:]
        if want is None:
            want = struct.unpack(">H", body[:2])[0]
            body = body[2:]
        buf += body
        if len(buf) >= want:
            return buf[:want]
    raise SignerError("incomplete HID answer")


class Transport(Protocol):
    def exchange(self, apdu_bytes: bytes) -> bytes:
        """Send one APDU; the answer with its status word."""
        ...

    def close(self) -> None: ...


class HidTransport:
    def __init__(self, path: bytes | None = None, timeout_ms: int = 120_000) -> None:
        try:
            import hid
        except ImportError:
            raise SignerError("USB Ledger support needs the 'hidapi' package (pip install hidapi)") from None
        if path is None:
            devs = [d for d in hid.enumerate(LEDGER_VENDOR_ID, 0) if d.get("interface_number", 0) in (0, -1)]
            if not devs:
                raise SignerError("no Ledger found on USB (plugged in, unlocked, Solana app open?)")
            path = devs[0]["path"]
        self.dev = hid.device()
        self.dev.open_path(path)
        self.timeout_ms = timeout_ms

    def exchange(self, apdu_bytes: bytes) -> bytes:
        for f in hid_frames(apdu_bytes):
            self.dev.write(b"\x00" + f)
        frames: list[bytes] = []
        while True:
            r = bytes(self.dev.read(HID_PACKET, self.timeout_ms))
            if not r:
                raise SignerError("timed out waiting for the Ledger (confirm on the device)")
            frames.append(r)
            try:
                return hid_unframe(frames)
            except SignerError as e:
                if "incomplete" not in str(e):
                    raise

    def close(self) -> None:
        self.dev.close()


class TcpTransport:
    """Speculos' APDU port (default 9999)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9999, timeout_s: float = 120.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)

    def _recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise SignerError("Speculos closed the connection")
            buf += chunk
        return buf

    def exchange(self, apdu_bytes: bytes) -> bytes:
        self.sock.sendall(struct.pack(">I", len(apdu_bytes)) + apdu_bytes)
        size = struct.unpack(">I", self._recv(4))[0]
        return self._recv(size + 2)

    def close(self) -> None:
        self.sock.close()


class LedgerSigner:
    """A Signer backed by the Ledger Solana app (every signature confirmed on the device)."""

    def __init__(self, transport: Transport, path: str = "44'/501'/0'", name: str = "ledger") -> None:
        self.transport = transport
        self.path = path
        self.name = name
        self._pubkey: Pubkey | None = None
        serialize_path(path)  # validate early

    def app_configuration(self) -> dict[str, object]:
        data = check_sw(self.transport.exchange(apdu(INS_GET_APP_CONFIGURATION, 0, 0, b"")))
        if len(data) < 5:
            raise SignerError("short app configuration answer")
        return {
            "blind_signing": bool(data[0]),
            "pubkey_display": data[1],
            "version": f"{data[2]}.{data[3]}.{data[4]}",
        }

    def pubkey(self) -> Pubkey:
        if self._pubkey is None:
            data = check_sw(
                self.transport.exchange(apdu(INS_GET_PUBKEY, P1_NON_CONFIRM, 0, serialize_path(self.path)))
            )
            if len(data) != 32:
                raise SignerError(f"unexpected public key length {len(data)}")
            self._pubkey = Pubkey.from_bytes(data)
        return self._pubkey

    def _sign(self, message: bytes) -> bytes:
        resp = b""
        for a in sign_apdus(self.path, message):
            resp = self.transport.exchange(a)
            if a is not None and int.from_bytes(resp[-2:], "big") != SW_OK:
                break
        sig = check_sw(resp)
        if len(sig) != 64:
            raise SignerError(f"unexpected signature length {len(sig)}")
        return sig

    async def sign_message(self, message: bytes) -> bytes:
        return await asyncio.to_thread(self._sign, message)
