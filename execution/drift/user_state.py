"""Orders, position and fills from the Drift User account, reconciled into ``core.venue`` events.

Decoding: the User account is decoded with driftpy's IDL coder (``program.coder.accounts``), NOT
with ``driftpy.decode.user.decode_user``: under the current IDL bytes 88..91 of each 96-byte
PerpPosition are ``padding: [u8; 2]`` + ``max_margin_ratio: u16``, but ``decode_user`` still reads
them as an ``i32 remainder_base_asset_amount`` (a pre-2.1xx layout). The coder follows the IDL.

Reconciliation (:func:`diff`): between two snapshots, per order of ours (bound to a client tag):

* ``base_asset_amount_filled`` grew -> a :class:`Fill` of the difference, priced from the growth of
  ``quote_asset_amount_filled``;
* ``trigger_condition`` became TriggeredAbove/Below -> status ``triggered``;
* the order left the account (the program resets a filled or cancelled order slot to default):
  the position change not explained by the fills seen on still-open orders is attributed to the
  vanished orders (in their direction, up to their remaining size). Fully explained -> filled
  (priced at the order's limit price, or its trigger price for a trigger-market: approximate, the
  account does not keep the fill price of a finished order); otherwise the rest is cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.venue import OrderStatus

BASE = 1_000_000_000
PRICE = 1_000_000
QUOTE = 1_000_000


def _variant(v: Any) -> str:
    return type(v).__name__


@dataclass(frozen=True)
class ChainOrder:
    """One open order slot of the User account (integers in venue precision)."""

    order_id: int
    user_order_id: int
    market_index: int
    order_type: str  # Market | Limit | TriggerMarket | TriggerLimit | Oracle
    direction: str  # Long | Short
    base: int
    filled: int
    quote_filled: int
    price: int
    trigger_price: int
    trigger_condition: str  # Above | Below | TriggeredAbove | TriggeredBelow
    reduce_only: bool
    post_only: bool
    slot: int = 0
    market_type: str = "Perp"  # Perp | Spot

    def in_perp(self, market_index: int) -> bool:
        return self.market_type == "Perp" and self.market_index == market_index

    @property
    def side(self) -> str:
        return "buy" if self.direction == "Long" else "sell"

    @property
    def sign(self) -> int:
        return 1 if self.direction == "Long" else -1

    @property
    def triggered(self) -> bool:
        return self.trigger_condition.startswith("Triggered")

    @property
    def status(self) -> OrderStatus:
        return OrderStatus.TRIGGERED if self.triggered else OrderStatus.OPEN


@dataclass(frozen=True)
class PerpPos:
    market_index: int
    base: int = 0
    quote: int = 0  # quote_asset_amount: entry cost + realized pnl - fees + funding (signed)
    quote_entry: int = 0
    settled_pnl: int = 0
    open_orders: int = 0
    max_margin_ratio: int = 0


@dataclass(frozen=True)
class UserSnapshot:
    slot: int
    authority: str
    delegate: str
    sub_account_id: int
    orders: dict[int, ChainOrder] = field(default_factory=dict)  # by order_id
    positions: dict[int, PerpPos] = field(default_factory=dict)  # by market index
    next_order_id: int = 0

    def position(self, market_index: int) -> PerpPos:
        return self.positions.get(market_index, PerpPos(market_index=market_index))

    def by_user_order_id(self, uid: int) -> ChainOrder | None:
        for o in self.orders.values():
            if o.user_order_id == uid:
                return o
        return None


def snapshot_from_decoded(user: Any, slot: int) -> UserSnapshot:
    """Build a snapshot from an IDL-decoded User account (driftpy coder output)."""
    orders: dict[int, ChainOrder] = {}
    for o in user.orders:
        if _variant(o.status) != "Open":
            continue
        orders[int(o.order_id)] = ChainOrder(
            order_id=int(o.order_id),
            user_order_id=int(o.user_order_id),
            market_index=int(o.market_index),
            order_type=_variant(o.order_type),
            direction=_variant(o.direction),
            base=int(o.base_asset_amount),
            filled=int(o.base_asset_amount_filled),
            quote_filled=int(o.quote_asset_amount_filled),
            price=int(o.price),
            trigger_price=int(o.trigger_price),
            trigger_condition=_variant(o.trigger_condition),
            reduce_only=bool(o.reduce_only),
            post_only=bool(o.post_only),
            slot=int(o.slot),
            market_type=_variant(o.market_type),
        )
    positions: dict[int, PerpPos] = {}
    for p in user.perp_positions:
        if not (p.base_asset_amount or p.quote_asset_amount or p.open_orders):
            continue
        positions[int(p.market_index)] = PerpPos(
            market_index=int(p.market_index),
            base=int(p.base_asset_amount),
            quote=int(p.quote_asset_amount),
            quote_entry=int(p.quote_entry_amount),
            settled_pnl=int(p.settled_pnl),
            open_orders=int(p.open_orders),
            max_margin_ratio=int(getattr(p, "max_margin_ratio", 0)),
        )
    return UserSnapshot(
        slot=slot,
        authority=str(user.authority),
        delegate=str(user.delegate),
        sub_account_id=int(user.sub_account_id),
        orders=orders,
        positions=positions,
        next_order_id=int(user.next_order_id),
    )


def referenced_markets(user: Any) -> tuple[set[int], set[int]]:
    """(perp, spot) market indexes the decoded User account references: positions and balances in
    use (driftpy's "not available") and open orders — what the program needs as remaining accounts
    and what its margin maths values."""
    perps: set[int] = set()
    spots: set[int] = set()
    for p in user.perp_positions:
        if p.base_asset_amount or p.quote_asset_amount or p.open_orders or getattr(p, "lp_shares", 0):
            perps.add(int(p.market_index))
    for sp in user.spot_positions:
        if sp.scaled_balance or sp.open_orders:
            spots.add(int(sp.market_index))
    for o in user.orders:
        if _variant(o.status) == "Open":
            (perps if _variant(o.market_type) == "Perp" else spots).add(int(o.market_index))
    return perps, spots


def decode_snapshot(data: bytes, slot: int, decode: Callable[[bytes], Any]) -> UserSnapshot:
    return snapshot_from_decoded(decode(data), slot)


@dataclass(frozen=True)
class FillDelta:
    order: ChainOrder  # the last state known of the order
    size: int  # base units
    quote: int  # quote units (0 when unknown: priced from the order)
    maker: bool


@dataclass(frozen=True)
class OrderChange:
    order: ChainOrder
    status: OrderStatus
    filled: int  # total base filled as far as we know
    quote_filled: int
    reason: str = ""


@dataclass
class Diff:
    fills: list[FillDelta] = field(default_factory=list)
    changes: list[OrderChange] = field(default_factory=list)
    unexplained: int = 0  # position change (base units, signed) no order of ours accounts for


def _is_maker(o: ChainOrder) -> bool:
    return o.order_type == "Limit" and o.post_only


def diff(
    old: UserSnapshot,
    new: UserSnapshot,
    market_index: int,
    ours: Mapping[int, object],
    extra_vanished: Sequence[ChainOrder] = (),
) -> Diff:
    """Fills and order changes between two snapshots for orders in ``ours`` (keyed by user order
    id, unique among open orders; a new on-chain id with the same user order id is Drift's
    modify). ``extra_vanished``: orders whose transaction is *proven* landed but never seen open
    (they landed and finished between two snapshots); the change they do not take is returned as
    ``unexplained``. See the module docstring."""
    out = Diff()
    explained = 0
    vanished: list[ChainOrder] = []
    old_by = {
        o.user_order_id: o
        for o in old.orders.values()
        if o.in_perp(market_index) and o.user_order_id in ours
    }
    new_by = {
        o.user_order_id: o
        for o in new.orders.values()
        if o.in_perp(market_index) and o.user_order_id in ours
    }
    for uid, o in old_by.items():
        n = new_by.get(uid)
        if n is None:
            vanished.append(o)
            continue
        df = n.filled - o.filled if n.order_id == o.order_id else n.filled
        dq = n.quote_filled - o.quote_filled if n.order_id == o.order_id else n.quote_filled
        if df > 0:
            out.fills.append(FillDelta(order=n, size=df, quote=dq, maker=_is_maker(n)))
            explained += n.sign * df
        if (
            df > 0
            or n.triggered != o.triggered
            or n.base != o.base
            or n.price != o.price
            or n.trigger_price != o.trigger_price
            or n.order_id != o.order_id
        ):
            out.changes.append(
                OrderChange(
                    order=n,
                    status=n.status,
                    filled=n.filled,
                    quote_filled=n.quote_filled,
                    reason="modified" if n.order_id != o.order_id else "",
                )
            )
    for uid, n in new_by.items():
        if uid in old_by:
            continue
        if n.filled > 0:
            out.fills.append(FillDelta(order=n, size=n.filled, quote=n.quote_filled, maker=_is_maker(n)))
            explained += n.sign * n.filled
        out.changes.append(
            OrderChange(
                order=n, status=n.status, filled=n.filled, quote_filled=n.quote_filled, reason="accepted"
            )
        )
    delta = new.position(market_index).base - old.position(market_index).base - explained
    for o in vanished:
        rem = o.base - o.filled
        q = max(0, min(rem, o.sign * delta))
        delta -= o.sign * q
        if q > 0:
            out.fills.append(FillDelta(order=o, size=q, quote=0, maker=_is_maker(o)))
        if q >= rem:
            out.changes.append(
                OrderChange(
                    order=o, status=OrderStatus.FILLED, filled=o.base, quote_filled=0, reason="filled"
                )
            )
        else:
            why = "cancelled" if not q else "partially filled, rest cancelled"
            out.changes.append(
                OrderChange(
                    order=o, status=OrderStatus.CANCELLED, filled=o.filled + q, quote_filled=0, reason=why
                )
            )
    for o in extra_vanished:
        if o.user_order_id in new_by or o.user_order_id in old_by:
            continue
        q = max(0, min(o.base, o.sign * delta))
        if q <= 0:
            continue  # nothing says it landed: its confirmation decides
        delta -= o.sign * q
        out.fills.append(FillDelta(order=o, size=q, quote=0, maker=_is_maker(o)))
        status = OrderStatus.FILLED if q >= o.base else OrderStatus.CANCELLED
        out.changes.append(
            OrderChange(
                order=o,
                status=status,
                filled=q,
                quote_filled=0,
                reason="filled" if status == OrderStatus.FILLED else "partially filled, rest cancelled",
            )
        )
    out.unexplained = delta
    return out


def fill_price(f: FillDelta) -> float:
    """USD price of a fill delta (see the module docstring for the finished-order approximation)."""
    if f.quote > 0 and f.size > 0:
        return (f.quote / QUOTE) / (f.size / BASE)
    o = f.order
    px = o.price if o.price > 0 else o.trigger_price
    return px / PRICE
