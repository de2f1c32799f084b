"""A simulated Velocity deployment in :class:`tests.solana_rpc.LocalSolanaRpc`: real-format accounts
(built by the IDL codec, proven equal to the Anchor TS coder in test_velocity_codec), the program's
IDL in its Program Metadata account, and a tiny exchange applying sent instructions to the User
account. Not a test module."""

from __future__ import annotations

import json
from typing import Any

from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from execution.anchor_idl.codec import IdlCodec
from execution.anchor_idl.metadata import (
    PROGRAM_METADATA_ID,
    canonical_metadata_address,
    encode_metadata_account,
)
from execution.velocity.program import (
    SUBSET_PATH,
    codec,
    load_idl,
    perp_market_pda,
    pyth_lazer_pda,
    spot_market_pda,
    state_pda,
    user_pda,
    user_stats_pda,
)
from tests.solana_rpc import LocalSolanaRpc, SentTransaction

ORACLE_PRICE = 150_000_000  # 1e6
SOL_FEED = 6
MARKETS = ("BTC-PERP", "SOL-PERP")  # SOL-PERP is index 1: found by name, not assumed


def zero(name: str) -> dict[str, Any]:
    c = codec()
    return c.decode_account_as(
        name, bytes(c.accounts[name]["discriminator"]) + bytes(c.account_size(name) - 8)
    )


def name32(text: str) -> bytes:
    return text.encode().ljust(32, b" ")


