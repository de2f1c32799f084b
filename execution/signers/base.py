"""The Signer protocol: a public key and an (async) ed25519 signature over a message.

Async because a hardware signer waits for the user to confirm on the device. Secrets never
leave a signer: there is no accessor for them, and ``repr`` shows only the public key.
"""

from __future__ import annotations

from typing import Protocol

from solders.keypair import Keypair
from solders.pubkey import Pubkey


class SignerError(Exception):
    """A signer refused or failed (device locked, user rejected, wrong app...)."""


class Signer(Protocol):
    name: str

    def pubkey(self) -> Pubkey: ...

    async def sign_message(self, message: bytes) -> bytes:
        """64-byte ed25519 signature of ``message`` (a serialized transaction message)."""
        ...


class KeypairSigner:
    """A local keypair held in memory (loaded from the key store for the process lifetime)."""

    def __init__(self, keypair: Keypair, name: str = "local") -> None:
        self._kp = keypair
        self.name = name

    def pubkey(self) -> Pubkey:
        return self._kp.pubkey()

    async def sign_message(self, message: bytes) -> bytes:
        return bytes(self._kp.sign_message(message))

    def __repr__(self) -> str:
        return f"KeypairSigner({self.name}, {self.pubkey()})"
