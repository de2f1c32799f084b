"""Save and restore the paper venue's account (orders, position, fills) so a paper account lives
across restarts like a real one. The market view (book, mark) is not saved: live data refreshes it.

Bounded: the last :data:`KEEP_DONE` finished orders and :data:`KEEP_FILLS` fills are kept (what
restart reconciliation needs); queue-ahead estimates are saved as they were at the last change.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgspec

from core.venue import Fill
from execution.paper_ledger import Ledger, _Pos
from execution.paper_matching import PaperMatcher, _Working

STATE_VERSION = 1
KEEP_DONE = 500
KEEP_FILLS = 5_000


class PaperState(msgspec.Struct, kw_only=True):
    version: int
    start_equity: float
    positions: dict[str, _Pos]
    live: list[_Working]
    done: list[_Working]
    fills: list[Fill]
    next_id: int
    seq: int
    funding_rate: float | None = None
    next_funding_ts: int = 0


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(PaperState)


def dump(m: PaperMatcher) -> bytes:
    done = list(m._done.values())[-KEEP_DONE:]
    st = PaperState(
        version=STATE_VERSION,
        start_equity=m._ledger.start_equity,
        positions=m._ledger.positions,
        live=list(m._live.values()),
        done=done,
        fills=m._fills[-KEEP_FILLS:],
        next_id=m._next_id,
        seq=m._seq,
        funding_rate=m._funding_rate,
        next_funding_ts=m._next_funding_ts,
    )
    return _enc.encode(st)


class PaperStateError(ValueError):
    pass


def load(m: PaperMatcher, blob: bytes) -> dict[str, Any]:
    """Restore ``blob`` into ``m``; returns a summary (orders, position per market)."""
    try:
        st = _dec.decode(blob)
    except msgspec.ValidationError as e:
        raise PaperStateError(f"saved paper state cannot be read: {e}") from None
    if st.version != STATE_VERSION:
        raise PaperStateError(f"saved paper state has version {st.version}, expected {STATE_VERSION}")
    m._ledger = Ledger(st.start_equity, dict(st.positions))
    m._live = {w.order_id: w for w in st.live}
    m._done = OrderedDict((w.order_id, w) for w in st.done)
    m._fills = list(st.fills)
    m._next_id, m._seq = st.next_id, st.seq
    m._funding_rate, m._next_funding_ts = st.funding_rate, st.next_funding_ts
    return {"open_orders": len(m._live), "positions": {k: p.size for k, p in st.positions.items() if p.size}}