class VelocitySim:
    def __init__(
        self,
        rpc: LocalSolanaRpc,
        program_id: Pubkey,
        owner: Pubkey,
        delegate: Pubkey,
        *,
        idl: dict[str, Any] | None = None,
    ) -> None:
        self.rpc, self.pid, self.owner = rpc, program_id, owner
        self.codec = codec()
        self.market_index = MARKETS.index("SOL-PERP")
        self.state_pk = state_pda(program_id)
        self.user_pk = user_pda(program_id, owner, 0)
        self.oracle_pk = pyth_lazer_pda(program_id, SOL_FEED)
        self.applied: set[str] = set()
        self.rejected: list[tuple[str, str]] = []
        self.land = True
        self.exchange_status, self.market_status, self.paused_operations = 0, "Active", 0
        self.oracle_price = ORACLE_PRICE
        self.breaker = False
        user = zero("User")
        user.update(authority=owner, delegate=delegate, next_order_id=1)
        self.user = user
        rpc.set_account(str(program_id), "BPFLoaderUpgradeab1e11111111111111111111111", b"\x02" + bytes(35))
        rpc.accounts[str(program_id)].executable = True
        self.publish_idl(idl if idl is not None else load_idl())
        self.write_all()
        rpc.auto_land = False  # a transaction lands when this simulator applied it
        rpc.on_send.append(self.on_send)

    # ------------------------------------------------------------------ accounts
    def publish_idl(self, idl: dict[str, Any] | None) -> None:
        """The program's IDL in its canonical metadata account (``None`` removes it)."""
        addr = str(canonical_metadata_address(self.pid))
        if idl is None:
            self.rpc.accounts.pop(addr, None)
            return
        text = SUBSET_PATH.read_text() if idl == load_idl() else json.dumps(idl)
        self.rpc.set_account(addr, str(PROGRAM_METADATA_ID), encode_metadata_account(self.pid, text))

    def put(self, key: Pubkey, name: str, value: dict[str, Any]) -> None:
        self.rpc.set_account(str(key), str(self.pid), self.codec.encode_account(name, value))

    def write_all(self) -> None:
        st = zero("State")
        tier = st["perp_fee_structure"]["fee_tiers"][0]
        tier.update(
            fee_numerator=35,
            fee_denominator=100_000,
            maker_rebate_numerator=25,
            maker_rebate_denominator=1_000_000,
        )
        st.update(
            exchange_status=self.exchange_status, number_of_markets=len(MARKETS), number_of_spot_markets=1
        )
        self.put(self.state_pk, "State", st)
        for i, name in enumerate(MARKETS):
            pm = zero("PerpMarket")
            pm.update(
                pubkey=perp_market_pda(self.pid, i),
                market_index=i,
                name=name32(name),
                oracle=self.oracle_pk if i == self.market_index else Pubkey.new_unique(),
                oracle_source="PythLazer",
                order_tick_size=100,
                order_step_size=1_000_000,
                status=self.market_status if i == self.market_index else "Active",
                paused_operations=self.paused_operations if i == self.market_index else 0,
                quote_spot_market_index=0,
                margin_ratio_initial=1000,
                margin_ratio_maintenance=500,
                unrealized_pnl_maintenance_asset_weight=10_000,
            )
            pm["market_stats"]["min_order_size"] = 10_000_000
            pm["market_stats"]["historical_oracle_data"]["last_oracle_price"] = ORACLE_PRICE
            self.put(perp_market_pda(self.pid, i), "PerpMarket", pm)
        sm = zero("SpotMarket")
        sm.update(
            pubkey=spot_market_pda(self.pid, 0),
            oracle=Pubkey.default(),
            oracle_source="QuoteAsset",
            market_index=0,
            decimals=6,
            status="Active",
            name=name32("USDT"),
            cumulative_deposit_interest=10_000_000_000,
            cumulative_borrow_interest=10_000_000_000,
            maintenance_asset_weight=10_000,
            maintenance_liability_weight=10_000,
            initial_asset_weight=10_000,
            initial_liability_weight=10_000,
        )
        self.put(spot_market_pda(self.pid, 0), "SpotMarket", sm)
        self.write_oracle()
        stats = zero("UserStats")
        stats.update(authority=self.owner, number_of_sub_accounts=1, equity_breaker_tripped=int(self.breaker))
        self.put(user_stats_pda(self.pid, self.owner), "UserStats", stats)
        self.write_user()

    def write_oracle(self) -> None:
        orc = zero("PythLazerOracle")
        orc.update(price=self.oracle_price * 100, exponent=-8, posted_slot=self.rpc.slot, conf=1000)
        self.put(self.oracle_pk, "PythLazerOracle", orc)

    def write_user(self) -> None:
        self.put(self.user_pk, "User", self.user)

    def set_status(self, exchange: int = 0, market: str = "Active", ops: int = 0) -> None:
        self.exchange_status, self.market_status, self.paused_operations = exchange, market, ops
        self.write_all()

    def deposit(self, usdt: float) -> None:
        sp = self.user["spot_positions"][0]
        sp.update(market_index=0, scaled_balance=int(usdt * 1e9), balance_type="Deposit")
        self.write_user()

    def add_user(
        self, authority: Pubkey, usdt: float, base: float, entry: float, *, isolated: bool = False
    ) -> Pubkey:
        """Another trader's User account with USDT collateral and a SOL-PERP position."""
        u = zero("User")
        u["authority"] = authority
        u["spot_positions"][0].update(market_index=0, scaled_balance=int(usdt * 1e9), balance_type="Deposit")
        u["perp_positions"][0].update(
            market_index=self.market_index,
            base_asset_amount=int(base * 1e9),
            quote_asset_amount=-int(base * entry * 1e6),
            quote_entry_amount=-int(base * entry * 1e6),
            quote_break_even_amount=-int(base * entry * 1e6),
            position_flag=1 if isolated else 0,
        )
        key = user_pda(self.pid, authority, 0)
        self.put(key, "User", u)
        return key

    # ------------------------------------------------------------------ instructions
    def parse(
        self, raw: bytes
    ) -> tuple[VersionedTransaction, list[tuple[str, dict[str, Any], list[Pubkey]]]]:
        tx = VersionedTransaction.from_bytes(raw)
        keys = list(tx.message.account_keys)
        out = []
        for ix in tx.message.instructions:
            if keys[ix.program_id_index] != self.pid:
                continue
            name, args = IdlCodec.decode_instruction(self.codec, bytes(ix.data))
            out.append((name, args, [keys[i] for i in bytes(ix.accounts)]))
        return tx, out

    def on_send(self, sent: SentTransaction) -> None:
        """Apply a sent transaction once, as the program would: it lands (with an error when the
        program refuses it); with an expired blockhash it never lands."""
        if not self.land or sent.signature in self.applied:
            return
        tx, parsed = self.parse(sent.raw)
        if not self.rpc._blockhash_ok(str(tx.message.recent_blockhash)):
            self.rejected.append((sent.signature, "blockhash expired"))
            return
        self.applied.add(sent.signature)
        keys = [str(k) for k in tx.message.account_keys]
        why = self.apply(tx.message.account_keys[0], parsed)
        if why is not None:  # the program refused it: it lands as a failed transaction
            self.rejected.append((sent.signature, why))
            err = {"InstructionError": [2, {"Custom": 6000}], "why": why}
            self.rpc.mark_landed(sent.signature, keys, err)
            return
        self.rpc.mark_landed(sent.signature, keys)

    def apply(self, signer: Pubkey, parsed: list[tuple[str, Any, list[Pubkey]]]) -> str | None:
        """Apply one transaction's instructions, all or nothing; the program's refusal, or None."""
        user = self.codec.decode_account_as("User", self.codec.encode_account("User", self.user))
        for name, args, _accs in parsed:
            if name == "update_user_delegate":
                if signer != user["authority"]:
                    return "delegate change not signed by the owner"
                user["delegate"] = args["delegate"]
                continue
            if signer not in (user["authority"], user["delegate"]):
                return "signer is neither authority nor delegate"
            if self.exchange_status == 0xFF:
                return "exchange paused"
            if name == "place_perp_order":
                self._place(user, args["params"])
            elif name == "place_orders":
                for p in args["params"]:
                    self._place(user, p)
            elif name == "cancel_order":
                self._cancel(user, lambda o, a=args: o["order_id"] == a["order_id"])
            elif name == "cancel_orders":
                self._cancel(user, lambda o, a=args: a["market_index"] in (None, o["market_index"]))
            elif name == "cancel_orders_by_ids":
                self._cancel(user, lambda o, a=args: o["order_id"] in a["order_ids"])
            elif name == "modify_order":
                self._modify(user, args["order_id"], args["modify_order_params"])
        self.user = user
        self.write_user()
        return None

    def _cancel(self, user: dict[str, Any], pred: Any) -> None:
        user["orders"] = [
            zero("User")["orders"][0] if o["status"] == "Open" and pred(o) else o for o in user["orders"]
        ]

    def _place(self, user: dict[str, Any], p: dict[str, Any]) -> None:
        orders = user["orders"]
        if p["user_order_id"] and any(
            o["status"] == "Open" and o["user_order_id"] == p["user_order_id"] for o in orders
        ):
            raise ValueError("UserOrderIdAlreadyInUse")
        i = next(i for i, o in enumerate(orders) if o["status"] != "Open")
        orders[i] = dict(
            orders[i],
            status="Open",
            order_type=p["order_type"],
            market_type=p["market_type"],
            direction=p["direction"],
            user_order_id=p["user_order_id"],
            base_asset_amount=p["base_asset_amount"],
            price=p["price"],
            market_index=p["market_index"],
            reduce_only=p["reduce_only"],
            post_only=p["post_only"] != "None",
            trigger_price=p["trigger_price"] or 0,
            trigger_condition=p["trigger_condition"],
            order_id=user["next_order_id"],
            slot=self.rpc.slot,
            base_asset_amount_filled=0,
            quote_asset_amount_filled=0,
        )
        user["next_order_id"] += 1

    def _modify(self, user: dict[str, Any], order_id: int, mp: dict[str, Any]) -> None:
        for i, o in enumerate(user["orders"]):
            if o["status"] == "Open" and o["order_id"] == order_id:
                user["orders"][i] = dict(
                    o,
                    order_id=user["next_order_id"],
                    price=mp["price"] if mp["price"] is not None else o["price"],
                    base_asset_amount=mp["base_asset_amount"] or o["base_asset_amount"],
                    trigger_price=mp["trigger_price"] or o["trigger_price"],
                )
                user["next_order_id"] += 1
                return

    # ------------------------------------------------------------------ fills
    def open_orders(self) -> list[dict[str, Any]]:
        return [o for o in self.user["orders"] if o["status"] == "Open"]

    def order_by_uid(self, uid: int) -> dict[str, Any]:
        return next(o for o in self.open_orders() if o["user_order_id"] == uid)

    def fill(self, uid: int, size: int | None = None, price: int | None = None) -> None:
        orders = self.user["orders"]
        i = next(i for i, o in enumerate(orders) if o["status"] == "Open" and o["user_order_id"] == uid)
        o = orders[i]
        rem = o["base_asset_amount"] - o["base_asset_amount_filled"]
        q = rem if size is None else min(size, rem)
        px = price if price is not None else (o["price"] or o["trigger_price"])
        quote = q * px // 1_000_000_000
        sign = 1 if o["direction"] == "Long" else -1
        p = self.user["perp_positions"][0]
        base = p["base_asset_amount"]
        new_base = base + sign * q
        qe = (
            p["quote_entry_amount"] - sign * quote
            if abs(new_base) > abs(base)
            else (p["quote_entry_amount"] * new_base // base if base else 0)
        )
        p.update(
            market_index=self.market_index,
            base_asset_amount=new_base,
            quote_entry_amount=qe,
            quote_asset_amount=p["quote_asset_amount"] - sign * quote,
        )
        if q >= rem:
            orders[i] = zero("User")["orders"][0]
        else:
            orders[i] = dict(
                o,
                base_asset_amount_filled=o["base_asset_amount_filled"] + q,
                quote_asset_amount_filled=o["quote_asset_amount_filled"] + quote,
            )
        self.write_user()

    def trigger(self, uid: int) -> None:
        o = self.order_by_uid(uid)
        o["trigger_condition"] = "TriggeredAbove" if o["trigger_condition"] == "Above" else "TriggeredBelow"
        self.write_user()
