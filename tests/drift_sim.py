"""Real-format Drift accounts (built with driftpy's own IDL coder) and a tiny Drift simulator for
:class:`tests.solana_rpc.LocalSolanaRpc`: applies sent place/cancel/modify/delegate instructions to
the User account and simulates fills by rewriting it. Not a test module."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
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
    SpotBalanceType,
)
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

import execution.drift.chain  # noqa: F401  (Pubkey copy registration)
from execution.drift.chain import drift_idl
from tests.solana_rpc import LocalSolanaRpc, SentTransaction

CODER = Coder(drift_idl())
ORACLE_PRICE = 150_000_000
INTEREST = 10_000_000_000  # SPOT_CUMULATIVE_INTEREST_PRECISION: scaled balance = tokens


@dataclass
class PerpSpec:
    index: int
    price: int  # oracle price, 1e6
    name: str
    oracle: Pubkey = field(default_factory=Pubkey.new_unique)
    margin_ratio_initial: int = 1000
    margin_ratio_maintenance: int = 500
    funding_long: int = 0
    funding_short: int = 0


@dataclass
class SpotSpec:
    index: int
    price: int  # 1e6
    decimals: int
    oracle: Pubkey = field(default_factory=Pubkey.new_unique)
    quote: bool = False  # the quote asset (USDC): QuoteAsset oracle
    initial_asset_weight: int = 10_000
    maintenance_asset_weight: int = 10_000
    initial_liability_weight: int = 10_000
    maintenance_liability_weight: int = 10_000
    deposit_interest: int = INTEREST
    borrow_interest: int = INTEREST


def zero(name: str) -> Any:
    return CODER.accounts.decode(CODER.accounts.acc_name_to_discriminator[name] + bytes(5000))


def encode(name: str, obj: Any) -> bytes:
    return bytes(CODER.accounts.build(NamedInstruction(data=obj, name=name)))


def rep(obj: Any, **kw: Any) -> Any:
    return dataclasses.replace(obj, **kw)


class DriftSim:
    """Accounts of one Drift deployment (program id of the test's choosing) in a LocalSolanaRpc."""

    def __init__(
        self, rpc: LocalSolanaRpc, program_id: Pubkey, owner: Pubkey, delegate: Pubkey, usdc: float = 10_000.0
    ) -> None:
        self.rpc, self.pid, self.owner = rpc, program_id, owner
        self.state_pk = get_state_public_key(program_id)
        self.perp_pk = get_perp_market_public_key(program_id, 0)
        self.spot_pk = get_spot_market_public_key(program_id, 0)
        self.user_pk = get_user_account_public_key(program_id, owner, 0)
        self.perps: dict[int, PerpSpec] = {0: PerpSpec(0, ORACLE_PRICE, "SOL-PERP")}
        self.spots: dict[int, SpotSpec] = {0: SpotSpec(0, 1_000_000, 6, quote=True)}
        self.oracle_pk = self.perps[0].oracle
        self.usdc_oracle_pk = self.spots[0].oracle
        self.applied: set[str] = set()
        self.rejected: list[tuple[str, str]] = []
        self.land = True
        self.auto_fill = False
        self.exchange_status = 0
        self.market_status = 1
        self.paused_operations = 0
        self.margin_ratio_initial = 0  # 0: not set (the venue cannot tell the market maximum)
        self.user = rep(zero("User"), authority=owner, delegate=delegate, next_order_id=1)
        if usdc:
            self.set_balance(0, usdc, write=False)
        self.write_all()
        rpc.auto_land = False  # a transaction lands when this simulator applied it
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
        for spec in self.perps.values():
            self._write_perp(spec)
        for sp in self.spots.values():
            self._write_spot(sp)
        self.write_user()

    def _write_perp(self, spec: PerpSpec) -> None:
        pm = zero("PerpMarket")
        amm = rep(
            pm.amm,
            oracle=spec.oracle,
            oracle_source=OracleSource.Prelaunch(),
            order_tick_size=100,
            order_step_size=1_000_000,
            min_order_size=10_000_000,
            cumulative_funding_rate_long=spec.funding_long,
            cumulative_funding_rate_short=spec.funding_short,
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
        ][self.market_status if spec.index == 0 else 1]()
        key = get_perp_market_public_key(self.pid, spec.index)
        pm = rep(
            pm,
            pubkey=key,
            amm=amm,
            market_index=spec.index,
            status=status,
            paused_operations=self.paused_operations if spec.index == 0 else 0,
            quote_spot_market_index=0,
            margin_ratio_initial=(self.margin_ratio_initial if spec.index == 0 and self.margin_ratio_initial
                                  else spec.margin_ratio_initial),
            margin_ratio_maintenance=spec.margin_ratio_maintenance,
            unrealized_pnl_initial_asset_weight=10_000,
            unrealized_pnl_maintenance_asset_weight=10_000,
            name=list(spec.name.encode().ljust(32)),
        )
        self.rpc.set_account(str(key), str(self.pid), encode("PerpMarket", pm))
        orc = zero("PrelaunchOracle")
        orc = rep(orc, price=spec.price, max_price=spec.price * 2, perp_market_index=spec.index)
        self.rpc.set_account(str(spec.oracle), str(self.pid), encode("PrelaunchOracle", orc))

    def _write_spot(self, sp: SpotSpec) -> None:
        key = get_spot_market_public_key(self.pid, sp.index)
        sm = rep(
            zero("SpotMarket"),
            pubkey=key,
            oracle=sp.oracle,
            oracle_source=OracleSource.QuoteAsset() if sp.quote else OracleSource.Prelaunch(),
            market_index=sp.index,
            decimals=sp.decimals,
            status=MarketStatus.Active(),
            cumulative_deposit_interest=sp.deposit_interest,
            cumulative_borrow_interest=sp.borrow_interest,
            initial_asset_weight=sp.initial_asset_weight,
            maintenance_asset_weight=sp.maintenance_asset_weight,
            initial_liability_weight=sp.initial_liability_weight,
            maintenance_liability_weight=sp.maintenance_liability_weight,
        )
        self.rpc.set_account(str(key), str(self.pid), encode("SpotMarket", sm))
        if not sp.quote and not any(p.oracle == sp.oracle for p in self.perps.values()):
            orc = rep(zero("PrelaunchOracle"), price=sp.price, max_price=sp.price * 2, perp_market_index=0)
            self.rpc.set_account(str(sp.oracle), str(self.pid), encode("PrelaunchOracle", orc))

    # ------------------------------------------------------------------ fixtures
    def add_perp(self, spec: PerpSpec) -> None:
        self.perps[spec.index] = spec
        self.write_all()

    def add_spot(self, spec: SpotSpec) -> None:
        self.spots[spec.index] = spec
        self.write_all()

    def set_balance(self, index: int, tokens: float, *, borrow: bool = False, write: bool = True) -> None:
        """A spot balance of ``tokens`` whole tokens in market ``index`` (interest at precision)."""
        sp = self.spots[index]
        scaled = round(tokens * 10**sp.decimals) * 10 ** (19 - sp.decimals) // sp.deposit_interest
        spots = list(self.user.spot_positions)
        k = next((k for k, x in enumerate(spots) if x.market_index == index and x.scaled_balance), None)
        if k is None:
            k = next(k for k, x in enumerate(spots) if not x.scaled_balance)
        spots[k] = rep(spots[k], market_index=index, scaled_balance=scaled,
                       balance_type=SpotBalanceType.Borrow() if borrow else SpotBalanceType.Deposit())
        self.user = rep(self.user, spot_positions=spots)
        if write:
            self.write_user()

    def set_position(self, market_index: int, base: float, entry: float, quote_extra: int = 0) -> None:
        """An open perp position of ``base`` (signed, whole units) entered at ``entry`` USD."""
        b = round(base * 1e9)
        qe = -b * round(entry * 1e6) // 1_000_000_000
        pos = list(self.user.perp_positions)
        k = next(k for k, p in enumerate(pos) if not (p.base_asset_amount or p.quote_asset_amount))
        pos[k] = rep(pos[k], market_index=market_index, base_asset_amount=b, quote_entry_amount=qe,
                     quote_break_even_amount=qe, quote_asset_amount=qe + quote_extra)
        self.user = rep(self.user, perp_positions=pos)
        self.write_user()

    def place_foreign(self, market_index: int, uid: int, price: int, base: int) -> None:
        """An order the app did not place (another market, or the user's own)."""
        from driftpy.types import MarketType, OrderParams, OrderType, PositionDirection, PostOnlyParams

        p = OrderParams(order_type=OrderType.Limit(), market_type=MarketType.Perp(),
                        direction=PositionDirection.Long(), user_order_id=uid, base_asset_amount=base,
                        price=price, market_index=market_index, reduce_only=False,
                        post_only=PostOnlyParams.MustPostOnly(),
                        trigger_condition=OrderTriggerCondition.Above())
        self.user = self._place(self.user, p)
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
        self.applied.add(sent.signature)
        keys = [str(k) for k in tx.message.account_keys]
        before = self.user.next_order_id
        try:
            self.apply(tx.message.account_keys[0], ixs)
            if self.auto_fill:  # new entries fill at once (a taker, or a maker hit right away)
                for o in [o for o in self.open_orders() if o.order_id >= before and not o.reduce_only]:
                    if type(o.order_type).__name__ in ("Limit", "Market"):
                        self.fill(o.user_order_id)
        except ValueError as e:  # the program refused it: it lands as a failed transaction
            self.rejected.append((sent.signature, str(e)))
            err = {"InstructionError": [2, {"Custom": 6000}], "why": str(e)}
            self.rpc.mark_landed(sent.signature, keys, err)
            return
        self.rpc.mark_landed(sent.signature, keys)

    def apply(self, signer: Pubkey, ixs: list[tuple[str, Any, list[Pubkey]]]) -> None:
        """Apply the Drift instructions of one transaction, all or nothing."""
        user = self.user
        for name, data, _accs in ixs:
            if name == "update_user_delegate":
                if signer != user.authority:
                    raise ValueError("delegate change not signed by the owner")
                user = rep(user, delegate=data.delegate)
                continue
            if signer not in (user.authority, user.delegate):
                raise ValueError("signer is neither authority nor delegate")
            if self.exchange_status == 0xFF:
                raise ValueError("ExchangePaused")
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
        px = price if price is not None else (o.price or o.trigger_price or self.perps[o.market_index].price)
        quote = q * px // 1_000_000_000
        long = type(o.direction).__name__ == "Long"
        self.move_position(o.market_index, (1 if long else -1) * q, quote)
        if q >= rem:
            orders[i] = zero_order(o)
        else:
            orders[i] = rep(
                o,
                base_asset_amount_filled=o.base_asset_amount_filled + q,
                quote_asset_amount_filled=o.quote_asset_amount_filled + quote,
            )
        self.user = rep(self.user, orders=orders)
        self.write_user()

    def move_position(self, market_index: int, signed_base: int, quote: int) -> None:
        """The perp position in ``market_index`` changes by ``signed_base`` at ``quote`` (unsigned)."""
        pos = list(self.user.perp_positions)
        k = next((k for k, p in enumerate(pos) if p.market_index == market_index
                  and (p.base_asset_amount or p.quote_asset_amount or p.open_orders)), None)
        if k is None:
            k = next(k for k, p in enumerate(pos) if not (p.base_asset_amount or p.quote_asset_amount
                                                          or p.open_orders))
        p = pos[k]
        sign = 1 if signed_base > 0 else -1
        q = abs(signed_base)
        new_base = p.base_asset_amount + signed_base
        qe = (
            p.quote_entry_amount - sign * quote
            if abs(new_base) > abs(p.base_asset_amount)
            else (p.quote_entry_amount * new_base // p.base_asset_amount if p.base_asset_amount else 0)
        )
        pos[k] = rep(
            p,
            market_index=market_index,
            base_asset_amount=new_base,
            quote_entry_amount=qe,
            quote_asset_amount=p.quote_asset_amount - sign * quote,
            max_margin_ratio=7,
        )
        assert q > 0
        self.user = rep(self.user, perp_positions=pos)
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
