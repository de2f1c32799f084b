"""The paper venue's account: positions (signed size, average entry), realized PnL, fees and
funding per market. Pure bookkeeping, no I/O.

``equity = start + Σ realized + Σ unrealized − Σ fees + Σ funding`` where ``fees`` is signed
(a maker rebate is a negative fee) and ``funding`` is what the account received (negative = paid).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.venue import Position
from execution.paper_book import QTY_EPS


@dataclass(slots=True)
class _Pos:
    size: float = 0.0
    avg_price: float = 0.0
    realized: float = 0.0
    fees: float = 0.0
    funding: float = 0.0


@dataclass(slots=True)
class Ledger:
    start_equity: float
    positions: dict[str, _Pos] = field(default_factory=dict)

    def size(self, market: str) -> float:
        pos = self.positions.get(market)
        return pos.size if pos is not None else 0.0

    def apply_fill(self, market: str, signed_qty: float, price: float, fee: float) -> None:
        """Book a fill of ``signed_qty`` (+ buy, − sell) at ``price`` paying ``fee``."""
        pos = self.positions.setdefault(market, _Pos())
        pos.fees += fee
        s = pos.size
        if s == 0.0 or (s > 0) == (signed_qty > 0):
            new = s + signed_qty
            pos.avg_price = (abs(s) * pos.avg_price + abs(signed_qty) * price) / abs(new)
            pos.size = new
            return
        closed = min(abs(signed_qty), abs(s))
        pos.realized += closed * (price - pos.avg_price) * (1.0 if s > 0 else -1.0)
        new = s + signed_qty
        if abs(new) <= QTY_EPS * max(1.0, abs(s)):
            pos.size, pos.avg_price = 0.0, 0.0
        elif (new > 0) != (s > 0):  # flipped through zero: the rest opens at the fill price
            pos.size, pos.avg_price = new, price
        else:
            pos.size = new

    def accrue_funding(self, rate: float, price: float) -> None:
        """One funding payment: longs pay ``rate × size × price`` when the rate is positive."""
        for pos in self.positions.values():
            if pos.size:
                pos.funding -= rate * pos.size * price

    def unrealized(self, mark: float | None) -> float:
        if mark is None:
            return 0.0
        return sum(p.size * (mark - p.avg_price) for p in self.positions.values() if p.size)

    def realized(self) -> float:
        return sum(p.realized for p in self.positions.values())

    def fees(self) -> float:
        return sum(p.fees for p in self.positions.values())

    def funding(self) -> float:
        return sum(p.funding for p in self.positions.values())

    def equity(self, mark: float | None) -> float:
        return self.start_equity + self.realized() + self.unrealized(mark) - self.fees() + self.funding()

    def position(self, market: str) -> Position:
        pos = self.positions.get(market)
        if pos is None:
            return Position(market=market)
        return Position(
            market=market,
            size=pos.size,
            avg_price=pos.avg_price,
            realized_pnl=pos.realized,
            fees=pos.fees,
            funding=pos.funding,
        )

    def copy(self) -> Ledger:
        return Ledger(
            self.start_equity,
            {m: _Pos(p.size, p.avg_price, p.realized, p.fees, p.funding) for m, p in self.positions.items()},
        )
