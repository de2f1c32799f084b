"""Key storage (in-memory keyring backend, encrypted file) and the Ledger APDU/HID/Speculos framing."""

from __future__ import annotations

import json
import socket
import struct
import threading
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.signature import Signature
from solders.system_program import TransferParams, transfer

from execution.signers.base import SignerError
from execution.signers.keystore import (
    EncryptedFileStore,
    KeyringStore,
    KeyStoreError,
    open_store,
    passphrase_source,
    read_solana_keypair_file,
)
from execution.signers.ledger import (
    LedgerSigner,
    TcpTransport,
    hid_frames,
    hid_unframe,
    serialize_path,
    sign_apdus,
)


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.d: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.d.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.d[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.d:
            raise PasswordDeleteError(username)
        del self.d[(service, username)]


@pytest.fixture
def mem_keyring():  # type: ignore[no-untyped-def]
    old = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(old)


def test_keyring_round_trip_and_delete(mem_keyring: MemoryKeyring) -> None:
    kp = Keypair()
    st = KeyringStore("autotrader-test")
    assert KeyringStore.usable()
    st.save("drift-delegate", kp)
    assert st.pubkey("drift-delegate") == str(kp.pubkey())
    assert st.load("drift-delegate").pubkey() == kp.pubkey()
    assert st.delete("drift-delegate") and not st.delete("drift-delegate")
    with pytest.raises(KeyStoreError, match="no key"):
        st.load("drift-delegate")
    assert open_store("auto", "s", Path("/nonexistent"), passphrase_source()).kind == "keyring"


def test_encrypted_file_round_trip_wrong_passphrase_and_tamper(tmp_path: Path) -> None:
    f = tmp_path / "keys.enc"
    good = passphrase_source(environ={"AUTOTRADER_PASSPHRASE": "correct horse"})
    st = EncryptedFileStore(f, good, scrypt_n=2**12)
    kp = Keypair()
    st.save("drift-delegate", kp)
    assert (f.stat().st_mode & 0o777) == 0o600
    text = f.read_text()
    assert str(kp.pubkey()) in text and json.loads(text)["entries"]["drift-delegate"]["kdf"] == "scrypt"
    assert bytes(kp).hex() not in text
    assert st.load("drift-delegate").pubkey() == kp.pubkey()
    assert st.pubkey("drift-delegate") == str(kp.pubkey())
    bad = EncryptedFileStore(f, passphrase_source(environ={"AUTOTRADER_PASSPHRASE": "wrong"}))
    with pytest.raises(KeyStoreError, match="wrong passphrase for key 'drift-delegate'"):
        bad.load("drift-delegate")
    pw = tmp_path / "pw"
    pw.write_text("correct horse\n")
    assert EncryptedFileStore(f, passphrase_source(pw)).load("drift-delegate").pubkey() == kp.pubkey()
    doc = json.loads(text)
    doc["entries"]["drift-delegate"]["pubkey"] = str(Keypair().pubkey())  # swap the public key: AAD fails
    f.write_text(json.dumps(doc))
    with pytest.raises(KeyStoreError, match=r"wrong passphrase|altered"):
        st.load("drift-delegate")


def test_solana_cli_keypair_import(tmp_path: Path) -> None:
    kp = Keypair()
    p = tmp_path / "id.json"
    p.write_text(json.dumps(list(bytes(kp))))
    assert read_solana_keypair_file(p).pubkey() == kp.pubkey()
    p.write_text("[1, 2, 3]")
    with pytest.raises(KeyStoreError, match="64 bytes"):
        read_solana_keypair_file(p)


# --------------------------------------------------------------------------- Ledger
def test_apdu_exchanges_match_the_app_protocol() -> None:
    # GET_PUBKEY for 44'/501'/0' as documented: E0 05 00 00 0D 03 8000002C 800001F5 80000000
    assert serialize_path("44'/501'/0'").hex() == "038000002c800001f580000000"
    # a 300-byte message: 1 + 13 + 300 = 314 bytes -> chunks of 255 and 59
    msg = bytes(range(256)) + bytes(44)
    a1, a2 = sign_apdus("44'/501'/0'", msg)
    assert a1[:5] == bytes([0xE0, 0x06, 0x01, 0x02, 255]) and a1[5:19] == bytes.fromhex(
        "01038000002c800001f580000000"
    )
    assert a2[:5] == bytes([0xE0, 0x06, 0x01, 0x01, 59])  # P2_EXTEND, last chunk
    assert a1[19:] + a2[5:] == msg
    [single] = sign_apdus("44'/501'/1'/0'", b"\x80abc")
    assert single[:4] == bytes([0xE0, 0x06, 0x01, 0x00])
    with pytest.raises(ValueError, match="44'/501'"):
        serialize_path("44'/60'/0'")


def test_hid_framing_round_trip() -> None:
    a = bytes([0xE0, 0x05, 0x00, 0x00, 0x0D]) + serialize_path("44'/501'/0'")
    [f] = hid_frames(a)
    assert f[:7] == bytes.fromhex("01010500000012") and f[7:25] == a and len(f) == 64
    big = bytes(200)
    frames = hid_frames(big)
    assert [struct.unpack(">H", x[3:5])[0] for x in frames] == [0, 1, 2, 3]
    answer = bytes(range(64)) + b"\x90\x00"
    assert hid_unframe(hid_frames(answer)) == answer


class FakeSpeculos:
    """Speculos' APDU TCP protocol with a Solana app holding one keypair."""

    def __init__(self, kp: Keypair, reject: bool = False) -> None:
        self.kp, self.reject = kp, reject
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.apdus: list[bytes] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        conn, _ = self.srv.accept()
        buf = b""
        with conn:
            while True:
                hdr = conn.recv(4)
                if len(hdr) < 4:
                    return
                n = struct.unpack(">I", hdr)[0]
                a = b""
                while len(a) < n:
                    a += conn.recv(n - len(a))
                self.apdus.append(a)
                ins, p2, data = a[1], a[3], a[5:]
                out, sw = b"", b"\x90\x00"
                if ins == 0x05:
                    out = bytes(self.kp.pubkey())
                elif ins == 0x04:
                    out = bytes([1, 0, 1, 6, 1])
                elif ins == 0x06:
                    buf = data if not p2 & 0x01 else buf + data
                    if not p2 & 0x02:
                        if self.reject:
                            sw = b"\x69\x85"
                        else:
                            npath = buf[1]
                            out = bytes(self.kp.sign_message(buf[2 + 4 * npath :]))
                conn.sendall(struct.pack(">I", len(out)) + out + sw)


async def test_ledger_signer_over_speculos_tcp_signs_a_transaction() -> None:
    kp = Keypair()
    sp = FakeSpeculos(kp)
    signer = LedgerSigner(TcpTransport("127.0.0.1", sp.port, timeout_s=5), "44'/501'/0'")
    assert signer.pubkey() == kp.pubkey()
    assert signer.app_configuration()["version"] == "1.6.1"
    ixs = [
        transfer(TransferParams(from_pubkey=kp.pubkey(), to_pubkey=Keypair().pubkey(), lamports=i + 1))
        for i in range(8)
    ]
    msg = MessageV0.try_compile(kp.pubkey(), ixs, [], Hash.default())
    raw = to_bytes_versioned(msg)
    assert len(raw) > 255  # chunked
    sig = await signer.sign_message(raw)
    assert Signature.from_bytes(sig).verify(kp.pubkey(), raw)
    assert [a[3] for a in sp.apdus if a[1] == 0x06][-1] == 0x01  # last chunk: P2_EXTEND only


async def test_ledger_rejection_is_a_clear_error() -> None:
    sp = FakeSpeculos(Keypair(), reject=True)
    signer = LedgerSigner(TcpTransport("127.0.0.1", sp.port, timeout_s=5))
    with pytest.raises(SignerError, match="0x6985: rejected on the device"):
        await signer.sign_message(b"\x80" + bytes(10))


def test_key_file_is_0600_from_the_first_byte_fsynced_then_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    f = tmp_path / "keys.enc"
    f.write_text('{"version": 1, "entries": {}}')
    f.chmod(0o644)  # an older, too open file is replaced, never written through
    opened: list[tuple[str, int, int]] = []
    synced: list[int] = []
    real_open, real_fsync = os.open, os.fsync

    def spy_open(path, flags, mode=0o777, *a, **kw):  # type: ignore[no-untyped-def]
        opened.append((str(path), flags, mode))
        return real_open(path, flags, mode, *a, **kw)

    def spy_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    old = os.umask(0)  # the most permissive umask: the mode must not depend on it
    try:
        pw = passphrase_source(environ={"AUTOTRADER_PASSPHRASE": "pw"})
        EncryptedFileStore(f, pw, scrypt_n=2**12).save("k", Keypair())
    finally:
        os.umask(old)
    [(tmp, flags, mode)] = [o for o in opened if o[0].endswith(".tmp")]
    assert flags & os.O_CREAT and flags & os.O_EXCL and mode == 0o600, "created 0600, never an existing file"
    assert len(synced) >= 2, "the file and its directory are fsynced"
    assert (f.stat().st_mode & 0o777) == 0o600 and not Path(tmp).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["keys.enc"]


def test_an_empty_passphrase_is_refused_from_every_source(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="empty"):
        passphrase_source(environ={"AUTOTRADER_PASSPHRASE": ""})(True)
    pw = tmp_path / "pw"
    pw.write_text("\n")
    with pytest.raises(KeyStoreError, match="empty"):
        passphrase_source(pw)(True)
    f = tmp_path / "keys.enc"
    with pytest.raises(KeyStoreError, match="empty"):
        EncryptedFileStore(f, passphrase_source(pw), scrypt_n=2**12).save("k", Keypair())
    assert not f.exists()
