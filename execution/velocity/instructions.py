"""Velocity instructions the venue signs, as pure functions: (who, what, markets) -> solders
``Instruction``. Accounts and argument layout come from the IDL (:mod:`execution.anchor_idl`).

Remaining accounts (the program's margin check reads them; SDK ``getRemainingAccounts``): the
oracles, then the spot markets, then the perp markets of every position or open order of the
user, of the order's market and of each perp market's quote spot market; an oracle is listed once
(a Prelaunch oracle is writable with a writable market); a spot market's oracle is left out when
it is the default key (the quote asset).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from execution.anchor_idl.instruction import build_instruction
from execution.velocity.accounts import DEFAULT_PUBKEY, PerpMarketView, SpotMarketView, UserView
from execution.velocity.program import codec, state_pda, user_pda


class MissingMarketError(LookupError):
    """A market the instruction must name is not loaded (nothing is signed without it)."""


@dataclass(frozen=True)
class Markets:
    perp: dict[int, PerpMarketView] = field(default_factory=dict)
    spot: dict[int, SpotMarketView] = field(default_factory=dict)


@dataclass(frozen=True)
class Signer:
    """Who signs for which User: ``authority`` is the owner (PDA seed) and ``signer`` the key that
    signs (the owner itself, or its delegate)."""

    program_id: Pubkey
    authority: Pubkey
    signer: Pubkey
    sub_account: int = 0

    @property
    def user(self) -> Pubkey:
        return user_pda(self.program_id, self.authority, self.sub_account)

    @property
    def state(self) -> Pubkey:
        return state_pda(self.program_id)

    def base_accounts(self) -> dict[str, Pubkey]:
        return {"state": self.state, "user": self.user, "authority": self.signer}


def remaining_accounts(
    markets: Markets,
    user: UserView | None,
    readable_perp: Iterable[int] = (),
    writable_perp: Iterable[int] = (),
) -> list[AccountMeta]:
    oracles: dict[Pubkey, AccountMeta] = {}
    spots: dict[int, AccountMeta] = {}
    perps: dict[int, AccountMeta] = {}

    def add_spot(i: int) -> None:
        m = markets.spot.get(i)
        if m is None:
            raise MissingMarketError(f"spot market {i} is not loaded")
        spots.setdefault(i, AccountMeta(m.pubkey, False, False))
        if m.oracle != DEFAULT_PUBKEY:
            oracles.setdefault(m.oracle, AccountMeta(m.oracle, False, False))

    def add_perp(i: int, writable: bool) -> None:
        m = markets.perp.get(i)
        if m is None:
            raise MissingMarketError(f"perp market {i} is not loaded")
        if writable or i not in perps:
            perps[i] = AccountMeta(m.pubkey, False, writable)
        oracle_writable = writable and m.oracle_source == "Prelaunch"
        if oracle_writable or m.oracle not in oracles:
            oracles[m.oracle] = AccountMeta(m.oracle, False, oracle_writable)
        add_spot(m.quote_spot_market_index)

    if user is not None:
        for s in user.spot:
            add_spot(s.market_index)
        for i in user.perp_markets:
            add_perp(i, False)
    for i in readable_perp:
        add_perp(i, False)
    for i in writable_perp:
        add_perp(i, True)
    return [*oracles.values(), *spots.values(), *perps.values()]


def _ix(who: Signer, name: str, args: dict[str, Any], remaining: Sequence[AccountMeta]) -> Instruction:
    return build_instruction(codec(), who.program_id, name, args, who.base_accounts(), remaining)


def place_perp_order(who: Signer, params: dict[str, Any], remaining: Sequence[AccountMeta]) -> Instruction:
    return _ix(who, "place_perp_order", {"params": params}, remaining)


def place_orders(who: Signer, params: list[dict[str, Any]], remaining: Sequence[AccountMeta]) -> Instruction:
    return _ix(who, "place_orders", {"params": params}, remaining)


def cancel_order(who: Signer, order_id: int | None, remaining: Sequence[AccountMeta]) -> Instruction:
    return _ix(who, "cancel_order", {"order_id": order_id}, remaining)


def cancel_order_by_user_id(who: Signer, user_order_id: int, remaining: Sequence[AccountMeta]) -> Instruction:
    return _ix(who, "cancel_order_by_user_id", {"user_order_id": user_order_id}, remaining)


def cancel_orders(who: Signer, market_index: int | None, remaining: Sequence[AccountMeta]) -> Instruction:
    """Every open perp order of the user in ``market_index`` (every perp order when ``None``)."""
    return _ix(
        who,
        "cancel_orders",
        {"market_type": "Perp", "market_index": market_index, "direction": None},
        remaining,
    )


def cancel_orders_by_ids(
    who: Signer, order_ids: Sequence[int], remaining: Sequence[AccountMeta]
) -> Instruction:
    return _ix(who, "cancel_orders_by_ids", {"order_ids": list(order_ids)}, remaining)


def modify_order(
    who: Signer, order_id: int, params: dict[str, Any], remaining: Sequence[AccountMeta]
) -> Instruction:
    """The program cancels the order and places its modified copy (new on-chain order id, same user
    order id) in this one instruction: Velocity's cancel-and-replace."""
    return _ix(who, "modify_order", {"order_id": order_id, "modify_order_params": params}, remaining)


def modify_order_by_user_id(
    who: Signer, user_order_id: int, params: dict[str, Any], remaining: Sequence[AccountMeta]
) -> Instruction:
    return _ix(
        who,
        "modify_order_by_user_id",
        {"user_order_id": user_order_id, "modify_order_params": params},
        remaining,
    )


def update_user_delegate(
    program_id: Pubkey, authority: Pubkey, sub_account: int, delegate: Pubkey
) -> Instruction:
    """Signed by the owner (``authority``); ``Pubkey.default()`` removes the delegate."""
    accounts = {"user": user_pda(program_id, authority, sub_account), "authority": authority}
    return build_instruction(
        codec(),
        program_id,
        "update_user_delegate",
        {"_sub_account_id": sub_account, "delegate": delegate},
        accounts,
    )
