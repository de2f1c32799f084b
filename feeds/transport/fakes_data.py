"""Real recorded frames for the local fake venues (tests and benchmarks only).

Loads the shared recordings once: the hftbacktest Binance futures file (one REST depth snapshot,
depth diffs, bookTickers, trades) and cryptofeed's Bybit/OKX samples (websocket frames, REST
instrument bodies). Nothing here talks to the network.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import msgspec

from feeds.replay.readers import open_recording


class _Depth(msgspec.Struct):
    U: int
    u: int
    pu: int
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]


class _DepthEnv(msgspec.Struct):
    data: _Depth


class _Snapshot(msgspec.Struct):
    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class BinanceFrame:
    kind: str  # "depth" | "ticker" | "trade"
    text: str
    U: int = 0
    u: int = 0
    pu: int = 0
    bids: tuple[tuple[str, str], ...] = ()
    asks: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class BinanceData:
    symbol: str
    snapshot_id: int
    snapshot_bids: tuple[tuple[str, str], ...]
    snapshot_asks: tuple[tuple[str, str], ...]
    frames: tuple[BinanceFrame, ...]  # from the diff that bridges the snapshot on, in receive order
    id_span: int  # offset added per replay cycle so update ids keep increasing


@functools.lru_cache(maxsize=4)
def load_binance(path: Path) -> BinanceData:
    rec = open_recording(path)
    env_dec = msgspec.json.Decoder(_DepthEnv)
    snap: _Snapshot | None = None
    frames: list[BinanceFrame] = []
    symbol = ""
    for f in rec.frames():
        if f.kind == "http":
            if snap is None:
                snap = msgspec.json.decode(f.data, type=_Snapshot)
            continue
        text = f.data.decode()
        head = text[:60]
        if "@depth" in head:
            d = env_dec.decode(f.data).data
            frames.append(BinanceFrame("depth", text, d.U, d.u, d.pu, tuple(d.b), tuple(d.a)))
        elif "@bookTicker" in head:
            frames.append(BinanceFrame("ticker", text))
        elif "@trade" in head or "@aggTrade" in head:
            frames.append(BinanceFrame("trade", text))
        if not symbol:
            m = re.search(r'"s":"([A-Z0-9]+)"', text)
            symbol = m.group(1) if m else ""
    if snap is None:
        raise ValueError(f"{path}: no depth snapshot")
    sid = snap.lastUpdateId
    start = next(i for i, fr in enumerate(frames) if fr.kind == "depth" and fr.U <= sid <= fr.u)
    frames = frames[start:]
    last = max(fr.u for fr in frames if fr.kind == "depth")
    return BinanceData(symbol, snap.lastUpdateId, tuple(snap.bids), tuple(snap.asks), tuple(frames),
                       last - snap.lastUpdateId + 1_000_000)


_ID_RE = re.compile(r'"(U|u|pu)":(\d+)')


def shift_ids(text: str, offset: int) -> str:
    """The same frame with its update ids moved by ``offset`` (replay cycles after the first)."""
    if not offset:
        return text
    return _ID_RE.sub(lambda m: f'"{m.group(1)}":{int(m.group(2)) + offset}', text)


@dataclass(frozen=True, slots=True)
class VenueSample:
    """Recorded websocket frames (text) and REST bodies by URL of one cryptofeed sample."""

    ws_frames: tuple[str, ...]
    http: dict[str, str]


@functools.lru_cache(maxsize=4)
def load_sample(path: Path, conn: str | None = None) -> VenueSample:
    rec = open_recording(path)
    frames: list[str] = []
    http: dict[str, str] = {}
    for f in rec.frames():
        if f.kind == "recv" and (conn is None or f.conn == conn):
            frames.append(f.data.decode())
        elif f.kind == "http":
            http.setdefault(f.url, f.data.decode())
    return VenueSample(tuple(frames), http)
