"""Velocity accounts over JSON-RPC: State, the traded PerpMarket (found by name), the spot and
perp markets the user's positions need, the User account and the market's oracle, read in one
``getMultipleAccounts`` per refresh (a second one only when the user opened a position in a
market not loaded yet)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from solders.pubkey import Pubkey

from execution.anchor_idl.codec import CodecError
from execution.solana_send.rpc import RpcClient
from execution.velocity.accounts import (
    PerpMarketView,
    SpotMarketView,
    StateView,
    UserView,
    equity_usdt,
    oracle_price,
    user_view,
)
from execution.velocity.instructions import Markets, Signer
from execution.velocity.orders import MarketSpec
from execution.velocity.program import (
    codec,
    perp_market_pda,
    spot_market_pda,
    state_pda,
    user_pda,
    user_stats_pda,
)
from execution.velocity.program_check import NOT_RUN, ProgramCheck
from execution.velocity.status import VelocityStatus

log = logging.getLogger(__name__)

MAX_KEYS = 100  # getMultipleAccounts limit


class ChainError(Exception):
    """An account is missing, undecodable, or its layout differs from the one the venue knows."""


@dataclass
class ChainView:
    slot: int = 0
    state: StateView | None = None
    perp: dict[int, PerpMarketView] = field(default_factory=dict)
    spot: dict[int, SpotMarketView] = field(default_factory=dict)
    user: UserView | None = None
    user_raw: bytes = b""
    equity_breaker_tripped: bool = False  # UserStats: risk-increasing fills are rejected
    oracle_price: int = 0  # the traded market's, 1e6
    oracle_live: bool = False
    fetched_at: float = 0.0
    stale_reads: int = 0  # reads answered from an older slot than the view's (ignored)


class VelocityChain:
    def __init__(
        self,
        rpc: RpcClient,
        program_id: Pubkey,
        authority: Pubkey,
        signer_pubkey: Pubkey,
        *,
        sub_account_id: int = 0,
        market_name: str = "SOL-PERP",
    ) -> None:
        self.rpc = rpc
        self.program_id = program_id
        self.authority = authority
        self.signer_pubkey = signer_pubkey
        self.sub_account_id = sub_account_id
        self.market_name = market_name
        self.market_index: int | None = None
        self.who = Signer(program_id, authority, signer_pubkey, sub_account_id)
        self.state_pubkey = state_pda(program_id)
        self.user_pubkey = user_pda(program_id, authority, sub_account_id)
        self.user_stats_pubkey = user_stats_pda(program_id, authority)
        self.check: ProgramCheck = NOT_RUN
        self.view = ChainView()

    # ------------------------------------------------------------------ decoding
    def _decode(self, name: str, raw: bytes | None, key: Pubkey) -> dict[str, Any]:
        if raw is None:
            raise ChainError(f"{name} account {key} not found (program {self.program_id})")
        if name not in self.check.readable:
            raise ChainError(f"{name} layout differs from the one this venue knows: {self.check.detail}")
        try:
            return codec().decode_account_as(name, raw)
        except CodecError as e:
            raise ChainError(f"cannot decode {name} account {key}: {e}") from None

    @property
    def perp_market_pubkey(self) -> Pubkey:
        return perp_market_pda(self.program_id, self.market_index or 0)

    # ------------------------------------------------------------------ market lookup
    async def locate_market(self) -> int:
        """The index of the perp market named ``market_name`` (read from the chain)."""
        _, (raw,) = await self.rpc.get_multiple_accounts([self.state_pubkey])
        state = StateView.of(self._decode("State", raw, self.state_pubkey))
        keys = [perp_market_pda(self.program_id, i) for i in range(state.number_of_markets)]
        names = []
        for start in range(0, len(keys), MAX_KEYS):
            _, datas = await self.rpc.get_multiple_accounts(keys[start : start + MAX_KEYS])
            for key, data in zip(keys[start : start + MAX_KEYS], datas, strict=True):
                if data is None:
                    continue
                m = PerpMarketView.of(self._decode("PerpMarket", data, key))
                names.append(m.name)
                if m.name == self.market_name:
                    self.market_index = m.market_index
                    self.view.perp[m.market_index] = m
                    return m.market_index
        raise ChainError(
            f"no perp market named {self.market_name!r} among {len(keys)} "
            f"(found: {', '.join(names[:12]) or 'none'})"
        )

    # ------------------------------------------------------------------ refresh
    async def read_status(self) -> VelocityStatus:
        """State and the traded market only (no User account needed): ``venue status``."""
        if self.market_index is None:
            await self.locate_market()
        assert self.market_index is not None
        key = perp_market_pda(self.program_id, self.market_index)
        slot, (st_raw, pm_raw) = await self.rpc.get_multiple_accounts([self.state_pubkey, key])
        self.view.state = StateView.of(self._decode("State", st_raw, self.state_pubkey))
        self.view.perp[self.market_index] = PerpMarketView.of(self._decode("PerpMarket", pm_raw, key))
        self.view.slot = slot
        return self.status()

    async def refresh(self, now: float) -> ChainView:
        """Read State, markets, User and the traded market's oracle; update :attr:`view`."""
        if self.market_index is None:
            await self.locate_market()
        assert self.market_index is not None
        v = self.view
        perp_idx = {self.market_index, *(v.user.perp_markets if v.user else ())}
        market = v.perp.get(self.market_index)
        spot_idx = {
            market.quote_spot_market_index if market else 0,
            *(s.market_index for s in (v.user.spot if v.user else ())),
        }
        keys: list[Pubkey] = [self.state_pubkey, self.user_pubkey, self.user_stats_pubkey]
        keys += [perp_market_pda(self.program_id, i) for i in sorted(perp_idx)]
        keys += [spot_market_pda(self.program_id, i) for i in sorted(spot_idx)]
        oracle_key = market.oracle if market else None
        if oracle_key is not None:
            keys.append(oracle_key)
        slot, datas = await self.rpc.get_multiple_accounts(keys)
        if slot < v.slot:
            # a load-balanced RPC answered from a node behind the one read last: taking it would make
            # orders vanish and come back (a false cancel or fill). Ignored, as on Drift; the view's
            # age keeps growing, so a node that stays behind makes the venue ``down``.
            v.stale_reads += 1
            log.info("account read at slot %d older than the view's %d: ignored", slot, v.slot)
            return v
        by_key = dict(zip(keys, datas, strict=True))
        state = StateView.of(self._decode("State", by_key[self.state_pubkey], self.state_pubkey))
        perps, spots = {}, {}
        for i in sorted(perp_idx):
            k = perp_market_pda(self.program_id, i)
            perps[i] = PerpMarketView.of(self._decode("PerpMarket", by_key[k], k))
        for i in sorted(spot_idx):
            k = spot_market_pda(self.program_id, i)
            spots[i] = SpotMarketView.of(self._decode("SpotMarket", by_key[k], k))
        user_raw = by_key[self.user_pubkey]
        user = v.user
        if user_raw != v.user_raw or user is None:
            user = user_view(self._decode("User", user_raw, self.user_pubkey), slot)
        v.slot, v.state, v.user, v.user_raw, v.fetched_at = slot, state, user, user_raw or b"", now
        stats_raw = by_key[self.user_stats_pubkey]  # optional: absent on some test deployments
        if stats_raw is not None and "UserStats" in self.check.readable:
            stats = self._decode("UserStats", stats_raw, self.user_stats_pubkey)
            v.equity_breaker_tripped = bool(stats["equity_breaker_tripped"])
        v.perp.update(perps)
        v.spot.update(spots)
        market = perps[self.market_index]
        v.oracle_price, v.oracle_live = oracle_price(
            market.oracle_source, self._oracle(by_key.get(market.oracle)), market.last_oracle_price
        )
        missing = (set(user.perp_markets) - set(v.perp)) | (
            {market.quote_spot_market_index, *(s.market_index for s in user.spot)} - set(v.spot)
        )
        if missing:  # a position in a market not loaded yet: read it now (remaining accounts need it)
            return await self.refresh(now)
        return v

    def _oracle(self, raw: bytes | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        try:
            return codec().decode_account(raw)[1]
        except CodecError:
            return None

    # ------------------------------------------------------------------ derived views
    def status(self) -> VelocityStatus:
        v = self.view
        m = v.perp.get(self.market_index) if self.market_index is not None else None
        if v.state is None or m is None:
            raise ChainError("no account data yet")
        return VelocityStatus.of(
            v.state.exchange_status,
            m.status,
            m.paused_operations,
            market_index=m.market_index,
            market_name=m.name,
            slot=v.slot,
            program_check=self.check.summary(),
            equity_breaker_tripped=v.equity_breaker_tripped,
            trade_allowed=self.check.trade_allowed,
        )

    def market_spec(self) -> MarketSpec:
        m = self.view.perp.get(self.market_index) if self.market_index is not None else None
        if m is None:
            raise ChainError("no perp market data yet")
        return MarketSpec(m.market_index, m.tick, m.step, m.min_order_size, m.name)

    def markets(self) -> Markets:
        return Markets(perp=dict(self.view.perp), spot=dict(self.view.spot))

    def fee_rates(self) -> tuple[float, float]:
        st = self.view.state
        return (st.taker_fee, st.maker_rebate) if st is not None else (0.00035, 0.0)

    def equity(self) -> tuple[float, bool]:
        """(equity in USDT, exact); only the traded market's perp position is priced live."""
        v = self.view
        if v.user is None or self.market_index is None:
            raise ChainError("no User account data yet")
        perp_prices = {i: m.last_oracle_price for i, m in v.perp.items()}
        perp_prices[self.market_index] = v.oracle_price
        spot_prices = {i: m.last_oracle_price for i, m in v.spot.items()}
        return equity_usdt(v.user, v.spot, perp_prices, spot_prices)
