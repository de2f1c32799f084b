"""Drift venue status from the State and PerpMarket accounts: pause bits decoded into words.

The bit values are the program's (protocol-v2 ``state.rs`` / ``perp_market.rs``). driftpy's
``math/exchange_status.py`` is NOT used: its ``ExchangeStatusValues`` start at ``Active = 1`` and
are therefore shifted by one bit (its ``FillPaused = 16`` is the program's ``LiqPaused``).

Policy — as the program has it (it refuses *everything* only at exchange status 0xFF):

* ``PAUSED`` (every order refused, **even cancels cannot be sent**): exchange status 0xFF; market
  status ``Initialized``/``Settlement``/``Delisted`` (no orders in that market);
* ``REDUCE_ONLY`` (new entries refused; reduce-only orders — the stop, the take-profits, a
  flatten — and cancels allowed): fills paused (exchange ``FillPaused``, market status
  ``FillPaused``, market operation ``Fill``), the AMM paused (exchange ``AmmPaused``, market status
  ``AmmPaused``, operation ``AmmFill``), market status ``ReduceOnly``;
* ``ACTIVE`` otherwise; other paused bits (deposits, withdrawals, funding, liquidations, settle
  PnL, ``SettleRevPool``) are listed in the reason as notes, they do not stop order flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.venue import VenueState, VenueStatus

# State.exchange_status (u8 bit flags)
EXCHANGE_BITS: tuple[tuple[int, str], ...] = (
    (0x01, "DepositPaused"),
    (0x02, "WithdrawPaused"),
    (0x04, "AmmPaused"),
    (0x08, "FillPaused"),
    (0x10, "LiqPaused"),
    (0x20, "FundingPaused"),
    (0x40, "SettlePnlPaused"),
    (0x80, "AmmImmediateFillPaused"),
)
EXCHANGE_FULLY_PAUSED = 0xFF

# PerpMarket.status (MarketStatus enum, by discriminant)
MARKET_STATUS: tuple[str, ...] = (
    "Initialized",
    "Active",
    "FundingPaused",
    "AmmPaused",
    "FillPaused",
    "WithdrawPaused",
    "ReduceOnly",
    "Settlement",
    "Delisted",
)

# PerpMarket.paused_operations (u8 bit flags, PerpOperation)
PERP_OPERATION_BITS: tuple[tuple[int, str], ...] = (
    (0x01, "UpdateFunding"),
    (0x02, "AmmFill"),
    (0x04, "Fill"),
    (0x08, "SettlePnl"),
    (0x10, "SettlePnlWithPosition"),
    (0x20, "Liquidation"),
    (0x40, "AmmImmediateFill"),
    (0x80, "SettleRevPool"),
)

_MARKET_PAUSING = {"Initialized", "Settlement", "Delisted"}
_MARKET_REDUCING = {"AmmPaused", "FillPaused", "ReduceOnly"}


def decode_bits(value: int, table: tuple[tuple[int, str], ...]) -> list[str]:
    return [name for bit, name in table if value & bit]


def market_status_name(value: int) -> str:
    return MARKET_STATUS[value] if 0 <= value < len(MARKET_STATUS) else f"Unknown({value})"


def market_status_index(status: Any) -> int:
    """The discriminant of a decoded ``MarketStatus`` (driftpy/anchorpy enum object or int)."""
    if isinstance(status, int):
        return status
    name = type(status).__name__
    if name in MARKET_STATUS:
        return MARKET_STATUS.index(name)
    idx = getattr(status, "index", None)
    if isinstance(idx, int):
        return idx
    raise ValueError(f"unrecognised market status {status!r}")


@dataclass(frozen=True)
class DriftStatus:
    """Decoded pause state of the exchange and one perp market."""

    exchange_status: int
    market_status: int
    paused_operations: int
    market_index: int = 0
    slot: int = 0
    exchange_paused: list[str] = field(default_factory=list)
    market_paused_operations: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        exchange_status: int,
        market_status: int,
        paused_operations: int,
        market_index: int = 0,
        slot: int = 0,
    ) -> DriftStatus:
        return cls(
            exchange_status=exchange_status,
            market_status=market_status,
            paused_operations=paused_operations,
            market_index=market_index,
            slot=slot,
            exchange_paused=decode_bits(exchange_status, EXCHANGE_BITS),
            market_paused_operations=decode_bits(paused_operations, PERP_OPERATION_BITS),
        )

    @property
    def market_status_name(self) -> str:
        return market_status_name(self.market_status)

    def evaluate(self) -> tuple[VenueState, str]:
        """(state, reason in words) per the policy in the module docstring."""
        stops: list[str] = []
        reducing: list[str] = []
        notes: list[str] = []
        ex = set(self.exchange_paused)
        ops = set(self.market_paused_operations)
        mname = self.market_status_name
        mi = self.market_index
        if self.exchange_status == EXCHANGE_FULLY_PAUSED:
            stops.append("exchange fully paused (0xFF): every order refused, even cancels cannot be sent")
        else:
            if "FillPaused" in ex:
                reducing.append("exchange fills paused")
            if "AmmPaused" in ex:
                reducing.append("exchange AMM paused")
        if mname in _MARKET_PAUSING or mname.startswith("Unknown"):
            stops.append(f"perp market {mi} status {mname}: no orders")
        elif mname in ("AmmPaused", "FillPaused"):
            reducing.append(f"perp market {mi} status {mname}")
        elif mname == "ReduceOnly":
            reducing.append(f"perp market {mi} is reduce-only")
        if "Fill" in ops:
            reducing.append(f"perp market {mi} fills paused")
        if "AmmFill" in ops:
            reducing.append(f"perp market {mi} AMM fills paused")
        if self.exchange_status != EXCHANGE_FULLY_PAUSED:
            notes += [f"exchange {n}" for n in self.exchange_paused if n not in ("FillPaused", "AmmPaused")]
        notes += [f"market {n} paused" for n in self.market_paused_operations if n not in ("Fill", "AmmFill")]
        if mname in ("FundingPaused", "WithdrawPaused"):
            notes.append(f"perp market {mi} status {mname}")
        if stops:
            return VenueState.PAUSED, "; ".join(stops + reducing + notes)
        if reducing:
            what = "new entries refused; reduce-only orders, cancels and a flatten allowed"
            return VenueState.REDUCE_ONLY, "; ".join([*reducing, what, *notes])
        return VenueState.ACTIVE, "; ".join(notes)

    @property
    def entries_allowed(self) -> bool:
        return self.evaluate()[0] == VenueState.ACTIVE

    def venue_status(self, venue: str, ts: int) -> VenueStatus:
        state, reason = self.evaluate()
        return VenueStatus(venue=venue, state=state, reason=reason, ts=ts)

    @property
    def cancels_allowed(self) -> bool:
        return self.exchange_status != EXCHANGE_FULLY_PAUSED

    def to_json(self) -> dict[str, Any]:
        state, reason = self.evaluate()
        return {
            "state": str(state),
            "reason": reason,
            "slot": self.slot,
            "exchange_status": self.exchange_status,
            "exchange_status_hex": f"0x{self.exchange_status:02X}",
            "exchange_paused": self.exchange_paused,
            "perp_market_index": self.market_index,
            "perp_market_status": self.market_status_name,
            "perp_market_status_value": self.market_status,
            "paused_operations": self.paused_operations,
            "paused_operations_hex": f"0x{self.paused_operations:02X}",
            "paused_operations_names": self.market_paused_operations,
            "entries_allowed": state == VenueState.ACTIVE,
            "reduce_only_allowed": state in (VenueState.ACTIVE, VenueState.REDUCE_ONLY),
            "cancels_allowed": self.cancels_allowed,
        }


def render_text(st: DriftStatus) -> str:
    d = st.to_json()
    lines = [
        f"venue: drift  state: {d['state']}" + (f"  ({d['reason']})" if d["reason"] else ""),
        f"exchange_status: {d['exchange_status_hex']}  paused: {', '.join(d['exchange_paused']) or 'none'}",
        f"perp market {d['perp_market_index']}: status {d['perp_market_status']}  paused_operations: "
        f"{d['paused_operations_hex']} {', '.join(d['paused_operations_names']) or 'none'}",
        f"slot: {d['slot']}",
    ]
    return "\n".join(lines)
