"""Deterministic inputs for the UI tests: a fake command port and a fixed market on a bus."""

from __future__ import annotations

from typing import Any

from core.bus import Bus, Topics
from core.engine_types import ENGINE_EVENTS, EngineEvent
from core.guard_config import GuardsConfig
from core.guards import GUARDS, Depth, GuardReport
from core.intents import REGIME, Regime
from core.liqmap_map import LiqCluster, LiqMap
from core.models import Bar, Basis, BookTop, FeedStatus, Funding, Liquidation, OpenInterest
from core.ui_port import LIQ_MAP, ManualOrder, OrderVerdict, UiInfo, UiSettings

T0 = 1_741_565_100_000  # 2025-03-10 00:05:00 UTC


class FakeCommands:
    """Records every command; answers like the runtime would."""

    def __init__(self, *, verdict_ok: bool = True, history: list[EngineEvent] | None = None) -> None:
        self.history = history or []
        self.calls: list[tuple[str, Any]] = []
        self.automation_on = True
        self.halted = False
        self.verdict_ok = verdict_ok
        self.saved: UiSettings | None = None
        self.current = UiSettings(leverage=3.0, risk_per_trade_pct=0.5, priority_fee_cap=200_000.0,
                                  daily_stop_pct=3.0)
        self.position = 8.5
        self.orders = [
            {"order_id": "p1", "tag": "vwap-buy:sl1", "side": "sell", "type": "trigger_market", "size": 8.5,
             "price": None, "trigger_price": 143.29, "reduce_only": True, "status": "open"},
            {"order_id": "p2", "tag": "vwap-buy:tp1", "side": "sell", "type": "limit", "size": 4.25,
             "price": 156.97, "trigger_price": None, "reduce_only": True, "status": "open"},
        ]

    async def kill(self, reason: str) -> dict[str, Any]:
        """The kill's one meaning: entries and take-profits cancelled, the stop of the position kept."""
        self.calls.append(("kill", reason))
        already = self.halted
        kept = [o for o in self.orders
                if o["reduce_only"] and o["type"].startswith("trigger") and self.position]
        n = len(self.orders) - len(kept)
        self.orders = kept
        self.halted = True
        self.automation_on = False
        return {"trading_state": "halted", "reason": reason, "confirmed": True, "cancelled": n,
                "open_orders": len(kept), "already": already, "kept": kept, "position": self.position,
                "elapsed_ms": 12.0}

    async def flatten(self, reason: str) -> dict[str, Any]:
        self.calls.append(("flatten", reason))
        n = len(self.orders)
        self.orders, self.position = [], 0.0
        return {"trading_state": "halted", "reason": reason, "confirmed": True, "cancelled": n,
                "flattened": True, "position": 0.0, "already": True}

    async def cancel_all(self, reason: str) -> dict[str, Any]:
        self.calls.append(("cancel_all", reason))
        n = len(self.orders)
        self.orders = []
        return {"trading_state": "halted", "reason": reason, "confirmed": True, "cancelled": n,
                "position": self.position, "unprotected": bool(self.position), "already": True}

    async def resume(self) -> dict[str, Any]:
        self.calls.append(("resume", None))
        self.halted = False
        return {"trading_state": "active", "automation_on": self.automation_on, "reason": ""}

    async def set_automation(self, on: bool) -> dict[str, Any]:
        self.calls.append(("automation", on))
        if on and self.halted:
            raise ValueError("the kill switch is engaged: resume trading first")
        self.automation_on = on
        return {"automation_on": on}

    async def preview_order(self, order: ManualOrder) -> OrderVerdict:
        self.calls.append(("preview", order))
        if self.verdict_ok:
            return OrderVerdict(ok=True, reasons=[], price=order.price or 150.0, guard_status="passing")
        return OrderVerdict(ok=False, reasons=["guards block: spread 12 bps > 10 bps"], price=150.0,
                            guard_status="warning")

    async def submit_order(self, order: ManualOrder) -> dict[str, Any]:
        self.calls.append(("submit", order))
        return {"id": "manual-1", "status": "accepted", "side": order.side, "size": order.size}

    async def trading_status(self) -> dict[str, Any]:
        return {"trading_state": "halted" if self.halted else "active", "automation_on": self.automation_on,
                "position": {"size": self.position, "avg_price": 149.14, "realized_pnl": 0.0},
                "unrealized_pnl": 7.23, "equity": 10_007.23, "day_pnl_pct": 0.07,
                "open_orders": list(self.orders), **({"manual_sign": True} if self.manual_sign else {})}

    def guard_report(self) -> GuardReport:
        return fixed_report()

    def settings(self) -> UiSettings:
        return self.saved or self.current

    def recent_events(self, limit: int) -> list[EngineEvent]:
        return self.history[-limit:]

    async def save_settings(self, settings: UiSettings) -> None:
        self.calls.append(("settings", settings))
        self.saved = settings

    # the delegation panel: answers shaped like autotrader/delegation_control.py's
    DELEGATE = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
    OWNER = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T"

    def _delegation(self) -> dict[str, Any]:
        return {"applicable": True, "user": "7YjW3cXxJZkW4mX6DnGm8t1rZ5pZoDm7Jp3sQbUo4hJz",
                "authority": self.OWNER, "delegate": self.delegate, "sub_account_id": 0, "slot": 4242,
                "set_at_ms": T0 - 86_400_000 if self.delegate else None,
                "ttl": "none on chain: a Drift delegate stays until the owner revokes it",
                "signs_as": "delegate", "owner_signer": "local", "manual_sign": self.manual_sign,
                "automation_on": self.automation_on}

    delegate: str | None = DELEGATE
    manual_sign = False

    async def delegation(self) -> dict[str, Any]:
        self.calls.append(("delegation", None))
        return self._delegation()

    async def revoke_delegation(self, passphrase: str) -> dict[str, Any]:
        self.calls.append(("revoke", passphrase))
        self.automation_on = False
        if passphrase != "owner pass":
            raise ValueError("cannot decrypt the key file (wrong passphrase?)")
        self.delegate, self.manual_sign = None, True
        return {**self._delegation(), "signature": "5sig"}

    async def set_manual_sign(self, on: bool) -> dict[str, Any]:
        self.calls.append(("manual_sign", on))
        self.manual_sign = on
        if on:
            self.automation_on = False
        return self._delegation()

    async def hand_summary(self, order: ManualOrder) -> dict[str, Any]:
        self.calls.append(("hand_summary", order))
        return {"orders": 2, "lines": [
            "[hand-1:e1]",
            f"market SOL-PERP  {order.side.upper()} {order.size:g} @ 145.0000  (limit, post-only must)",
            f"account authority {self.OWNER}; signed by the owner",
            "fees: network ≤ 0.000015 SOL, trading ≈ -0.0290 USD",
            "[hand-1:sl1]", f"market SOL-PERP  SELL {order.size:g} @ market  (trigger_market, reduce-only)",
            f"trigger: below {order.sl:.4f}"]}

    async def hand_sign(self, order: ManualOrder, passphrase: str) -> dict[str, Any]:
        self.calls.append(("hand_sign", (order, passphrase)))
        return {"ok": passphrase == "owner pass",
                "lines": ["sent 1 (user order id 1); waiting for confirmation"]}


