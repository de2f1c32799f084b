"""An IDL-driven Borsh codec for Anchor 1.0 IDLs (instructions, accounts, defined types).

Why our own: the maintained Python Anchor fork that reads Anchor 1.0 IDLs (``anchorpy3`` with
``anchorpy3-core``) installs under the same import names (``anchorpy``, ``anchorpy_core``) as
driftpy's pinned ``anchorpy 0.21`` / ``anchorpy-core 0.2``: ``pip check`` passes but the two
overwrite each other's files. And account decoding is the scanner's hot path.

Values: a struct is a ``dict`` keyed by the IDL's field names; a fieldless enum variant is its
name (``str``), a variant with fields ``{"Name": {...}}`` or ``{"Name": [...]}``; ``option`` is
``None`` or the value; ``[u8; N]``, ``vec<u8>`` and ``bytes`` are ``bytes``; other arrays and
vecs are lists; ``pubkey`` is a solders ``Pubkey``; integers are ``int``.

Layout: Borsh, field after field (what Anchor's TypeScript coder does). A ``repr(C)`` zero-copy
type (``serialization`` ``bytemuck``/``bytemuckunsafe``) is laid out the way the program's
compiler lays it out: if a field would need alignment padding that the IDL does not spell out
(SBF alignment: at most 8), the padding is inserted and reported by :meth:`IdlCodec.implicit_padding`
(the Velocity program spells every pad out, so there is none; a test keeps it that way).

Fixed-size types with no option/vec/string (every zero-copy account) decode with one
``struct.Struct.unpack_from`` and a precomputed builder: the hot path.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from typing import Any

from solders.pubkey import Pubkey

Dec = Callable[[bytes, int], tuple[Any, int]]
Enc = Callable[[Any, bytearray], None]
Build = Callable[[Iterator[Any]], Any]

_INT_FMT = {
    "u8": "B",
    "i8": "b",
    "u16": "H",
    "i16": "h",
    "u32": "I",
    "i32": "i",
    "u64": "Q",
    "i64": "q",
    "f32": "f",
    "f64": "d",
}
_WIDE = {"u128": (16, False), "i128": (16, True), "u256": (32, False), "i256": (32, True)}
_ZERO_COPY = ("bytemuck", "bytemuckunsafe")


class CodecError(ValueError):
    """Bytes or values that do not fit the IDL (named with the path that failed)."""


def discriminator(namespace: str, name: str) -> bytes:
    """Anchor's default 8-byte discriminator: sha256("<namespace>:<name>")[:8]."""
    return hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8]


def _to_int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise CodecError(f"{what}: expected an integer, got {v!r}")
    return v


