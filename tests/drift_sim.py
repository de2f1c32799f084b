"""Real-format Drift accounts (built with driftpy's own IDL coder) and a tiny Drift simulator for
:class:`tests.solana_rpc.LocalSolanaRpc`: applies sent place/cancel/modify/delegate instructions to
the User account and simulates fills by rewriting it. Not a test module."""

from __future__ import annotations

import dataclasses
from typing import Any

from anchorpy.coder.coder import Coder
from anchorpy.program.common import NamedInstruction
from driftpy.addresses import (
    get_perp_market_public_key,
    get_spot_market_public_key,
    get_state_public_key,
    get_user_account_public_key,
)
from driftpy.types import (
    MarketStatus,
    OracleSource,
    OrderStatus,
    OrderTriggerCondition,
)
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

import execution.drift.chain  # noqa: F401  (Pubkey copy registration)
from execution.drift.chain import drift_idl
from tests.solana_rpc import LocalSolanaRpc, SentTransaction

CODER = Coder(drift_idl())
ORACLE_PRICE = 150_000_000


def zero(name: str) -> Any:
    return CODER.accounts.decode(CODER.accounts.acc_name_to_discriminator[name] + bytes(5000))


def encode(name: str, obj: Any) -> bytes:
    return bytes(CODER.accounts.build(NamedInstruction(data=obj, name=name)))


def rep(obj: Any, **kw: Any) -> Any:
    return dataclasses.replace(obj, **kw)