INFO = UiInfo(venue="paper", cluster="paper", label="synthetic demo")


def populate(bus: Bus, minutes: int = 40) -> None:
    """A fixed market: ``minutes`` closed 1m bars, a book, funding, OI, basis, liquidations, feeds,
    a guard report, engine events and a Drift liq-map."""
    px = 150.0
    cvd = 0.0
    for i in range(minutes):
        ts = T0 + i * 60_000
        o = px
        px = 150.0 + 2.0 * ((i % 12) - 6) / 6 + i * 0.05
        buy, sell = 100.0 + (i * 37 % 50), 100.0 + (i * 53 % 50)
        cvd += buy - sell
        bus.publish(Topics.BARS, Bar(symbol="SOLUSDT", timestamp=ts, open=o, high=max(o, px) + 0.2,
                                     low=min(o, px) - 0.2, close=px, buy_vol=buy, sell_vol=sell, cvd=cvd,
                                     vwap=150.5 + i * 0.01, trades=100, closed=True))
        bus.publish(Topics.OPEN_INTEREST, OpenInterest(venue="bybit", symbol="SOLUSDT", ts=ts + 30_000,
                                                       oi_base=3_100_000 + i * 1000, oi_single=0,
                                                       oi_notional=(3_100_000 + i * 1000) * 150.0))
        if i % 3 == 0:
            side = "long" if i % 2 else "short"
            bus.publish(Topics.LIQUIDATIONS, Liquidation(venue="binance", symbol="SOLUSDT", ts=ts + 10_000,
                                                         side=side, price=px - 0.6 + (i % 5) * 0.3,
                                                         qty=10 + i, notional=(10 + i) * px))
    now = T0 + minutes * 60_000
    bus.publish(Topics.BOOK, BookTop(venue="binance", symbol="SOLUSDT", timestamp=now, update_id=1,
                                     bid_px=px - 0.005, bid_qty=13, ask_px=px + 0.005, ask_qty=25,
                                     spread_bps=0.67, bid_usd=181_238.0, ask_usd=40_230.0))
    bus.publish(Topics.FUNDING, Funding(venue="bybit", symbol="SOLUSDT", ts=now, rate=0.0001,
                                        interval_hours=8, apr_pct=10.95))
    bus.publish(Topics.BASIS, Basis(ts=now, usdt_px=px, usdc_px=px * 1.0001, basis_bps=1.0))
    for feed, age in (("binance", 0.0), ("bybit", 1.2), ("okx", 2.2)):
        bus.publish(Topics.FEED_STATUS, FeedStatus(feed=feed, state="live", ts=now, last_msg_age_s=age))
    bus.publish(GUARDS, fixed_report(now))
    bus.publish(REGIME, Regime(ts=now, on=True, reason="armed"))
    iid = "vwap-SOL-PERP-buy-1741567560000"
    for k, (kind, data) in enumerate([
        ("intent_accepted", {"side": "buy", "size": 8.5, "price": 149.14, "sl": 143.29, "source": "signal"}),
        ("order_submitted", {"role": "entry", "order_id": "p0", "size": 8.5, "price": 149.14, "attempt": 1}),
        ("order_filled", {"role": "entry", "filled": 8.5, "avg_price": 149.14}),
        ("sl_placed", {"trigger": 143.29, "size": 8.5}),
        ("tp_placed", {"index": 1, "price": 156.97, "size": 4.25}),
        ("guard_block", {"stage": "entry", "reason": "depth(10bps) min side 40,230 USD < 50,000 USD"}),
    ]):
        bus.publish(ENGINE_EVENTS, EngineEvent(kind=kind, intent_id=iid if kind != "guard_block" else "",
                                               ts=now - 60_000 + k * 1000, data=data))
    half = 0.1875  # bucket edges exact in binary, so each mid is the price below exactly
    bus.publish(LIQ_MAP, LiqMap(
        updated_at=now, slot=1, market_index=0, oracle_price=149.2, bucket_bps=25.0, scanned=3, entries=[],
        clusters=[LiqCluster(price_lo=px - half, price_hi=px + half, notional_usd=n, accounts=1)
                  for px, n in [(142.5, 2_400_000.0), (158.0, 1_100_000.0), (139.0, 5_000_000.0)]]))


def fixed_report(now: int = T0 + 40 * 60_000) -> GuardReport:
    why = "depth(10bps) min side 40,230 USD < 50,000 USD"
    depth = Depth(bid_usd=181_238.0, ask_usd=40_230.0)
    return GuardReport(ts=now, spread_bps=0.67, depth_10bps=depth, funding_apr=10.95, basis_bps=1.0,
                       oi_notional=4.7e8, liq_events_5m=2, status="warning", warnings=[why], blocks=[why],
                       ages_s={}, data_source="replay")


def guards_cfg() -> GuardsConfig:
    return GuardsConfig()
