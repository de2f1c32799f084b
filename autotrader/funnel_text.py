"""The backtest funnel as text (``autotrader backtest``): setups → vetoes by guard → intents →
engine verdicts → fills → trades, and one sentence when nothing traded."""

from __future__ import annotations

from core.funnel import Funnel, why_no_trades


def _top(counts: dict[str, int], n: int = 4) -> str:
    items = sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    text = ", ".join(f"{k} {v}" for k, v in items[:n])
    return text + (f", {len(items) - n} more" if len(items) > n else "")


def render_funnel(f: Funnel) -> list[str]:
    by_guards = f"; {f.vetoed_by_guard} by the guards" if f.vetoed else ""
    rows = [
        ("setups detected", f.setups, ""),
        ("  vetoed", f.vetoed, _top(f.vetoed_by) + by_guards),
        ("intents", f.intents, f"signal {f.signal_intents}, manual {f.manual_intents}"),
        ("  rejected by the engine", f.rejected, _top(f.rejected_by)),
        ("  accepted", f.accepted, ""),
        ("    filled", f.filled, f"entries re-placed {f.replaced} time(s)" if f.replaced else ""),
        ("    unfilled", f.unfilled, ""),
        ("    cancelled before a fill", f.cancelled, ""),
        ("    still working at the end", f.working, ""),
        ("trades", f.trades, f"closed {f.closed}, open {f.open}"),
    ]
    out = ["  funnel"]
    out += [f"    {name:<30}{n:>6}" + (f"   ({why})" if why and n else "") for name, n, why in rows]
    why = why_no_trades(f)
    if why:
        out.append(f"  {why}")
    if not f.adds_up():  # never expected: said rather than hidden
        out.append("  (the funnel does not add up: the run ended with intents still queued)")
    return out


def render_warnings(warnings: list[str]) -> list[str]:
    return [f"  WARNING: {w}" for w in warnings]