class IdlCodec:
    """Encode/decode the instructions, accounts and types of one Anchor 1.0 IDL (a parsed dict)."""

    def __init__(self, idl: dict[str, Any]) -> None:
        self.idl = idl
        self.types: dict[str, dict[str, Any]] = {t["name"]: t for t in idl.get("types", [])}
        self.instructions: dict[str, dict[str, Any]] = {i["name"]: i for i in idl.get("instructions", [])}
        self.accounts: dict[str, dict[str, Any]] = {a["name"]: a for a in idl.get("accounts", [])}
        self._ix_by_disc = {bytes(i["discriminator"]): i["name"] for i in self.instructions.values()}
        self._acc_by_disc = {bytes(a["discriminator"]): a["name"] for a in self.accounts.values()}
        self._dec: dict[str, Dec] = {}
        self._enc: dict[str, Enc] = {}
        self._fast: dict[str, tuple[struct.Struct, Build] | None] = {}
        self._padding: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ public API
    def decode_account(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(account name, value) chosen by the 8-byte discriminator."""
        name = self._acc_by_disc.get(bytes(data[:8]))
        if name is None:
            raise CodecError(f"unknown account discriminator {bytes(data[:8]).hex()}")
        return name, self.decode_account_as(name, data)

    def decode_account_as(self, name: str, data: bytes) -> dict[str, Any]:
        """Decode ``data`` (discriminator included) as account ``name``; trailing bytes (an
        account grown by a later program version) are ignored."""
        acc = self.accounts.get(name)
        if acc is None:
            raise CodecError(f"account {name} is not in the IDL")
        if bytes(data[:8]) != bytes(acc["discriminator"]):
            raise CodecError(f"not a {name} account (discriminator {bytes(data[:8]).hex()})")
        value, _ = self.decode_type({"defined": {"name": name}}, data, 8)
        result: dict[str, Any] = value
        return result

    def encode_account(self, name: str, value: dict[str, Any]) -> bytes:
        acc = self.accounts.get(name)
        if acc is None:
            raise CodecError(f"account {name} is not in the IDL")
        out = bytearray(bytes(acc["discriminator"]))
        self._encoder_of({"defined": {"name": name}}, name)(value, out)
        return bytes(out)

    def account_size(self, name: str) -> int:
        """Bytes of a fixed-size account, discriminator included."""
        size = self.fixed_size({"defined": {"name": name}})
        if size is None:
            raise CodecError(f"account {name} has no fixed size")
        return 8 + size

    def encode_instruction(self, name: str, args: dict[str, Any]) -> bytes:
        ix = self.instructions.get(name)
        if ix is None:
            raise CodecError(f"instruction {name} is not in the IDL")
        out = bytearray(bytes(ix["discriminator"]))
        for arg in ix["args"]:
            if arg["name"] not in args:
                raise CodecError(f"{name}: missing argument {arg['name']}")
            self._encoder_of(arg["type"], f"{name}.{arg['name']}")(args[arg["name"]], out)
        return bytes(out)

    def decode_instruction(self, data: bytes) -> tuple[str, dict[str, Any]]:
        name = self._ix_by_disc.get(bytes(data[:8]))
        if name is None:
            raise CodecError(f"unknown instruction discriminator {bytes(data[:8]).hex()}")
        off, args = 8, {}
        for arg in self.instructions[name]["args"]:
            args[arg["name"]], off = self.decode_type(arg["type"], data, off)
        if off != len(data):
            raise CodecError(f"{name}: {len(data) - off} trailing byte(s)")
        return name, args

    def decode_type(self, ty: Any, data: bytes, offset: int = 0) -> tuple[Any, int]:
        try:
            return self._decoder_of(ty)(bytes(data), offset)
        except struct.error as e:
            raise CodecError(f"{_type_name(ty)}: data too short ({e})") from None
        except (IndexError, KeyError) as e:
            raise CodecError(f"{_type_name(ty)}: cannot decode ({e})") from None

    def encode_type(self, ty: Any, value: Any) -> bytes:
        out = bytearray()
        self._encoder_of(ty, _type_name(ty))(value, out)
        return bytes(out)

    def fixed_size(self, ty: Any) -> int | None:
        fast = self._fast_of(ty)
        return fast[0].size if fast is not None else None

    def field_offsets(self, name: str) -> dict[str, int]:
        """Byte offset of each field of fixed-size struct ``name`` (its start at 0), for
        ``getProgramAccounts`` memcmp filters and fixed-offset readers."""
        td = self._typedef(name)
        out, off = {}, 0
        pads = _pad_map(self, name, td) if self._fast_of({"defined": {"name": name}}) else {}
        for f, t in self._fields(td):
            off += pads.get(f, 0)
            size = self.fixed_size(t)
            if size is None:
                raise CodecError(f"{name}.{f} has no fixed size")
            out[str(f)] = off
            off += size
        return out

    def implicit_padding(self, name: str) -> list[str]:
        """Padding the compiler inserts in zero-copy type ``name`` that the IDL does not spell
        out (``"field: N byte(s)"``); decoding honours it."""
        self._fast_of({"defined": {"name": name}})
        return list(self._padding.get(name, []))

    # ------------------------------------------------------------------ type definitions
    def _typedef(self, name: str) -> dict[str, Any]:
        td = self.types.get(name)
        if td is None:
            raise CodecError(f"type {name} is not defined in the IDL")
        if td.get("generics"):
            raise CodecError(f"type {name}: generic types are not supported")
        return td

    @staticmethod
    def _fields(node: dict[str, Any]) -> list[tuple[str | int, Any]]:
        """(name or position, type) of a struct definition's or an enum variant's fields."""
        fields = node.get("type", node).get("fields") or []
        return [
            (f["name"], f["type"]) if isinstance(f, dict) and "name" in f else (i, f)
            for i, f in enumerate(fields)
        ]

    def _is_c(self, td: dict[str, Any]) -> bool:
        repr_ = td.get("repr") or {}
        return td.get("serialization") in _ZERO_COPY and repr_.get("kind") == "c" and not repr_.get("packed")

    def _align(self, ty: Any) -> int:
        """SBF alignment of a zero-copy field type (u128 aligns to 8 on SBF)."""
        if isinstance(ty, str):
            return {"bool": 1, "u8": 1, "i8": 1, "pubkey": 1}.get(ty, min(8, _prim_size(ty)))
        if "array" in ty:
            return self._align(ty["array"][0])
        if "defined" in ty:
            td = self._typedef(ty["defined"]["name"])
            if td["type"]["kind"] == "struct":
                fields = self._fields(td)
                packed = (td.get("repr") or {}).get("packed")
                return 1 if packed or not fields else max(self._align(t) for _, t in fields)
            if td["type"]["kind"] == "type":
                return self._align(td["type"]["alias"])
            return 1
        return 1

    # ------------------------------------------------------------------ fixed-size fast path
    def _fast_of(self, ty: Any) -> tuple[struct.Struct, Build] | None:
        key = _key(ty)
        if key not in self._fast:
            self._fast[key] = None  # recursion guard
            plan = self._plan(ty)
            self._fast[key] = None if plan is None else (struct.Struct("<" + plan[0]), plan[1])
        return self._fast[key]

    def _plan(self, ty: Any) -> tuple[str, Build] | None:
        if isinstance(ty, str):
            if ty in _INT_FMT:
                return _INT_FMT[ty], next
            if ty == "bool":
                return "B", lambda it: next(it) != 0
            if ty in _WIDE:
                n, signed = _WIDE[ty]
                return f"{n}s", lambda it: int.from_bytes(next(it), "little", signed=signed)
            if ty == "pubkey":
                return "32s", lambda it: Pubkey.from_bytes(next(it))
            return None
        if "array" in ty:
            elem, n = ty["array"]
            if not isinstance(n, int):
                return None
            if elem == "u8":
                return f"{n}s", next
            sub = self._plan(elem)
            if sub is None:
                return None
            fmt, build = sub
            return fmt * n, lambda it: [build(it) for _ in range(n)]
        if "defined" in ty:
            name = ty["defined"]["name"]
            td = self._typedef(name)
            kind = td["type"]["kind"]
            if kind == "type":
                return self._plan(td["type"]["alias"])
            if kind == "enum":
                variants = [v["name"] for v in td["type"]["variants"]]
                if any(v.get("fields") for v in td["type"]["variants"]):
                    return None

                def enum_build(it: Iterator[Any]) -> str:
                    i = next(it)
                    if i >= len(variants):
                        raise CodecError(f"{name}: unknown variant {i}")
                    return str(variants[i])

                return "B", enum_build
            return self._plan_struct(name, td)
        return None

    def _plan_struct(self, name: str, td: dict[str, Any]) -> tuple[str, Build] | None:
        fmts, builders, offset, pads = [], [], 0, []
        c_layout = self._is_c(td)
        for fname, fty in self._fields(td):
            sub = self._plan(fty)
            if sub is None:
                return None
            if c_layout:
                a = self._align(fty)
                gap = (-offset) % a
                if gap:
                    fmts.append(f"{gap}x")
                    pads.append(f"{fname}: {gap} byte(s)")
                    offset += gap
            fmts.append(sub[0])
            offset += struct.calcsize("<" + sub[0])
            builders.append((fname, sub[1]))
        if c_layout and fmts:
            a = self._align({"defined": {"name": name}})
            if offset % a:
                fmts.append(f"{(-offset) % a}x")
                pads.append(f"(end): {(-offset) % a} byte(s)")
        self._padding[name] = pads
        tuple_struct = any(isinstance(f, int) for f, _ in builders)

        def build(it: Iterator[Any]) -> Any:
            if tuple_struct:
                return [b(it) for _, b in builders]
            return {f: b(it) for f, b in builders}

        return "".join(fmts), build

    # ------------------------------------------------------------------ decoders
    def _decoder_of(self, ty: Any) -> Dec:
        key = _key(ty)
        dec = self._dec.get(key)
        if dec is None:
            dec = self._compile_dec(ty)
            self._dec[key] = dec
        return dec

    def _compile_dec(self, ty: Any) -> Dec:
        fast = self._fast_of(ty)
        if fast is not None:
            st, build = fast

            def dec_fixed(b: bytes, off: int) -> tuple[Any, int]:
                return build(iter(st.unpack_from(b, off))), off + st.size

            return dec_fixed
        if isinstance(ty, str):
            if ty in ("string", "bytes"):
                as_text = ty == "string"

                def dec_bytes(b: bytes, off: int) -> tuple[Any, int]:
                    (n,) = struct.unpack_from("<I", b, off)
                    if off + 4 + n > len(b):
                        raise CodecError(f"{ty}: length {n} runs past the data")
                    raw = b[off + 4 : off + 4 + n]
                    return (raw.decode() if as_text else raw), off + 4 + n

                return dec_bytes
            raise CodecError(f"unsupported IDL type {ty!r}")
        if "option" in ty or "coption" in ty:
            coption = "coption" in ty
            inner = self._decoder_of(ty["coption"] if coption else ty["option"])

            def dec_option(b: bytes, off: int) -> tuple[Any, int]:
                if coption:
                    (tag,), off = struct.unpack_from("<I", b, off), off + 4
                else:
                    tag, off = b[off], off + 1
                if tag == 0:
                    return None, off
                if tag != 1:
                    raise CodecError(f"option tag {tag} is neither 0 nor 1")
                return inner(b, off)

            return dec_option
        if "vec" in ty:
            elem = ty["vec"]
            inner = self._decoder_of(elem)

            def dec_vec(b: bytes, off: int) -> tuple[Any, int]:
                (n,) = struct.unpack_from("<I", b, off)
                off += 4
                if elem == "u8":
                    if off + n > len(b):
                        raise CodecError(f"vec<u8>: length {n} runs past the data")
                    return b[off : off + n], off + n
                if n > len(b) - off:
                    raise CodecError(f"vec: length {n} runs past the data")
                out = []
                for _ in range(n):
                    v, off = inner(b, off)
                    out.append(v)
                return out, off

            return dec_vec
        if "array" in ty:
            inner, n = self._decoder_of(ty["array"][0]), ty["array"][1]

            def dec_array(b: bytes, off: int) -> tuple[Any, int]:
                out = []
                for _ in range(n):
                    v, off = inner(b, off)
                    out.append(v)
                return out, off

            return dec_array
        if "defined" in ty:
            return self._compile_defined_dec(ty["defined"]["name"])
        raise CodecError(f"unsupported IDL type {ty!r}")

    def _compile_defined_dec(self, name: str) -> Dec:
        td = self._typedef(name)
        kind = td["type"]["kind"]
        if kind == "type":
            return self._decoder_of(td["type"]["alias"])
        if kind == "struct":
            fields = [(f, self._decoder_of(t)) for f, t in self._fields(td)]
            tuple_struct = any(isinstance(f, int) for f, _ in fields)

            def dec_struct(b: bytes, off: int) -> tuple[Any, int]:
                vals = []
                for _, d in fields:
                    v, off = d(b, off)
                    vals.append(v)
                if tuple_struct:
                    return vals, off
                return dict(zip((f for f, _ in fields), vals, strict=True)), off

            return dec_struct
        variants = td["type"]["variants"]
        vdecs = [[(f, self._decoder_of(t)) for f, t in self._fields(v)] for v in variants]

        def dec_enum(b: bytes, off: int) -> tuple[Any, int]:
            i, off = b[off], off + 1
            if i >= len(variants):
                raise CodecError(f"{name}: unknown variant {i}")
            vname, fields = variants[i]["name"], vdecs[i]
            if not fields:
                return vname, off
            vals = []
            for _, d in fields:
                v, off = d(b, off)
                vals.append(v)
            if isinstance(fields[0][0], int):
                return {vname: vals}, off
            return {vname: dict(zip((f for f, _ in fields), vals, strict=True))}, off

        return dec_enum

    # ------------------------------------------------------------------ encoders
    def _encoder_of(self, ty: Any, path: str) -> Enc:
        key = _key(ty)
        enc = self._enc.get(key)
        if enc is None:
            enc = self._compile_enc(ty)
            self._enc[key] = enc
        return _with_path(enc, path)

    def _compile_enc(self, ty: Any) -> Enc:
        if isinstance(ty, str):
            return _prim_encoder(ty)
        if "option" in ty or "coption" in ty:
            coption = "coption" in ty
            inner_ty = ty["coption"] if coption else ty["option"]
            inner = self._encoder_of(inner_ty, _type_name(inner_ty))
            size = self.fixed_size(inner_ty) if coption else None

            def enc_option(v: Any, out: bytearray) -> None:
                if v is None:
                    out += b"\0\0\0\0" if coption else b"\0"
                    if coption:
                        out += bytes(size or 0)
                    return
                out += b"\1\0\0\0" if coption else b"\1"
                inner(v, out)

            return enc_option
        if "vec" in ty or "array" in ty:
            is_vec = "vec" in ty
            elem = ty["vec"] if is_vec else ty["array"][0]
            n = None if is_vec else ty["array"][1]
            inner = self._encoder_of(elem, _type_name(elem))

            def enc_seq(v: Any, out: bytearray) -> None:
                if elem == "u8" and isinstance(v, bytes | bytearray):
                    seq: Any = bytes(v)
                elif isinstance(v, list | tuple):
                    seq = v
                else:
                    raise CodecError(f"expected a list, got {type(v).__name__}")
                if n is not None and len(seq) != n:
                    raise CodecError(f"array needs {n} element(s), got {len(seq)}")
                if is_vec:
                    out += struct.pack("<I", len(seq))
                if isinstance(seq, bytes):
                    out += seq
                    return
                for x in seq:
                    inner(x, out)

            return enc_seq
        if "defined" in ty:
            return self._compile_defined_enc(ty["defined"]["name"])
        raise CodecError(f"unsupported IDL type {ty!r}")

    def _compile_defined_enc(self, name: str) -> Enc:
        td = self._typedef(name)
        kind = td["type"]["kind"]
        if kind == "type":
            return self._encoder_of(td["type"]["alias"], name)
        if kind == "struct":
            self._fast_of({"defined": {"name": name}})  # computes implicit padding, if any
            pads = _pad_map(self, name, td)
            fields = [(f, self._encoder_of(t, f"{name}.{f}")) for f, t in self._fields(td)]

            def enc_struct(v: Any, out: bytearray) -> None:
                for f, e in fields:
                    if f in pads:
                        out += bytes(pads[f])
                    try:
                        e(v[f], out)
                    except (KeyError, IndexError, TypeError):
                        raise CodecError(f"{name}: missing field {f}") from None
                if "(end)" in pads:
                    out += bytes(pads["(end)"])

            return enc_struct
        variants = td["type"]["variants"]
        index = {v["name"]: i for i, v in enumerate(variants)}
        vencs = [
            [(f, self._encoder_of(t, f"{name}::{v['name']}")) for f, t in self._fields(v)] for v in variants
        ]

        def enc_enum(v: Any, out: bytearray) -> None:
            vname, payload = (v, None) if isinstance(v, str) else next(iter(v.items()))
            i = index.get(vname)
            if i is None:
                raise CodecError(f"{name}: no variant {vname!r}")
            out.append(i)
            if vencs[i] and payload is None:
                raise CodecError(f"{name}::{vname} needs its fields")
            for f, e in vencs[i]:
                e(payload[f], out)  # type: ignore[index]

        return enc_enum


# ---------------------------------------------------------------------------- helpers
def _prim_size(ty: str) -> int:
    if ty in _INT_FMT:
        return struct.calcsize("<" + _INT_FMT[ty])
    if ty in _WIDE:
        return _WIDE[ty][0]
    return {"bool": 1, "pubkey": 32}.get(ty, 1)


def _prim_encoder(ty: str) -> Enc:
    if ty in _INT_FMT:
        st = struct.Struct("<" + _INT_FMT[ty])
        is_float = ty in ("f32", "f64")

        def enc_int(v: Any, out: bytearray) -> None:
            if not is_float:
                _to_int(v, ty)
            out += st.pack(v)

        return enc_int
    if ty in _WIDE:
        n, signed = _WIDE[ty]

        def enc_wide(v: Any, out: bytearray) -> None:
            try:
                out += _to_int(v, ty).to_bytes(n, "little", signed=signed)
            except OverflowError:
                raise CodecError(f"{ty}: {v} out of range") from None

        return enc_wide
    if ty == "bool":
        return lambda v, out: out.append(1 if v else 0)
    if ty == "pubkey":

        def enc_pubkey(v: Any, out: bytearray) -> None:
            raw = bytes(v) if isinstance(v, Pubkey | bytes | bytearray) else bytes(Pubkey.from_string(str(v)))
            if len(raw) != 32:
                raise CodecError(f"pubkey: {len(raw)} bytes")
            out += raw

        return enc_pubkey
    if ty in ("string", "bytes"):

        def enc_bytes(v: Any, out: bytearray) -> None:
            raw = v.encode() if isinstance(v, str) else bytes(v)
            out += struct.pack("<I", len(raw)) + raw

        return enc_bytes
    raise CodecError(f"unsupported IDL type {ty!r}")


def _with_path(enc: Enc, path: str) -> Enc:
    def wrapped(v: Any, out: bytearray) -> None:
        try:
            enc(v, out)
        except struct.error as e:
            raise CodecError(f"{path}: {e}") from None

    return wrapped


def _pad_map(codec: IdlCodec, name: str, td: dict[str, Any]) -> dict[str | int, int]:
    out: dict[str | int, int] = {}
    for p in codec._padding.get(name, []):
        field, _, rest = p.partition(": ")
        out[field] = int(rest.split()[0])
    return out


def _key(ty: Any) -> str:
    return ty if isinstance(ty, str) else repr(ty)


def _type_name(ty: Any) -> str:
    if isinstance(ty, str):
        return ty
    if "defined" in ty:
        return str(ty["defined"]["name"])
    return repr(ty)
