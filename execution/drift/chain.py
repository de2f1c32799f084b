"""Drift accounts over JSON-RPC and a driftpy ``DriftClient`` used as the instruction builder.

Offline-friendly: no websocket. The client is built with the ``cached`` account subscription and
never ``subscribe()``d; :meth:`DriftChain.refresh` reads State, the User account, and *every* perp
market, spot market and oracle the account references (positions, balances and open orders in any
market, plus the traded perp market and the quote spot market) — one ``getMultipleAccounts`` in
the steady state, a second one when the account starts referencing a new market — and feeds
driftpy's caches, so its ``get_*_ix`` helpers (remaining accounts from the user's positions) and
``DriftUser``'s margin maths work from our data.

Equity (:attr:`ChainView.equity`): driftpy's ``DriftUser.get_total_collateral`` with the program's
*initial* weights — spot balances at their oracle prices weighted by the spot markets' initial
asset weights, plus the unrealized PnL (funding included) of every perp position, positive PnL
weighted by the market's initial unrealized-PnL weight. ``None`` (with ``equity_error``) when an
oracle cannot be read: sizing then fails closed.

The program id comes from config: driftpy 0.8.89 hard-wires ``DRIFT_PROGRAM_ID`` in
``DriftClient.__init__``, so the program and ``program_id`` are replaced right after it.

Trading as a delegate: the DriftClient's *authority* is the owner (the User account's PDA is
derived from it) and its *wallet* is the delegate's public key (the ``authority`` account of the
order instructions, i.e. the signer). The wallet is public-key only: signing happens in
:mod:`execution.solana_send.tx` through a :class:`execution.signers.base.Signer`.
"""

from __future__ import annotations

import copyreg
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import driftpy
from anchorpy.program.core import Program
from anchorpy.provider import Provider, Wallet
from anchorpy_core.idl import Idl
from driftpy.account_subscription_config import AccountSubscriptionConfig
from driftpy.accounts import DataAndSlot
from driftpy.accounts.oracle import decode_oracle
from driftpy.addresses import (
    get_perp_market_public_key,
    get_spot_market_public_key,
    get_state_public_key,
    get_user_account_public_key,
    get_user_stats_account_public_key,
)
from driftpy.drift_client import DriftClient
from driftpy.drift_user import DriftUser
from driftpy.math.margin import MarginCategory
from driftpy.oracles.oracle_id import get_oracle_id
from driftpy.types import OraclePriceData
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from execution.drift.orders import MarketSpec
from execution.drift.status import DriftStatus, market_status_index
from execution.drift.user_state import UserSnapshot, referenced_markets, snapshot_from_decoded
from execution.solana_send.rpc import RpcClient

log = logging.getLogger(__name__)

