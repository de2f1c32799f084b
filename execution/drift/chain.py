"""Drift accounts over JSON-RPC and a driftpy ``DriftClient`` used as the instruction builder.

Offline-friendly: no websocket. The client is built with the ``cached`` account subscription and
never ``subscribe()``d; :meth:`DriftChain.refresh` reads State, the perp market, the quote spot
market and the User account in one ``getMultipleAccounts`` and feeds driftpy's caches, so its
``get_*_ix`` helpers (remaining accounts from the user's positions) work from our data.

The program id comes from config: driftpy 0.8.89 hard-wires ``DRIFT_PROGRAM_ID`` in
``DriftClient.__init__``, so the program and ``program_id`` are replaced right after it.

Trading as a delegate: the DriftClient's *authority* is the owner (the User account's PDA is
derived from it) and its *wallet* is the delegate's public key (the ``authority`` account of the
order instructions, i.e. the signer). The wallet is public-key only: signing happens in
:mod:`execution.drift.sender` through a :class:`execution.signers.base.Signer`.
"""

from __future__ import annotations

import copyreg
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import driftpy
from anchorpy.program.core import Program
from anchorpy.provider import Provider, Wallet
from anchorpy_core.idl import Idl
from driftpy.account_subscription_config import AccountSubscriptionConfig
from driftpy.accounts import DataAndSlot
from driftpy.addresses import (
    get_perp_market_public_key,
    get_spot_market_public_key,
    get_state_public_key,
    get_user_account_public_key,
    get_user_stats_account_public_key,
)
from driftpy.drift_client import DriftClient
from driftpy.drift_user import DriftUser
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from execution.drift.orders import MarketSpec
from execution.drift.rpc import RpcClient
from execution.drift.status import DriftStatus, market_status_index
from execution.drift.user_state import UserSnapshot, snapshot_from_decoded

# anchorpy's account/instruction encoder deep-copies dataclasses holding solders Pubkeys, which
# do not pickle; this registration makes them copyable (used when building accounts and args).
copyreg.pickle(Pubkey, lambda p: (Pubkey.from_bytes, (bytes(p),)))

_IDL: Idl | None = None


def drift_idl() -> Idl:
    """driftpy's bundled IDL (parsed once)."""
    global _IDL
    if _IDL is None:
        path = Path(str(next(iter(driftpy.__path__)))) / "idl" / "drift.json"
        _IDL = Idl.from_json(path.read_text())
    return _IDL


class PubkeyWallet(Wallet):
    """An anchorpy wallet that only knows a public key (signing goes through a Signer)."""

    def __init__(self, pubkey: Pubkey) -> None:
        self._pubkey = pubkey

    @property
    def public_key(self) -> Pubkey:
        return self._pubkey

    @property
    def payer(self) -> Keypair:
        raise RuntimeError("PubkeyWallet cannot sign: sign through execution.signers")

    @payer.setter
    def payer(self, _: Keypair) -> None:
        raise RuntimeError("PubkeyWallet holds no keypair")


class ChainError(Exception):
    """An account is missing or undecodable."""


@dataclass
class ChainView:
    """The latest accounts read (None until the first refresh)."""

    slot: int = 0
    state: Any = None
    perp_market: Any = None
    spot_market: Any = None
    user: UserSnapshot | None = None
    user_raw: bytes = b""
    fetched_at: float = 0.0  # monotonic seconds of the last successful refresh


