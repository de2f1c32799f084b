"""The liquidation-map scanner on Velocity User accounts (``engine.venue = "velocity"``): the Drift
scanner's transport (streamed ``getProgramAccounts``, retries with capped backoff) and solver
(:mod:`core.liqmap`), with Velocity's markets (the traded one found by name), oracles and User
layout (:mod:`execution.velocity.liqmap`)."""

from __future__ import annotations

import base64
import dataclasses
import logging
from typing import Any

from core.config_schema import Config
from core.liqmap import MarketParams
from execution.anchor_idl.codec import CodecError
from execution.velocity.accounts import market_name, oracle_price
from execution.velocity.liqmap import V_USER_SIZE, market_params, to_drift_layout, user_filters
from execution.velocity.program import codec
from feeds.drift.scanner import LiqMapScanner, Progress, ScanConfig, ScanError, memcmp

log = logging.getLogger(__name__)


class VelocityLiqMapScanner(LiqMapScanner):
    def __init__(self, cfg: ScanConfig, market: str, progress: Progress | None = None) -> None:
        super().__init__(cfg, progress)
        self.market_name = market

    def _accounts(self, items: list[tuple[str, str]], name: str) -> list[dict[str, Any]]:
        out = []
        for _, data in items:
            try:
                out.append(codec().decode_account_as(name, base64.b64decode(data)))
            except (CodecError, ValueError) as e:
                log.warning("liqmap: a %s account left out: %s", name, e)
        return out

    async def market(self) -> MarketParams:
        """The perp market named ``market`` (index read from the chain), every spot market, oracles."""
        pid = self.cfg.program_id
        disc = {n: bytes(codec().accounts[n]["discriminator"]) for n in ("PerpMarket", "SpotMarket")}
        _, perp_items = await self.rpc.program_accounts(pid, [memcmp(0, disc["PerpMarket"])])
        perps = [
            p for p in self._accounts(perp_items, "PerpMarket") if market_name(p["name"]) == self.market_name
        ]
        if not perps:
            raise ScanError(f"no Velocity perp market named {self.market_name!r}")
        perp = perps[0]
        _, spot_items = await self.rpc.program_accounts(pid, [memcmp(0, disc["SpotMarket"])])
        spots = self._accounts(spot_items, "SpotMarket")
        _, raws = await self.rpc.multiple_accounts([str(perp["oracle"])] + [str(s["oracle"]) for s in spots])
        perp_px = self._price(
            perp["oracle_source"],
            raws[0],
            int(perp["market_stats"]["historical_oracle_data"]["last_oracle_price"]),
        )
        priced = []
        for sm, raw in zip(spots, raws[1:], strict=True):
            if sm["oracle_source"] == "QuoteAsset":
                priced.append((sm, 1_000_000))
                continue
            priced.append(
                (
                    sm,
                    self._price(
                        sm["oracle_source"], raw, int(sm["historical_oracle_data"]["last_oracle_price"])
                    ),
                )
            )
        self.cfg = dataclasses.replace(self.cfg, market_index=int(perp["market_index"]))
        return market_params(perp, perp_px, priced)

    @staticmethod
    def _price(source: str, raw: bytes | None, fallback: int) -> int:
        data = None
        if raw is not None:
            try:
                data = codec().decode_account(raw)[1]
            except CodecError:
                data = None
        return oracle_price(source, data, fallback)[0]

    def _decode(self, items: list[tuple[str, str]]) -> tuple[list[str], bytearray]:
        """Velocity Users -> the solver's layout, in one contiguous buffer (others dropped)."""
        keys: list[str] = []
        chunks: list[bytes] = []
        total, every = len(items), max(1, self.cfg.progress_every)
        for i, (key, data) in enumerate(items, 1):
            try:
                raw = base64.b64decode(data)
                if len(raw) == V_USER_SIZE:
                    chunks.append(to_drift_layout(raw))
                    keys.append(key)
            except ValueError:
                pass  # not base64, not a User: skipped like any foreign account
            if self.progress is not None and (i % every == 0 or i == total):
                self.progress("decode", i, total)
        return keys, bytearray(b"".join(chunks))

    def user_filters(self) -> list[dict[str, Any]]:
        return [memcmp(off, data) for off, data in user_filters()] + [{"dataSize": V_USER_SIZE}]


def velocity_scan_config(cfg: Config) -> ScanConfig:
    lm, v = cfg.liqmap, cfg.venues.velocity
    return ScanConfig(
        rpc_url=lm.rpc_url or v.rpc_url,
        program_id=v.program_id,
        timeout_s=lm.timeout_s,
        retries=lm.retries,
        backoff_cap_s=lm.backoff_cap_s,
        bucket_bps=lm.bucket_bps,
        cluster=v.cluster,
    )
