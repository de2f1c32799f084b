"""Open interest and funding of every venue and instrument, per venue and aggregated (pure).

Values are kept per ``(venue, symbol)`` (OKX has a USDT and a USDC swap). Aggregates use only
values at most ``max_age_s`` old at ``now_ms`` (event time): a venue that stopped reporting drops
out instead of freezing the total; nothing known gives ``None`` (missing stays missing, never 0).

* Open interest: USD notional (one side), summed per venue and over every venue.
* Funding APR: each instrument's own APR (its own interval); a venue's APR and the aggregate are
  the open-interest-weighted mean of their instruments when every one of them has a fresh OI,
  else the plain mean.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.models import Funding, OpenInterest

Key = tuple[str, str]  # (venue, symbol)


def _fresh(ts: int, now_ms: int, max_age_s: float) -> bool:
    return (now_ms - ts) / 1000.0 <= max_age_s


def weighted_apr(pairs: Iterable[tuple[float, float | None]]) -> float | None:
    """Mean of ``apr`` weighted by ``oi`` when every ``oi`` is known and positive, else plain."""
    items = list(pairs)
    if not items:
        return None
    weights = [w for _, w in items]
    if all(w is not None and w > 0 for w in weights):
        total = sum(w for w in weights if w is not None)
        return sum(a * (w or 0.0) for a, w in items) / total
    return sum(a for a, _ in items) / len(items)


class Derivatives:
    """Latest :class:`Funding` and :class:`OpenInterest` per (venue, symbol); a late value never
    replaces a newer one."""

    def __init__(self) -> None:
        self.funding: dict[Key, Funding] = {}
        self.oi: dict[Key, OpenInterest] = {}

    def on_funding(self, f: Funding) -> None:
        key = (f.venue, f.symbol)
        cur = self.funding.get(key)
        if cur is None or f.ts >= cur.ts:
            self.funding[key] = f

    def on_open_interest(self, o: OpenInterest) -> None:
        key = (o.venue, o.symbol)
        cur = self.oi.get(key)
        if cur is None or o.ts >= cur.ts:
            self.oi[key] = o

    def oi_by_venue(self, now_ms: int, max_age_s: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for (venue, _), o in self.oi.items():
            if _fresh(o.ts, now_ms, max_age_s):
                out[venue] = out.get(venue, 0.0) + o.oi_notional
        return out

    def oi_total(self, now_ms: int, max_age_s: float) -> float | None:
        by_venue = self.oi_by_venue(now_ms, max_age_s)
        return sum(by_venue.values()) if by_venue else None

    def _apr_pairs(self, now_ms: int, max_age_s: float, oi_max_age_s: float,
                   venue: str | None = None) -> list[tuple[float, float | None]]:
        pairs: list[tuple[float, float | None]] = []
        for key, f in self.funding.items():
            if (venue is None or key[0] == venue) and _fresh(f.ts, now_ms, max_age_s):
                o = self.oi.get(key)
                w = o.oi_notional if o is not None and _fresh(o.ts, now_ms, oi_max_age_s) else None
                pairs.append((f.apr_pct, w))
        return pairs

    def funding_by_venue(self, now_ms: int, max_age_s: float, oi_max_age_s: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for venue in sorted({k[0] for k in self.funding}):
            apr = weighted_apr(self._apr_pairs(now_ms, max_age_s, oi_max_age_s, venue))
            if apr is not None:
                out[venue] = apr
        return out

    def funding_aggregate(self, now_ms: int, max_age_s: float, oi_max_age_s: float) -> float | None:
        return weighted_apr(self._apr_pairs(now_ms, max_age_s, oi_max_age_s))
