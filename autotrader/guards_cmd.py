"""``autotrader guards``: a one-shot guard report from live feeds.

Connects every feed, waits until no input is stale/missing (or the timeout passes) and prints the
report; a report that is still stale at the timeout is printed as it is, naming what is missing
(fail closed, never filled in). Querying a *running* instance needs the control socket of the
engine issue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `autotrader guards` against a running instance needs none of the feeds
    from core.config_schema import Config
    from core.guards import GuardReport


async def one_shot_report(cfg: Config, timeout_s: float, poll_s: float = 0.25) -> GuardReport:
    from core.bus import Bus
    from core.clock import WallClock
    from core.guard_monitor import GuardMonitor
    from core.sanity import MarketSanity
    from feeds.live import run_live
    from feeds.pipeline import MarketPipeline

    bus = Bus()
    pipeline = MarketPipeline(
        bus,
        binance_symbol=cfg.market.binance_symbol,
        bybit_symbol=cfg.market.bybit_symbol,
        okx_usdc_inst=cfg.market.okx_usdc_inst,
        okx_usdt_inst=cfg.market.okx_usdt_inst,
        sanity=MarketSanity.of(cfg.feeds),
    )
    monitor = GuardMonitor(bus, cfg.guards, WallClock(), "live")
    stop = asyncio.Event()
    feeds = asyncio.create_task(run_live(cfg, bus, pipeline, stop), name="guards:live")
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not feeds.done():
            await asyncio.sleep(poll_s)
            if monitor.check().status != "stale":
                break
        return monitor.check()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(feeds), timeout=10)
        feeds.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeds


def guards_exit_code(d: dict[str, Any]) -> int:
    """0 when the report lets entries through, 3 (unsafe or stale) when it blocks them."""
    from autotrader.exit_codes import OK, UNSAFE

    return UNSAFE if d.get("blocks") or d.get("status") in ("stale", "breach") else OK


def render_text(report: GuardReport) -> str:
    """A short human-readable report (plain text; colour is the UI's job)."""
    from core.guards import to_json

    return render_json_text(to_json(report, detailed=True))


def render_json_text(d: dict[str, Any]) -> str:
    """:func:`render_text` of a report already in its JSON form (as a running instance sends it)."""

    def num(x: Any, fmt: str) -> str:
        return "n/a" if x is None else format(x, fmt)

    lines = [
        f"guards: {d['status'].upper()}  ({d['data_source']}, ts {d['ts']})",
        f"  spread        {num(d['spread_bps'], '.2f')} bps",
        f"  depth 10bps   bid {num(d['depth_10bps']['bid_usd'], ',.0f')} USD / "
        f"ask {num(d['depth_10bps']['ask_usd'], ',.0f')} USD",
        f"  funding APR   {num(d['funding_apr'], '.2f')} %",
        f"  basis         {num(d['basis_bps'], '.2f')} bps",
        f"  OI notional   {num(d['oi_notional'], ',.0f')} USD",
        f"  liquidations  {d['liq_events_5m']} in 5 min",
        "  ages (s)      " + ", ".join(f"{k} {num(v, '.1f')}" for k, v in d["ages_s"].items()),
    ]
    if d["blocks"]:
        lines.append("  blocks entry:")
        lines += [f"    - {b}" for b in d["blocks"]]
    warn_only = [w for w in d["warnings"] if w not in d["blocks"]]
    if warn_only:
        lines.append("  warnings:")
        lines += [f"    - {w}" for w in warn_only]
    if d.get("notes"):
        lines.append("  not checked:")
        lines += [f"    - {n}" for n in d["notes"]]
    return "\n".join(lines)