PRICE = 1_000_000

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
    perp_market: Any = None  # the traded market
    spot_market: Any = None  # the quote market
    user: UserSnapshot | None = None
    user_raw: bytes = b""
    fetched_at: float = 0.0  # monotonic seconds of the last successful refresh
    perp_markets: dict[int, Any] = field(default_factory=dict)  # every market the account references
    spot_markets: dict[int, Any] = field(default_factory=dict)
    oracle_prices: dict[str, int] = field(default_factory=dict)  # oracle id -> price (1e6)
    equity: float | None = None  # USD, total collateral (initial weights); see the module docstring
    equity_error: str = ""
    stale_reads: int = 0  # reads answered from an older slot than the view's (ignored)


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
        self._perps: set[int] = set()  # markets the account referenced so far (read every refresh)
        self._spots: set[int] = set()
        self._oracles: dict[Pubkey, None] = {}

    def decode(self, data: bytes) -> Any:
        return self.program.coder.accounts.decode(data)

    async def fetch_raw(self, keys: list[Pubkey]) -> tuple[int, list[bytes | None]]:
        return await self.rpc.get_multiple_accounts(keys)

    def _market_keys(self, perps: set[int], spots: set[int]) -> dict[Pubkey, tuple[str, int]]:
        keys: dict[Pubkey, tuple[str, int]] = {}
        for i in sorted(perps):
            keys[get_perp_market_public_key(self.program_id, i)] = ("PerpMarket", i)
        for i in sorted(spots):
            keys[get_spot_market_public_key(self.program_id, i)] = ("SpotMarket", i)
        return keys

    async def refresh(self, now: float) -> ChainView:
        """Read State, User, every referenced market and oracle; update driftpy's caches."""
        perps, spots = {self.market_index, *self._perps}, {self.quote_index, *self._spots}
        market_keys = self._market_keys(perps, spots)
        oracle_keys = list(self._oracles)
        keys = [self.state_pubkey, self.user_pubkey, *market_keys, *oracle_keys]
        slot, datas = await self.fetch_raw(keys)
        if slot < self.view.slot:
            # a load-balanced RPC answered from a node behind the one we read last: taking it would
            # make orders vanish and come back (a false cancel or fill). Ignored; the view's age
            # keeps growing, so a node that stays behind makes the venue ``down``.
            self.view.stale_reads += 1
            log.info("account read at slot %d older than the view's %d: ignored", slot, self.view.slot)
            return self.view
        raw = dict(zip(keys, datas, strict=True))
        for name, key in (("State", self.state_pubkey), ("User", self.user_pubkey)):
            if raw[key] is None:
                raise ChainError(f"{name} account {key} not found (program {self.program_id})")
        state_raw, user_raw = raw[self.state_pubkey], raw[self.user_pubkey]
        assert state_raw is not None and user_raw is not None
        try:
            state, decoded = self.decode(state_raw), self.decode(user_raw)
        except Exception as e:
            raise ChainError(f"cannot decode the State or User account {self.user_pubkey}: {e}") from e
        want_perps, want_spots = referenced_markets(decoded)
        if not (want_perps <= perps and want_spots <= spots):  # the account references a new market
            self._perps |= want_perps
            self._spots |= want_spots
            extra = {k: v for k, v in self._market_keys(self._perps | perps, self._spots | spots).items()
                     if k not in market_keys}
            market_keys.update(extra)
            _, more = await self.fetch_raw(list(extra))
            raw.update(zip(extra, more, strict=True))
        markets = self._decode_markets(market_keys, raw)
        self._perps |= want_perps
        self._spots |= want_spots
        v = self.view
        v.perp_markets = {i: m for (kind, i), m in markets.items() if kind == "PerpMarket"}
        v.spot_markets = {i: m for (kind, i), m in markets.items() if kind == "SpotMarket"}
        if user_raw != v.user_raw or v.user is None:
            v.user = snapshot_from_decoded(decoded, slot)
            v.user_raw = user_raw
        self.client.users[self.sub_account_id].account_subscriber.update_data(DataAndSlot(slot, decoded))
        v.slot, v.state, v.fetched_at = slot, state, now
        v.perp_market, v.spot_market = v.perp_markets[self.market_index], v.spot_markets[self.quote_index]
        sub = self.client.account_subscriber
        sub.cache["state"] = DataAndSlot(slot, state)
        sub.cache["perp_markets"] = [DataAndSlot(slot, m) for _, m in sorted(v.perp_markets.items())]
        sub.cache["spot_markets"] = [DataAndSlot(slot, m) for _, m in sorted(v.spot_markets.items())]
        await self._read_oracles(slot, raw)
        self._equity()
        return v

    def _decode_markets(
        self, keys: dict[Pubkey, tuple[str, int]], raw: dict[Pubkey, bytes | None]
    ) -> dict[tuple[str, int], Any]:
        out: dict[tuple[str, int], Any] = {}
        for key, (kind, i) in keys.items():
            data = raw.get(key)
            if data is None:
                raise ChainError(f"{kind} {i} account {key} not found (program {self.program_id})")
            try:
                out[(kind, i)] = self.decode(data)
            except Exception as e:
                raise ChainError(f"cannot decode {kind} {i} ({key}): {e}") from e
        return out

    def _oracle_sources(self) -> list[tuple[Pubkey, Any]]:
        v = self.view
        out = [(m.amm.oracle, m.amm.oracle_source) for m in v.perp_markets.values()]
        out += [(m.oracle, m.oracle_source) for m in v.spot_markets.values()]
        return out

    async def _read_oracles(self, slot: int, raw: dict[Pubkey, bytes | None]) -> None:
        """Oracle prices into driftpy's cache; an unreadable oracle leaves the equity unknown."""
        sources = self._oracle_sources()
        missing = [k for k, src in sources if type(src).__name__ != "QuoteAsset" and k not in raw]
        if missing:
            missing = list(dict.fromkeys(missing))
            _, more = await self.fetch_raw(missing)
            raw.update(zip(missing, more, strict=True))
        self._oracles = {k: None for k, src in sources if type(src).__name__ != "QuoteAsset"}
        cache = self.client.account_subscriber.cache.setdefault("oracle_price_data", {})
        prices: dict[str, int] = {}
        errors: list[str] = []
        for key, src in sources:
            oid = get_oracle_id(key, src)
            if type(src).__name__ == "QuoteAsset":
                data = OraclePriceData(PRICE, slot, 1, PRICE, 1, True)
            else:
                body = raw.get(key)
                try:
                    if body is None:
                        raise ValueError("account not found")
                    data = decode_oracle(body, src)
                    if int(data.price) <= 0:
                        raise ValueError(f"price {data.price}")
                except Exception as e:  # driftpy raises assorted errors on foreign bytes
                    errors.append(f"oracle {key} ({type(src).__name__}): {e}")
                    cache.pop(oid, None)
                    continue
            cache[oid] = DataAndSlot(slot, data)
            prices[oid] = int(data.price)
        self.view.oracle_prices = prices
        self.view.equity_error = "; ".join(errors)

    def _equity(self) -> None:
        v = self.view
        if v.equity_error:
            v.equity = None
            return
        try:
            user = self.client.users[self.sub_account_id]
            v.equity = int(user.get_total_collateral(MarginCategory.INITIAL)) / PRICE
        except Exception as e:
            v.equity, v.equity_error = None, f"total collateral: {type(e).__name__}: {e}"

    def liq_price(self, market_index: int | None = None) -> float | None:
        """driftpy's liquidation price of the position in ``market_index`` (the traded market)."""
        try:
            px = self.client.users[self.sub_account_id].get_perp_liq_price(
                self.market_index if market_index is None else market_index)
        except Exception:
            return None
        return None if px is None or px <= 0 else int(px) / PRICE

    def oracle_price(self, market_index: int | None = None) -> float | None:
        m = self.view.perp_markets.get(self.market_index if market_index is None else market_index)
        if m is None:
            return None
        p = self.view.oracle_prices.get(get_oracle_id(m.amm.oracle, m.amm.oracle_source))
        return None if p is None else p / PRICE

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