class DriftChain:
    def __init__(
        self,
        rpc: RpcClient,
        program_id: Pubkey,
        authority: Pubkey,
        signer_pubkey: Pubkey,
        *,
        sub_account_id: int = 0,
        perp_market_index: int = 0,
        quote_spot_market_index: int = 0,
        market_name: str = "SOL-PERP",
    ) -> None:
        self.rpc = rpc
        # driftpy needs an AsyncClient for its Provider; it never sends with it (we build
        # instructions only), so no traffic goes through it.
        connection = AsyncClient(rpc.url)
        self.program_id = program_id
        self.authority = authority
        self.signer_pubkey = signer_pubkey
        self.sub_account_id = sub_account_id
        self.market_index = perp_market_index
        self.quote_index = quote_spot_market_index
        self.market_name = market_name
        self.client = DriftClient(
            connection,
            PubkeyWallet(signer_pubkey),
            env="devnet",  # only picks driftpy's lookup-table defaults; ours are explicit (below)
            authority=authority,
            account_subscription=AccountSubscriptionConfig("cached"),
            perp_market_indexes=[perp_market_index],
            spot_market_indexes=[quote_spot_market_index],
            oracle_infos=[],
            active_sub_account_id=sub_account_id,
            sub_account_ids=[sub_account_id],
            market_lookup_tables=[],
        )
        # driftpy hard-wires the program id: rebuild the program with the configured one.
        provider = Provider(connection, self.client.wallet, self.client.program.provider.opts)
        self.program = Program(drift_idl(), program_id, provider)
        self.client.program_id = program_id
        self.client.program = self.program
        self.client.signer_public_key = None
        self.client.market_lookup_tables = []
        self.user_pubkey = get_user_account_public_key(program_id, authority, sub_account_id)
        self.user_stats_pubkey = get_user_stats_account_public_key(program_id, authority)
        self.state_pubkey = get_state_public_key(program_id)
        self.perp_market_pubkey = get_perp_market_public_key(program_id, perp_market_index)
        self.spot_market_pubkey = get_spot_market_public_key(program_id, quote_spot_market_index)
        user = DriftUser(self.client, self.user_pubkey, AccountSubscriptionConfig("cached"))
        self.client.users[sub_account_id] = user
        self.view = ChainView()

    def decode(self, data: bytes) -> Any:
        return self.program.coder.accounts.decode(data)

    async def fetch_raw(self, keys: list[Pubkey]) -> tuple[int, list[bytes | None]]:
        return await self.rpc.get_multiple_accounts(keys)

    async def refresh(self, now: float) -> ChainView:
        """Read State, perp market, quote spot market and User; update driftpy's caches."""
        keys = [self.state_pubkey, self.perp_market_pubkey, self.spot_market_pubkey, self.user_pubkey]
        slot, datas = await self.fetch_raw(keys)
        names = ("State", "PerpMarket", "SpotMarket", "User")
        for name, key, d in zip(names, keys, datas, strict=True):
            if d is None:
                raise ChainError(f"{name} account {key} not found (program {self.program_id})")
        st_raw, pm_raw, sm_raw, user_raw = (d for d in datas if d is not None)
        try:
            state, perp, spot = self.decode(st_raw), self.decode(pm_raw), self.decode(sm_raw)
        except Exception as e:
            raise ChainError(f"cannot decode Drift accounts: {e}") from e
        v = self.view
        if user_raw != v.user_raw or v.user is None:
            try:
                decoded = self.decode(user_raw)
            except Exception as e:
                raise ChainError(f"cannot decode User account {self.user_pubkey}: {e}") from e
            v.user = snapshot_from_decoded(decoded, slot)
            v.user_raw = user_raw
            self.client.users[self.sub_account_id].account_subscriber.update_data(DataAndSlot(slot, decoded))
        v.slot, v.state, v.perp_market, v.spot_market, v.fetched_at = slot, state, perp, spot, now
        sub = self.client.account_subscriber
        sub.cache["state"] = DataAndSlot(slot, state)
        sub.cache["perp_markets"] = [DataAndSlot(slot, perp)]
        sub.cache["spot_markets"] = [DataAndSlot(slot, spot)]
        return v

    def status(self) -> DriftStatus:
        v = self.view
        if v.state is None or v.perp_market is None:
            raise ChainError("no account data yet")
        return DriftStatus.of(
            int(v.state.exchange_status),
            market_status_index(v.perp_market.status),
            int(v.perp_market.paused_operations),
            market_index=self.market_index,
            slot=v.slot,
        )

    def market_spec(self) -> MarketSpec:
        if self.view.perp_market is None:
            raise ChainError("no perp market data yet")
        return MarketSpec.from_perp_market(self.view.perp_market, self.market_name)

    def fee_rates(self) -> tuple[float, float]:
        """(taker fee, maker rebate) as fractions, from State's perp fee tier 0."""
        st = self.view.state
        if st is None:
            return 0.00035, 0.0
        tier = st.perp_fee_structure.fee_tiers[0]
        taker = tier.fee_numerator / tier.fee_denominator if tier.fee_denominator else 0.0
        rebate = (
            tier.maker_rebate_numerator / tier.maker_rebate_denominator
            if tier.maker_rebate_denominator
            else 0.0
        )
        return taker, rebate