class DriftSim:
    """Accounts of one Drift deployment (program id of the test's choosing) in a LocalSolanaRpc."""

    def __init__(self, rpc: LocalSolanaRpc, program_id: Pubkey, owner: Pubkey, delegate: Pubkey) -> None:
        self.rpc, self.pid, self.owner = rpc, program_id, owner
        self.state_pk = get_state_public_key(program_id)
        self.perp_pk = get_perp_market_public_key(program_id, 0)
        self.spot_pk = get_spot_market_public_key(program_id, 0)
        self.user_pk = get_user_account_public_key(program_id, owner, 0)
        self.oracle_pk = Pubkey.new_unique()
        self.usdc_oracle_pk = Pubkey.new_unique()
        self.applied: set[str] = set()
        self.rejected: list[tuple[str, str]] = []
        self.land = True
        self.exchange_status = 0
        self.market_status = 1
        self.paused_operations = 0
        self.margin_ratio_initial = 0  # 0: not set (the venue cannot tell the market maximum)
        self.user = rep(zero("User"), authority=owner, delegate=delegate, next_order_id=1)
        self.write_all()
        rpc.on_send.append(self.on_send)

    # ------------------------------------------------------------------ accounts
    def write_all(self) -> None:
        st = zero("State")
        tiers = list(st.perp_fee_structure.fee_tiers)
        tiers[0] = rep(
            tiers[0],
            fee_numerator=35,
            fee_denominator=100_000,
            maker_rebate_numerator=25,
            maker_rebate_denominator=1_000_000,
        )
        st = rep(
            st,
            exchange_status=self.exchange_status,
            number_of_markets=1,
            number_of_spot_markets=1,
            perp_fee_structure=rep(st.perp_fee_structure, fee_tiers=tiers),
        )
        self.rpc.set_account(str(self.state_pk), str(self.pid), encode("State", st))
        pm = zero("PerpMarket")
        amm = rep(
            pm.amm,
            oracle=self.oracle_pk,
            oracle_source=OracleSource.Prelaunch(),
            order_tick_size=100,
            order_step_size=1_000_000,
            min_order_size=10_000_000,
        )
        status = [
            MarketStatus.Initialized,
            MarketStatus.Active,
            MarketStatus.FundingPaused,
            MarketStatus.AmmPaused,
            MarketStatus.FillPaused,
            MarketStatus.WithdrawPaused,
            MarketStatus.ReduceOnly,
            MarketStatus.Settlement,
            MarketStatus.Delisted,
        ][self.market_status]()
        pm = rep(
            pm,
            pubkey=self.perp_pk,
            amm=amm,
            market_index=0,
            status=status,
            paused_operations=self.paused_operations,
            quote_spot_market_index=0,
            name=list(b"SOL-PERP".ljust(32)),
            margin_ratio_initial=self.margin_ratio_initial,
        )
        self.rpc.set_account(str(self.perp_pk), str(self.pid), encode("PerpMarket", pm))
        sm = zero("SpotMarket")
        sm = rep(
            sm,
            pubkey=self.spot_pk,
            oracle=self.usdc_oracle_pk,
            oracle_source=OracleSource.QuoteAsset(),
            market_index=0,
            decimals=6,
            status=MarketStatus.Active(),
        )
        self.rpc.set_account(str(self.spot_pk), str(self.pid), encode("SpotMarket", sm))
        orc = zero("PrelaunchOracle")
        orc = rep(orc, price=ORACLE_PRICE, max_price=ORACLE_PRICE * 2, perp_market_index=0)
        self.rpc.set_account(str(self.oracle_pk), str(self.pid), encode("PrelaunchOracle", orc))
        self.write_user()

    def write_user(self) -> None:
        self.rpc.set_account(str(self.user_pk), str(self.pid), encode("User", self.user))

    def set_status(self, exchange: int = 0, market: int = 1, ops: int = 0) -> None:
        self.exchange_status, self.market_status, self.paused_operations = exchange, market, ops
        self.write_all()

    # ------------------------------------------------------------------ instructions
    def parse(self, raw: bytes) -> tuple[VersionedTransaction, list[tuple[str, Any, list[Pubkey]]]]:
        tx = VersionedTransaction.from_bytes(raw)
        msg = tx.message
        keys = list(msg.account_keys)
        out = []
        for ix in msg.instructions:
            if keys[ix.program_id_index] != self.pid:
                continue
            named = CODER.instruction.parse(bytes(ix.data))
            out.append((named.name, named.data, [keys[i] for i in bytes(ix.accounts)]))
        return tx, out

    def on_send(self, sent: SentTransaction) -> None:
        if not self.land or sent.signature in self.applied:
            return
        tx, ixs = self.parse(sent.raw)
        if not self.rpc._blockhash_ok(str(tx.message.recent_blockhash)):
            self.rejected.append((sent.signature, "blockhash expired"))
            return
        signer = tx.message.account_keys[0]
        self.applied.add(sent.signature)
        user = self.user
        for name, data, _accs in ixs:
            if name == "update_user_delegate":
                if signer != user.authority:
                    self.rejected.append((sent.signature, "delegate change not signed by the owner"))
                    self.user = user
                    return
                user = rep(user, delegate=data.delegate)
                continue
            if signer not in (user.authority, user.delegate):
                self.rejected.append((sent.signature, "signer is neither authority nor delegate"))
                return
            if name == "place_perp_order":
                user = self._place(user, data.params)
            elif name == "place_orders":
                for p in data.params:
                    user = self._place(user, p)
            elif name == "cancel_order":
                user = self._set_orders(
                    user, [o if o.order_id != data.order_id else zero_order(o) for o in user.orders]
                )
            elif name == "cancel_orders":
                user = self._set_orders(
                    user,
                    [
                        zero_order(o) if is_open(o) and o.market_index == (data.market_index or 0) else o
                        for o in user.orders
                    ],
                )
            elif name == "modify_order":
                user = self._modify(user, data.order_id, data.modify_order_params)
        self.user = user
        self.write_user()

    def _set_orders(self, user: Any, orders: list[Any]) -> Any:
        return rep(user, orders=orders)

    def _place(self, user: Any, p: Any) -> Any:
        orders = list(user.orders)
        if p.user_order_id and any(is_open(o) and o.user_order_id == p.user_order_id for o in orders):
            raise ValueError("UserOrderIdAlreadyInUse")
        i = next(i for i, o in enumerate(orders) if not is_open(o))
        orders[i] = rep(
            orders[i],
            status=OrderStatus.Open(),
            order_type=p.order_type,
            market_type=p.market_type,
            direction=p.direction,
            user_order_id=p.user_order_id,
            base_asset_amount=p.base_asset_amount,
            price=p.price,
            market_index=p.market_index,
            reduce_only=p.reduce_only,
            post_only=type(p.post_only).__name__ != "None",
            trigger_price=p.trigger_price or 0,
            trigger_condition=p.trigger_condition,
            order_id=user.next_order_id,
            slot=self.rpc.slot,
            base_asset_amount_filled=0,
            quote_asset_amount_filled=0,
        )
        return rep(user, orders=orders, next_order_id=user.next_order_id + 1)

    def _modify(self, user: Any, order_id: int, mp: Any) -> Any:
        orders = list(user.orders)
        for i, o in enumerate(orders):
            if is_open(o) and o.order_id == order_id:
                orders[i] = rep(
                    o,
                    order_id=user.next_order_id,
                    price=mp.price if mp.price is not None else o.price,
                    base_asset_amount=mp.base_asset_amount
                    if mp.base_asset_amount is not None
                    else o.base_asset_amount,
                    trigger_price=mp.trigger_price if mp.trigger_price is not None else o.trigger_price,
                )
                return rep(user, orders=orders, next_order_id=user.next_order_id + 1)
        return user

    # ------------------------------------------------------------------ fills
    def open_orders(self) -> list[Any]:
        return [o for o in self.user.orders if is_open(o)]

    def order_by_uid(self, uid: int) -> Any:
        return next(o for o in self.open_orders() if o.user_order_id == uid)

    def fill(self, uid: int, size: int | None = None, price: int | None = None) -> None:
        """Fill ``size`` base units (default: all) of the open order with user order id ``uid``."""
        orders = list(self.user.orders)
        i = next(i for i, o in enumerate(orders) if is_open(o) and o.user_order_id == uid)
        o = orders[i]
        rem = o.base_asset_amount - o.base_asset_amount_filled
        q = rem if size is None else min(size, rem)
        px = price if price is not None else (o.price or o.trigger_price)
        quote = q * px // 1_000_000_000
        long = type(o.direction).__name__ == "Long"
        pos = list(self.user.perp_positions)
        p = pos[0]
        sign = 1 if long else -1
        new_base = p.base_asset_amount + sign * q
        qe = (
            p.quote_entry_amount - sign * quote
            if abs(new_base) > abs(p.base_asset_amount)
            else (p.quote_entry_amount * new_base // p.base_asset_amount if p.base_asset_amount else 0)
        )
        pos[0] = rep(
            p,
            market_index=0,
            base_asset_amount=new_base,
            quote_entry_amount=qe,
            quote_asset_amount=p.quote_asset_amount - sign * quote,
            max_margin_ratio=7,
        )
        if q >= rem:
            orders[i] = zero_order(o)
        else:
            orders[i] = rep(
                o,
                base_asset_amount_filled=o.base_asset_amount_filled + q,
                quote_asset_amount_filled=o.quote_asset_amount_filled + quote,
            )
        self.user = rep(self.user, orders=orders, perp_positions=pos)
        self.write_user()

    def trigger(self, uid: int) -> None:
        orders = list(self.user.orders)
        i = next(i for i, o in enumerate(orders) if is_open(o) and o.user_order_id == uid)
        above = type(orders[i].trigger_condition).__name__ == "Above"
        cond = OrderTriggerCondition.TriggeredAbove() if above else OrderTriggerCondition.TriggeredBelow()
        orders[i] = rep(orders[i], trigger_condition=cond)
        self.user = rep(self.user, orders=orders)
        self.write_user()


def is_open(o: Any) -> bool:
    return type(o.status).__name__ == "Open"


def zero_order(o: Any) -> Any:
    return zero("User").orders[0]
