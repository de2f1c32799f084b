"""Velocity venue status: State.exchange_status, PerpMarket.status and paused_operations, and the
program check, in words.

Bits: ``exchange_status`` and ``PerpOperation`` are Drift's (``programs/velocity/src/state/
state.rs``: 0x01 DepositPaused .. 0x80 AmmImmediateFillPaused, 0xFF fully paused). ``MarketStatus``
is renumbered (IDL 2.165.0): Initialized 0, Active 1, ReduceOnly 2, Settlement 3, Delisted 4.

Policy — as the program has it, the same as Drift's (:mod:`execution.drift.status`; Velocity is
a fork of Drift 2.163 and rejects *everything* only at exchange status 0xFF):
``PAUSED`` (no new orders) when the exchange is fully paused (then even cancels are rejected), the
market is Initialized/Settlement/Delisted/unknown, or the program check did not pass (a program
whose IDL differs from the one the venue was built for, or that publishes none: a cancel whose own
instruction still matches is signed); ``REDUCE_ONLY`` (new entries refused; the stop, the
take-profits, a flatten and cancels go out) when fills or AMM fills are paused (exchange or
market), the market is ReduceOnly, or the account's equity-floor breaker is tripped (UserStats: the
program rejects risk-increasing fills until an admin resets it); ``ACTIVE`` otherwise (other pause
bits are listed as notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.venue import VenueState, VenueStatus
from execution.drift.status import EXCHANGE_BITS, EXCHANGE_FULLY_PAUSED, PERP_OPERATION_BITS, decode_bits

MARKET_STATUS = ("Initialized", "Active", "ReduceOnly", "Settlement", "Delisted")
_PAUSING = {"Initialized", "Settlement", "Delisted"}


@dataclass(frozen=True)
class VelocityStatus:
    exchange_status: int
    market_status: str
    paused_operations: int
    market_index: int = 0
    market_name: str = ""
    slot: int = 0
    program_check: str = "not run"  # "match" | "differs: ..." | "unverified: ..."
    trade_allowed: bool = True  # False when the program check did not pass
    equity_breaker_tripped: bool = False  # UserStats: the program rejects risk-increasing fills
    exchange_paused: list[str] = field(default_factory=list)
    market_paused_operations: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls, exchange_status: int, market_status: str, paused_operations: int, **kw: Any
    ) -> VelocityStatus:
        return cls(
            exchange_status=exchange_status,
            market_status=market_status,
            paused_operations=paused_operations,
            exchange_paused=decode_bits(exchange_status, EXCHANGE_BITS),
            market_paused_operations=decode_bits(paused_operations, PERP_OPERATION_BITS),
            **kw,
        )

    @property
    def cancels_allowed(self) -> bool:
        return self.exchange_status != EXCHANGE_FULLY_PAUSED

    def evaluate(self) -> tuple[VenueState, str]:
        stops: list[str] = []
        reducing: list[str] = []
        notes: list[str] = []
        ex, ops, m = set(self.exchange_paused), set(self.market_paused_operations), self.market_status
        where = f"perp market {self.market_index}" + (f" ({self.market_name})" if self.market_name else "")
        if not self.trade_allowed:
            stops.append(f"program check: {self.program_check}")
        if self.exchange_status == EXCHANGE_FULLY_PAUSED:
            stops.append("exchange fully paused (0xFF: place, cancel and modify are rejected)")
        else:
            if "FillPaused" in ex:
                reducing.append("exchange fills paused (no fills, no triggers)")
            if "AmmPaused" in ex:
                reducing.append("exchange AMM paused")
            notes += [f"exchange {n}" for n in self.exchange_paused if n not in ("FillPaused", "AmmPaused")]
        if m in _PAUSING or m not in MARKET_STATUS:
            stops.append(f"{where} status {m}")
        if "Fill" in ops:
            reducing.append(f"{where} fills paused")
        if "AmmFill" in ops:
            reducing.append(f"{where} AMM fills paused")
        notes += [f"market {n} paused" for n in self.market_paused_operations if n not in ("Fill", "AmmFill")]
        if m == "ReduceOnly":
            reducing.append(f"{where} is reduce-only")
        if self.equity_breaker_tripped:
            reducing.append(
                "the account's equity-floor breaker is tripped (risk-increasing fills are rejected)"
            )
        if stops:
            return VenueState.PAUSED, "; ".join(stops + reducing + notes)
        if reducing:
            what = "new entries refused; reduce-only orders, cancels and a flatten allowed"
            return VenueState.REDUCE_ONLY, "; ".join([*reducing, what, *notes])
        return VenueState.ACTIVE, "; ".join(notes)

    def venue_status(self, venue: str, ts: int) -> VenueStatus:
        state, reason = self.evaluate()
        return VenueStatus(venue=venue, state=state, reason=reason, ts=ts)

    def to_json(self) -> dict[str, Any]:
        state, reason = self.evaluate()
        return {
            "venue": "velocity",
            "state": str(state),
            "reason": reason,
            "slot": self.slot,
            "program_check": self.program_check,
            "trade_allowed": self.trade_allowed,
            "equity_breaker_tripped": self.equity_breaker_tripped,
            "exchange_status": self.exchange_status,
            "exchange_status_hex": f"0x{self.exchange_status:02X}",
            "exchange_paused": self.exchange_paused,
            "perp_market_index": self.market_index,
            "perp_market_name": self.market_name,
            "perp_market_status": self.market_status,
            "paused_operations": self.paused_operations,
            "paused_operations_hex": f"0x{self.paused_operations:02X}",
            "paused_operations_names": self.market_paused_operations,
        }


def render_text(d: dict[str, Any]) -> str:
    """``autotrader venue status`` for Velocity (from :meth:`VelocityStatus.to_json`)."""
    lines = [
        f"venue: velocity  state: {d['state']}" + (f"  ({d['reason']})" if d["reason"] else ""),
        f"program check: {d['program_check']}",
        f"exchange_status: {d['exchange_status_hex']}  paused: {', '.join(d['exchange_paused']) or 'none'}",
        f"perp market {d['perp_market_index']} {d['perp_market_name']}: status {d['perp_market_status']}  "
        f"paused_operations: {d['paused_operations_hex']} "
        f"{', '.join(d['paused_operations_names']) or 'none'}",
        f"slot: {d['slot']}",
    ]
    if "equity_usdt" in d:
        lines.append(
            f"equity: {d['equity_usdt']:,.2f} USDT"
            + ("" if d.get("equity_exact", True) else " (some balances unpriced)")
        )
    return "\n".join(lines)
