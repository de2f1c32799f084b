"""Key storage: the OS keyring first, an encrypted file as the fallback for headless servers.

* :class:`KeyringStore`: the 64-byte Solana secret (base58) under ``(service, name)``, and the
  public key under ``(service, name + ".pubkey")`` so showing it never touches the secret.
* :class:`EncryptedFileStore`: one JSON file (mode 0600); each entry's secret is sealed with
  AES-256-GCM under a key derived by scrypt (memory-hard: n=2^15, r=8, p=1 = 32 MiB) from the
  passphrase and a per-entry random salt; the entry name and public key are authenticated
  (AAD), so a swapped or edited entry fails to open. A wrong passphrase is a clear error.

Passphrases (:func:`passphrase_source`): ``--passphrase-file PATH`` or the environment variable
``AUTOTRADER_PASSPHRASE`` (headless/tests), else an interactive ``getpass`` prompt (not echoed).
Nothing here prints or logs a secret.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import base58
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from solders.keypair import Keypair

PASSPHRASE_ENV = "AUTOTRADER_PASSPHRASE"
Passphrase = Callable[[bool], str]  # (confirm: ask twice when creating) -> passphrase


class KeyStoreError(Exception):
    pass


class KeyStore(Protocol):
    kind: str

    def load(self, name: str) -> Keypair: ...

    def save(self, name: str, keypair: Keypair) -> None: ...

    def pubkey(self, name: str) -> str | None: ...

    def delete(self, name: str) -> bool: ...


def passphrase_source(
    passphrase_file: Path | None = None, *, environ: dict[str, str] | None = None
) -> Passphrase:
    env = os.environ if environ is None else environ

    def get(confirm: bool) -> str:
        if passphrase_file is not None:
            try:
                p = passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as e:
                raise KeyStoreError(
                    f"{passphrase_file}: cannot read the passphrase file: {e.strerror}"
                ) from None
            if not p:
                raise KeyStoreError(f"{passphrase_file}: the passphrase file is empty (an empty passphrase "
                                    "is not accepted)")
            return p
        if PASSPHRASE_ENV in env:
            if not env[PASSPHRASE_ENV]:
                raise KeyStoreError(
                    f"{PASSPHRASE_ENV} is set but empty (an empty passphrase is not accepted)"
                )
            return env[PASSPHRASE_ENV]
        p = getpass.getpass("Key file passphrase: ")
        if not p:
            raise KeyStoreError("an empty passphrase is not accepted")
        if confirm and getpass.getpass("Repeat the passphrase: ") != p:
            raise KeyStoreError("the passphrases differ")
        return p

    return get


class KeyringStore:
    kind = "keyring"

    def __init__(self, service: str) -> None:
        import keyring

        self._kr = keyring
        self.service = service

    @staticmethod
    def usable() -> bool:
        import keyring
        from keyring.backends import fail

        kr = keyring.get_keyring()
        if isinstance(kr, fail.Keyring):
            return False
        backends = getattr(kr, "backends", None)
        return backends is None or bool(backends)

    def load(self, name: str) -> Keypair:
        secret = self._kr.get_password(self.service, name)
        if secret is None:
            raise KeyStoreError(f"no key {name!r} in the keyring (service {self.service!r})")
        try:
            return Keypair.from_bytes(base58.b58decode(secret))
        except Exception:
            raise KeyStoreError(f"key {name!r} in the keyring is not a Solana keypair") from None

    def save(self, name: str, keypair: Keypair) -> None:
        self._kr.set_password(self.service, name, base58.b58encode(bytes(keypair)).decode())
        self._kr.set_password(self.service, name + ".pubkey", str(keypair.pubkey()))

    def pubkey(self, name: str) -> str | None:
        return self._kr.get_password(self.service, name + ".pubkey")

    def delete(self, name: str) -> bool:
        from keyring.errors import PasswordDeleteError

        found = False
        for n in (name, name + ".pubkey"):
            try:
                self._kr.delete_password(self.service, n)
                found = True
            except PasswordDeleteError:
                pass
        return found


class EncryptedFileStore:
    kind = "file"
    N, R, P = 2**15, 8, 1

    def __init__(self, path: Path, passphrase: Passphrase, *, scrypt_n: int | None = None) -> None:
        self.path = Path(path)
        self.passphrase = passphrase
        self.n = scrypt_n or self.N

    def _read(self) -> dict[str, dict[str, object]]:
        if not self.path.exists():
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise KeyStoreError(f"{self.path}: unreadable key file: {e}") from None
        if doc.get("version") != 1 or not isinstance(doc.get("entries"), dict):
            raise KeyStoreError(f"{self.path}: not an autotrader key file (version 1)")
        entries: dict[str, dict[str, object]] = doc["entries"]
        return entries

    def _write(self, entries: dict[str, dict[str, object]]) -> None:
        """Mode 0600 from the first byte (``O_CREAT|O_EXCL`` with the mode: no umask window, never
        an existing file's mode), fsynced, renamed over the old file, the directory fsynced."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        data = json.dumps({"version": 1, "entries": entries}, indent=1).encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.fchmod(fd, 0o600)  # a restrictive mode even if the umask was odd (it only removes bits)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        try:
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @staticmethod
    def _key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        return hashlib.scrypt(
            passphrase.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * 1024 * 1024
        )

    def save(self, name: str, keypair: Keypair) -> None:
        entries = self._read()
        pw = self.passphrase(True)
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        pub = str(keypair.pubkey())
        ct = AESGCM(self._key(pw, salt, self.n, self.R, self.P)).encrypt(
            nonce, bytes(keypair), f"{name}|{pub}".encode()
        )
        entries[name] = {
            "pubkey": pub,
            "kdf": "scrypt",
            "n": self.n,
            "r": self.R,
            "p": self.P,
            "cipher": "aes-256-gcm",
            "salt": base64.b64encode(salt).decode(),
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(ct).decode(),
        }
        self._write(entries)

    def load(self, name: str) -> Keypair:
        e = self._read().get(name)
        if e is None:
            raise KeyStoreError(f"no key {name!r} in {self.path}")
        pw = self.passphrase(False)
        try:
            key = self._key(
                pw, base64.b64decode(str(e["salt"])), int(str(e["n"])), int(str(e["r"])), int(str(e["p"]))
            )
            raw = AESGCM(key).decrypt(
                base64.b64decode(str(e["nonce"])),
                base64.b64decode(str(e["ciphertext"])),
                f"{name}|{e['pubkey']}".encode(),
            )
        except InvalidTag:
            raise KeyStoreError(
                f"wrong passphrase for key {name!r} in {self.path} (or the file was altered)"
            ) from None
        except (KeyError, ValueError) as exc:
            raise KeyStoreError(f"{self.path}: damaged entry {name!r}: {exc}") from None
        kp = Keypair.from_bytes(raw)
        if str(kp.pubkey()) != e["pubkey"]:
            raise KeyStoreError(f"{self.path}: entry {name!r} does not match its public key")
        return kp

    def pubkey(self, name: str) -> str | None:
        e = self._read().get(name)
        return None if e is None else str(e["pubkey"])

    def delete(self, name: str) -> bool:
        entries = self._read()
        if name not in entries:
            return False
        del entries[name]
        self._write(entries)
        return True


def read_solana_keypair_file(path: Path) -> Keypair:
    """A Solana CLI keypair file: a JSON array of 64 byte values."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise KeyStoreError(f"{path}: not a readable Solana keypair file: {e}") from None
    if not (
        isinstance(data, list) and len(data) == 64 and all(isinstance(x, int) and 0 <= x < 256 for x in data)
    ):
        raise KeyStoreError(f"{path}: expected a JSON array of 64 bytes (solana-keygen format)")
    try:
        return Keypair.from_bytes(bytes(data))
    except Exception:
        raise KeyStoreError(f"{path}: the 64 bytes are not a valid ed25519 keypair") from None


def open_store(backend: str, service: str, file: Path, passphrase: Passphrase) -> KeyStore:
    """``auto``: the keyring when a real backend is available, else the encrypted file."""
    if backend == "keyring" or (backend == "auto" and KeyringStore.usable()):
        return KeyringStore(service)
    return EncryptedFileStore(file, passphrase)
