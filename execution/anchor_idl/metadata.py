"""A program's IDL as published on chain by the Program Metadata program (what Anchor 1.0 tooling
and Velocity's deploy scripts use: ``npx @solana-program/program-metadata create idl``).

Account format (solana-program/program-metadata, ``program/src/state/header.rs``): a 96-byte
header, then the data::

    discriminator u8 (2 = Metadata) | program [32] | authority [32] (zeroes = none)
    | mutable u8 | canonical u8 | seed [16] (utf-8, zero padded) | encoding u8 | compression u8
    | format u8 | data_source u8 | data_length u32 LE | padding [5] | data [data_length]

The canonical account (created by the program's upgrade authority) lives at the PDA
``[program_id, seed]`` of ``ProgM6JCCvbYkfKqJYHePx4xxSUSqJp7rh8Lyv7nk7S``; the IDL's seed is
``"idl"``. Direct data is ``compress(encode(text))``: encoding 0 none (hex), 1 utf-8, 2 base58,
3 base64; compression 0 none, 1 gzip, 2 zlib (the default).
"""

from __future__ import annotations

import base64
import gzip
import struct
import zlib
from dataclasses import dataclass

import base58
from solders.pubkey import Pubkey

PROGRAM_METADATA_ID = Pubkey.from_string("ProgM6JCCvbYkfKqJYHePx4xxSUSqJp7rh8Lyv7nk7S")
HEADER = struct.Struct("<B32s32sBB16sBBBBI5x")
HEADER_LEN = HEADER.size  # 96
SEED_LEN = 16
METADATA_DISCRIMINATOR = 2
ENCODINGS = ("none", "utf8", "base58", "base64")
COMPRESSIONS = ("none", "gzip", "zlib")
FORMATS = ("none", "json", "yaml", "toml")
DATA_SOURCES = ("direct", "url", "external")
MAX_CONTENT = 16 * 1024 * 1024  # an inflated IDL larger than this is refused (zip bomb)


class MetadataError(Exception):
    """The metadata account is missing, malformed, or not readable here."""


def _seed(seed: str) -> bytes:
    raw = seed.encode()
    if len(raw) > SEED_LEN:
        raise MetadataError(f"seed {seed!r} longer than {SEED_LEN} bytes")
    return raw.ljust(SEED_LEN, b"\0")


def canonical_metadata_address(program_id: Pubkey, seed: str = "idl") -> Pubkey:
    """The canonical metadata account of ``program_id`` for ``seed``."""
    return Pubkey.find_program_address([bytes(program_id), _seed(seed)], PROGRAM_METADATA_ID)[0]


@dataclass(frozen=True)
class MetadataAccount:
    program: Pubkey
    authority: Pubkey | None
    mutable: bool
    canonical: bool
    seed: str
    encoding: str
    compression: str
    format: str
    data_source: str
    data: bytes

    def content(self) -> str:
        """The stored text (an IDL: JSON). Only data stored in the account itself is read."""
        if self.data_source != "direct":
            raise MetadataError(
                f"the metadata points elsewhere ({self.data_source}); only data stored on chain is trusted"
            )
        raw = self.data
        try:
            if self.compression == "zlib":
                d = zlib.decompressobj()
                raw = d.decompress(raw, MAX_CONTENT)
                if d.unconsumed_tail:
                    raise MetadataError(f"inflated content larger than {MAX_CONTENT} bytes")
            elif self.compression == "gzip":
                raw = gzip.decompress(raw)
                if len(raw) > MAX_CONTENT:
                    raise MetadataError(f"inflated content larger than {MAX_CONTENT} bytes")
            if self.encoding == "utf8":
                return raw.decode()
            if self.encoding == "base58":
                return base58.b58encode(raw).decode()
            if self.encoding == "base64":
                return base64.b64encode(raw).decode()
            return raw.hex()
        except (zlib.error, OSError, EOFError, UnicodeDecodeError) as e:
            raise MetadataError(
                f"cannot unpack the metadata ({self.compression}/{self.encoding}): {e}"
            ) from None


def _pick(table: tuple[str, ...], value: int, what: str) -> str:
    if value >= len(table):
        raise MetadataError(f"unknown {what} {value}")
    return table[value]


def decode_metadata_account(raw: bytes) -> MetadataAccount:
    if len(raw) < HEADER_LEN:
        raise MetadataError(f"account too short for a metadata header ({len(raw)} < {HEADER_LEN} bytes)")
    disc, program, authority, mutable, canonical, seed, enc, comp, fmt, src, n = HEADER.unpack_from(raw)
    if disc != METADATA_DISCRIMINATOR:
        raise MetadataError(f"not a metadata account (discriminator {disc})")
    if HEADER_LEN + n > len(raw):
        raise MetadataError(f"data length {n} runs past the account ({len(raw)} bytes)")
    return MetadataAccount(
        program=Pubkey.from_bytes(program),
        authority=None if authority == bytes(32) else Pubkey.from_bytes(authority),
        mutable=bool(mutable),
        canonical=bool(canonical),
        seed=seed.rstrip(b"\0").decode(errors="replace"),
        encoding=_pick(ENCODINGS, enc, "encoding"),
        compression=_pick(COMPRESSIONS, comp, "compression"),
        format=_pick(FORMATS, fmt, "format"),
        data_source=_pick(DATA_SOURCES, src, "data source"),
        data=bytes(raw[HEADER_LEN : HEADER_LEN + n]),
    )


def encode_metadata_account(
    program: Pubkey,
    content: str,
    *,
    seed: str = "idl",
    authority: Pubkey | None = None,
    compression: str = "zlib",
) -> bytes:
    """A canonical, mutable, utf-8 JSON metadata account holding ``content`` (tests and local
    servers use it to publish an IDL the way the Program Metadata program stores it)."""
    data = content.encode()
    if compression == "zlib":
        data = zlib.compress(data)
    elif compression == "gzip":
        data = gzip.compress(data)
    header = HEADER.pack(
        METADATA_DISCRIMINATOR,
        bytes(program),
        bytes(authority) if authority else bytes(32),
        1,
        1 if authority is None else 0,
        _seed(seed),
        ENCODINGS.index("utf8"),
        COMPRESSIONS.index(compression),
        FORMATS.index("json"),
        DATA_SOURCES.index("direct"),
        len(data),
    )
    return header + data
