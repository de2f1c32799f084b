"""A manual intent (CLI ``autotrader intent``, the UI's order form): validated, pure.

The price defaults to the touch (best bid for a buy, best ask for a sell: a post-only entry joins
the book). A stop is required: the engine never opens a position it cannot protect. Take-profits
are ``(price, fraction)``; fractions left out are filled from ``default_split`` when the counts
match, else split evenly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from core.intents import Intent, IntentSide


class ManualIntentError(ValueError):
    """The manual order is not valid (the message says why, naming the field)."""


def _pos(name: str, x: float | None) -> float:
    if x is None or not math.isfinite(x) or x <= 0:
        raise ManualIntentError(f"{name} must be a positive number, got {x!r}")
    return float(x)


def tp_ladder(
    tps: Sequence[tuple[float, float | None]], default_split: Sequence[float]
) -> tuple[tuple[float, float], ...]:
    if not tps:
        return ()
    prices = [_pos("take-profit price", p) for p, _ in tps]
    given = [f for _, f in tps]
    if all(f is None for f in given):
        split = list(default_split) if len(default_split) == len(tps) else [1.0] * len(tps)
    elif any(f is None for f in given):
        raise ManualIntentError("give a fraction for every take-profit or for none")
    else:
        split = [_pos("take-profit fraction", f) for f in given]
    total = sum(split)
    return tuple((p, f / total) for p, f in zip(prices, split, strict=True))


def build_manual_intent(
    *,
    intent_id: str,
    ts: int,
    market: str,
    side: str,
    size: float,
    sl: float,
    price: float | None,
    bid: float | None,
    ask: float | None,
    tps: Sequence[tuple[float, float | None]] = (),
    default_split: Sequence[float] = (0.5, 0.3, 0.2),
    equity_usd: float,
    post_only: bool = True,
) -> Intent:
    if side not in ("buy", "sell"):
        raise ManualIntentError(f"side must be 'buy' or 'sell', got {side!r}")
    s: IntentSide = "buy" if side == "buy" else "sell"
    qty = _pos("size", size)
    stop = _pos("sl", sl)
    if price is None:
        touch = bid if s == "buy" else ask
        if touch is None or not math.isfinite(touch) or touch <= 0:
            raise ManualIntentError("no price given and no book yet to take the touch from")
        px = touch
    else:
        px = _pos("price", price)
    if (stop >= px) if s == "buy" else (stop <= px):
        raise ManualIntentError(f"sl {stop:g} must be {'below' if s == 'buy' else 'above'} the entry {px:g}")
    ladder = tp_ladder(tps, default_split)
    for tp, _ in ladder:
        if (tp <= px) if s == "buy" else (tp >= px):
            where = "above" if s == "buy" else "below"
            raise ManualIntentError(f"take-profit {tp:g} must be {where} the entry {px:g}")
    eq = _pos("equity", equity_usd)
    return Intent(
        id=intent_id,
        ts=ts,
        symbol=market,
        side=s,
        price=px,
        size=qty,
        sl=stop,
        tps=ladder,
        leverage=px * qty / eq,
        reason="manual order",
        source="manual",
        post_only=post_only,
        risk_usd=abs(px - stop) * qty,
    )
