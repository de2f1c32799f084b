"""OKX v5 open interest and funding (sans-I/O): the ``open-interest`` and ``funding-rate`` channels
and the REST bodies of ``/api/v5/public/open-interest`` and ``/api/v5/public/funding-rate`` (the
same item shape on both), for the configured instruments.

* Open interest item ``{"instId", "instType", "oi", "oiCcy", "oiUsd", "ts"}``: ``oi`` in
  contracts, ``oiCcy`` in the base coin, ``oiUsd`` in USD. OKX counts one side (the open
  contracts), so ``oi_single = oiCcy`` (else ``oi × ctVal`` once the contract is known),
  ``oi_base = 2 × oi_single`` (the both-sides figure of :class:`~core.models.OpenInterest`) and
  ``oi_notional = oiUsd``. An item without ``oiUsd`` carries no notional: it is skipped (counted
  ignored), never published with 0.
* Funding item ``{"instId", "fundingRate", "fundingTime", "nextFundingTime", "ts", ...}``:
  ``fundingTime`` is the upcoming settlement and ``nextFundingTime`` the one after, so the
  instrument's own interval is their difference (1, 2, 4 or 8 h; remembered per instrument for an
  item that lacks one). Without any known interval the item is skipped and counted as an error:
  the interval is never assumed. ``ts`` (generation time) is the event time; an item without it
  takes the receive time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from core.funding import funding_apr_pct
from core.models import Funding, MarketEvent, OpenInterest
from feeds.base import CodecStats, finite

VENUE = "okx"
HOUR_MS = 3_600_000


class OiItem(msgspec.Struct):
    instId: str
    ts: str | int
    oi: str = ""
    oiCcy: str = ""
    oiUsd: str = ""


class FundingItem(msgspec.Struct):
    instId: str
    fundingRate: str
    fundingTime: str | int = ""
    nextFundingTime: str | int = ""
    ts: str | int = ""


OI_ITEMS = msgspec.json.Decoder(list[OiItem])
FUNDING_ITEMS = msgspec.json.Decoder(list[FundingItem])


def _ms(v: str | int) -> int:
    out = int(v)
    if out < 0:
        raise ValueError(f"negative timestamp {v!r}")
    return out


@dataclass(slots=True)
class OkxDerivatives:
    """Open interest and funding of ``inst_ids``; ``ct_val(inst)`` gives a known contract value."""

    inst_ids: frozenset[str]
    stats: CodecStats
    intervals_h: dict[str, float] = field(default_factory=dict)

    def open_interest(self, raw: msgspec.Raw | bytes, ct_vals: dict[str, float]) -> list[MarketEvent]:
        """Items of an ``open-interest`` push or REST body; raises on a malformed one."""
        out: list[MarketEvent] = []
        for it in OI_ITEMS.decode(raw):
            if it.instId not in self.inst_ids:
                continue
            ts = _ms(it.ts)
            if not it.oiUsd:
                self.stats.ignored += 1  # no notional: missing stays missing
                continue
            usd = finite(it.oiUsd)
            if it.oiCcy:
                single = finite(it.oiCcy)
            elif it.oi and it.instId in ct_vals:
                single = finite(it.oi) * ct_vals[it.instId]
            else:
                self.stats.ignored += 1
                continue
            if single < 0 or usd < 0:
                raise ValueError(f"negative open interest {it!r}")
            out.append(OpenInterest(VENUE, it.instId, ts, 2.0 * single, single, usd))
        return out

    def funding(self, raw: msgspec.Raw | bytes, recv_ns: int) -> list[MarketEvent]:
        """Items of a ``funding-rate`` push or REST body; raises on a malformed one."""
        out: list[MarketEvent] = []
        missing: list[str] = []
        for it in FUNDING_ITEMS.decode(raw):
            if it.instId not in self.inst_ids:
                continue
            rate = finite(it.fundingRate)
            settle = _ms(it.fundingTime) if it.fundingTime != "" else 0
            nxt = _ms(it.nextFundingTime) if it.nextFundingTime != "" else 0
            if settle and nxt > settle:
                self.intervals_h[it.instId] = (nxt - settle) / HOUR_MS
            interval = self.intervals_h.get(it.instId)
            if interval is None:
                missing.append(it.instId)
                continue
            ts = _ms(it.ts) if it.ts != "" else recv_ns // 1_000_000
            out.append(Funding(VENUE, it.instId, ts, rate, interval, funding_apr_pct(rate, interval),
                               next_funding_ts=settle))
        if missing:
            self.stats.errors += 1
            self.stats.last_error = (f"okx funding for {', '.join(sorted(set(missing)))}: funding interval "
                                     "unknown (no nextFundingTime yet); not assuming 8 h")
        return out
