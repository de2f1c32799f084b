"""Preflight: whether an intent may be entered now (pure), and the day-PnL arithmetic of the daily stop."""

from __future__ import annotations

import math

import msgspec

from core.engine_types import EngineConfig
from core.guards import GuardReport, allows_entry
from core.intents import Intent
from core.venue import Position

# --------------------------------------------------------------------------- preflight


class PreflightContext(msgspec.Struct, frozen=True, kw_only=True):
    now_ms: int
    guard: GuardReport | None
    equity_usd: float
    day_pnl_pct: float | None
    priority_fee: float | None = None


def guard_fresh_ok(guard: GuardReport | None, now_ms: int, max_age_s: float) -> tuple[bool, str]:
    """A guard report allows an entry: present, at most ``max_age_s`` old, nothing blocking."""
    if guard is None:
        return False, "no guard report"
    age = (now_ms - guard.ts) / 1000.0
    if age > max_age_s:
        return False, f"guard report {age:.1f} s old > {max_age_s:g} s"
    if not allows_entry(guard):
        why = "; ".join(guard.blocks) or guard.status
        return False, f"guards block: {why}"
    return True, ""


def finite_pos(x: float) -> bool:
    return math.isfinite(x) and x > 0


def preflight(intent: Intent, ctx: PreflightContext, cfg: EngineConfig) -> list[str]:
    """Why ``intent`` must not be entered (empty = go)."""
    out: list[str] = []
    if intent.symbol != cfg.market:
        out.append(f"market {intent.symbol!r} is not {cfg.market!r}")
    if not (finite_pos(intent.price) and finite_pos(intent.size) and finite_pos(intent.sl)):
        out.append("price, size and sl must be positive numbers")
        return out
    long = intent.side == "buy"
    if (intent.sl >= intent.price) if long else (intent.sl <= intent.price):
        out.append(f"stop {intent.sl:g} is on the wrong side of entry {intent.price:g}")
    fr = sum(f for _, f in intent.tps)
    if intent.tps and not math.isclose(fr, 1.0, abs_tol=1e-6):
        out.append(f"take-profit fractions sum to {fr:g}, not 1")
    for px, f in intent.tps:
        wrong_side = (px <= intent.price) if long else (px >= intent.price)
        if not (finite_pos(px) and finite_pos(f)) or wrong_side:
            out.append(f"take-profit {px:g} is invalid for a {intent.side}")
            break
    ok, why = guard_fresh_ok(ctx.guard, ctx.now_ms, cfg.guard_max_age_s)
    if not ok:
        out.append(why)
    eq = ctx.equity_usd
    if not finite_pos(eq):
        out.append("equity unknown")
        return out
    notional = intent.price * intent.size
    if intent.leverage > cfg.max_leverage or notional > eq * cfg.max_leverage * (1 + 1e-9):
        out.append(f"leverage {max(intent.leverage, notional / eq):.2f}x > cap {cfg.max_leverage:g}x")
    risk = abs(intent.price - intent.sl) * intent.size
    budget = eq * cfg.risk_per_trade_pct / 100.0
    if risk > budget * (1 + cfg.risk_tolerance):
        out.append(f"risk {risk:.2f} USD > {cfg.risk_per_trade_pct:g}% of equity ({budget:.2f} USD)")
    if ctx.day_pnl_pct is None or not math.isfinite(ctx.day_pnl_pct):
        out.append("day PnL unknown")
    elif ctx.day_pnl_pct <= -cfg.daily_stop_pct:
        out.append(f"daily stop: day PnL {ctx.day_pnl_pct:.2f}% <= -{cfg.daily_stop_pct:g}%")
    if cfg.priority_fee_cap > 0 and ctx.priority_fee is not None and ctx.priority_fee > cfg.priority_fee_cap:
        out.append(f"priority fee {ctx.priority_fee:g} > cap {cfg.priority_fee_cap:g}")
    return out


def day_pnl_pct(pos: Position, mark: float | None, baseline_net: float, start_equity: float) -> float:
    """Realized (net of fees, plus funding) since ``baseline_net`` plus unrealized PnL at ``mark``,
    as a percentage of start-of-day equity."""
    net = pos.realized_pnl - pos.fees + pos.funding - baseline_net
    unreal = pos.size * (mark - pos.avg_price) if (mark is not None and pos.size) else 0.0
    return (net + unreal) / start_equity * 100.0


def realized_net(pos: Position) -> float:
    return pos.realized_pnl - pos.fees + pos.funding
