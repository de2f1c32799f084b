"""What the top bar and the tables show (pure: state in, text and rows out), fitted to the width.

Every number carries its unit or its column says it; prices with 2 decimals, sizes as the venue
gave them (``:g``), USD amounts with thousands separators. At 80 columns the top bar drops its
parts by priority and the tables drop columns by priority; nothing is cut inside a word.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from core.engine_types import EngineEvent
from core.event_text import describe
from core.guard_config import GuardsConfig
from core.guards import evaluate
from core.market_state import MarketSnapshot
from core.models import FeedStatus
from core.sanity import dropped_by_venue, dropped_text
from core.ui_port import LinkState, UiInfo
from tui import render
from tui.fit import Part, clip_words, fit_columns, fit_line
from tui.state import UiModel


def num(x: object, decimals: int = 2) -> str:
    return f"{x:,.{decimals}f}" if isinstance(x, int | float) and math.isfinite(x) else "-"


def automation(model_on: bool | None, status: Mapping[str, Any]) -> bool | None:
    s = status.get("automation_on")
    return model_on if model_on is not None and s is None else (s if isinstance(s, bool) else model_on)


def topbar(info: UiInfo, link: LinkState | None, status: Mapping[str, Any], trading_state: str,
           auto: bool | None, feeds: Mapping[str, FeedStatus], now_ms: int, width: int) -> Text:
    """The top bar: venue, link, label, automation, trading state and why, feeds, event time."""
    parts: list[Part] = []
    if link is not None and not link.connected:
        parts.append(Part(" LINK LOST ", "bold white on red"))
    parts.append(Part(f" {info.venue.upper()} {info.cluster} ",
                      "bold white on red" if info.cluster == "mainnet" else "bold reverse"))
    dg = status.get("delegation")
    if isinstance(dg, dict) and dg.get("badge") and not dg.get("ok"):  # what the chain holds: not tradable
        parts.append(Part(f" {dg['badge']} ", "bold white on red"))
    if status.get("manual_sign"):
        parts.append(Part(" MANUAL SIGN ", "bold black on yellow", 1))
    elif isinstance(dg, dict) and dg.get("badge"):
        if dg.get("ok"):
            parts.append(Part(f" {dg['badge']} ", "bold", 1))
    elif info.delegate is not None:
        parts.append(Part(" delegate " if info.delegate else " OWNER KEY ",
                          "bold" if info.delegate else "bold red", 1))
    badge = venue_badge(status)
    if badge:  # a paused venue refuses even cancels: said before anything else, never dropped
        parts.append(Part(f" {badge} ", "bold white on red"))
    unknown = status.get("unknown_orders") or []
    if unknown:
        parts.append(Part(f" UNKNOWN {len(unknown)} ", "bold black on yellow"))
    label = info.label or str(status.get("label") or "")
    if label:
        parts.append(Part(f" {label} ", "bold black on yellow", 1))
    parts.append(Part(f" auto {'ON' if auto else 'off' if auto is not None else '?'} ",
                      "bold green" if auto else "dim", 1))
    state = trading_state.upper()
    parts.append(Part(f" {state} ", "bold white on red" if state == "HALTED" else
                      "bold yellow" if state == "REDUCING" else "bold green"))
    storage = status.get("storage") or {}
    why = str(status.get("trading_reason") or "") if state != "ACTIVE" else ""
    if storage.get("ok") is False:
        parts.append(Part(f" {storage.get('reason') or 'storage failing'} ", "bold white on red", 1))
    elif why:
        parts.append(Part(f" {why} ", "yellow", 1))
    dropped = dropped_text(dropped_by_venue((k, f.dropped) for k, f in feeds.items()))
    if dropped:  # bad venue input dropped and counted (core/sanity.py): before the feeds
        parts.append(Part(f" dropped: {dropped} ", "bold black on yellow", 1))
    full = [_feed(f, True) for f in (feeds[k] for k in sorted(feeds))]
    clock = [Part("  " + datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%H:%M:%S UTC"), "dim", 3)] \
        if now_ms else []
    line = [*parts, *(p for pair in full for p in pair), *clock]
    if sum(len(p.text) for p in line) > width:  # 80 columns: ages only where they matter
        line = [*parts, *(p for f in (feeds[k] for k in sorted(feeds)) for p in _feed(f, False)), *clock]
    return fit_line(line, width)


def venue_badge(status: Mapping[str, Any]) -> str:
    """The venue's state when it is not active: paused = nothing, not even a cancel, can be sent."""
    v = status.get("venue")
    state = str(v.get("state") if isinstance(v, dict) else status.get("venue_state") or "active")
    if state == "paused":
        if isinstance(v, dict) and v.get("cancels_allowed") is True:  # e.g. Velocity's program check
            return "VENUE PAUSED: no new orders (cancels still go out)"
        return "VENUE PAUSED: not even cancels can be sent"
    if state == "reduce_only":
        return "VENUE REDUCE-ONLY: no new entries"
    if state == "down":
        return "VENUE DOWN"
    return ""


def _feed(st: FeedStatus, with_age: bool) -> tuple[Part, Part]:
    live = st.state == "live"
    age = st.last_msg_age_s
    show_age = with_age or not live or (age is not None and age >= 5)
    age_txt = "" if not show_age else " -" if age is None else f" {age:.1f}s"
    return (Part(" ●" if live else " ○", "green" if live else "red", 2),
            Part(f"{st.feed}{age_txt}" + ("" if live else f" {st.state.upper()}"), "" if live else "red", 2))


# --------------------------------------------------------------------------- cards, guard line

CARD_CHECKS = {"spread": "spread", "depth": "depth", "funding": "funding", "basis": "basis",
               "liq": "liquidations"}


def card_levels(m: UiModel, cfg: GuardsConfig) -> dict[str, str]:
    """Guard levels of the card values, by the same evaluation the guards use."""
    b = m.book
    n, notional = m.liq_window(int(cfg.liq_window_s * 1000))
    snap = MarketSnapshot(
        ts=m.now_ms, best_bid=b.bid_px if b else None, best_ask=b.ask_px if b else None,
        spread_bps=b.spread_bps if b else None, bid_usd=b.bid_usd if b else None,
        ask_usd=b.ask_usd if b else None, funding_apr=m.funding_apr(),
        basis_bps=m.basis.basis_bps if m.basis else None, liq_events_5m=n, liq_notional_5m=notional)
    report = evaluate(snap, cfg, m.now_ms, "live")
    return {c.name: c.level for c in report.checks}


def cards(m: UiModel, cfg: GuardsConfig) -> dict[str, tuple[str, str]]:
    """Card id -> (value with its unit, guard level); ``-`` and ``stale`` when the input is missing."""
    lv = card_levels(m, cfg)
    b, ba = m.book, m.basis
    apr = m.funding_apr()  # every venue, OI-weighted
    oi = m.oi_total()  # every venue and instrument
    n, notional = m.liq_window(int(cfg.liq_window_s * 1000))
    values = {
        "spread": (("CROSSED" if not b.bid_px < b.ask_px else f"{b.spread_bps:.2f} bps") if b else "",
                   b is not None),
        "depth": (f"{render.compact(b.bid_usd)}/{render.compact(b.ask_usd)}" if b else "", b is not None),
        "funding": (f"{apr:.2f}%" if apr is not None else "", apr is not None),
        "basis": (f"{ba.basis_bps:+.2f} bps" if ba else "", ba is not None),
        "oi": (f"{render.compact(oi)} USD" if oi is not None else "", oi is not None),
        "liq": (f"{n} · {render.compact(notional)}", bool(m.feeds) or n > 0),
    }
    return {cid: (v if present else "-",
                  lv.get(CARD_CHECKS.get(cid, ""), "passing") if present else "stale")
            for cid, (v, present) in values.items()}


def guardline(m: UiModel, kill_note: str) -> Text:
    """The kill's note, the guard report and its reasons, the signal's state."""
    g = m.guard
    t = Text(no_wrap=False, overflow="ellipsis")
    if kill_note:
        t.append(kill_note + " ", style="bold white on red")
    if g is None:
        t.append(" GUARDS: waiting for the first report ", style="bold reverse")
    else:
        style = {"passing": "bold green", "warning": "bold yellow"}.get(g.status, "bold white on red")
        t.append(f" GUARDS {g.status.upper()} ", style=style)
        reasons = g.blocks or g.warnings
        if reasons:
            t.append(" blocks: " if g.blocks else " warnings: ", style="bold")
            t.append("; ".join(reasons))
        else:
            t.append(" nothing blocks an entry", style="dim")
    r = m.regime
    if r is not None:
        t.append("  signal " + ("armed" if r.on else f"off ({r.reason})"), style="dim")
    return t


# --------------------------------------------------------------------------- tables

Row = tuple[str, ...]


def _cells(rows: Sequence[Row], names: Sequence[str]) -> list[int]:
    return [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]


def fit_table(names: Sequence[str], rows: Sequence[Row], priority: Sequence[int], width: int,
              flex: int | None = None) -> tuple[list[str], list[Row]]:
    """The columns that fit ``width`` (the highest priority numbers dropped first) and the rows
    restricted to them; the ``flex`` column takes the room left, its text clipped at a word."""
    if width <= 0:
        return list(names), list(rows)
    widths = _cells(rows, names)
    if flex is not None:
        widths[flex] = min(widths[flex], 24)  # the flex column asks for 24 cells, gets what is left
    keep = fit_columns(widths, priority, width)
    if flex is not None and flex in keep:
        room = width - sum(widths[i] + 2 for i in keep if i != flex) - 2
        rows = [tuple(clip_words(c, max(room, 8)) if i == flex else c for i, c in enumerate(r)) for r in rows]
    return [names[i] for i in keep], [tuple(r[i] for i in keep) for r in rows]


ACTIVITY_COLUMNS = ("time", "kind", "what")
ACTIVITY_PRIORITY = (1, 2, 0)  # at 80 columns the kind goes first (the text says it; enter shows it)


def activity_rows(events: Sequence[EngineEvent]) -> list[Row]:
    return [(datetime.fromtimestamp(ev.ts / 1000, UTC).strftime("%H:%M:%S") if ev.ts > 0 else "-", ev.kind,
             describe(ev)) for ev in events]


POSITION_COLUMNS = ("market", "size", "entry", "uPnL", "rPnL")
POSITION_PRIORITY = (3, 0, 1, 1, 2)
POSITION_LABELLED = ("position", "uPnL", "rPnL")


def position_rows(status: Mapping[str, Any], market: str, labelled: bool = False) -> list[Row]:
    """One row; ``labelled`` (80 columns, no header row): each cell says what it is."""
    p = status.get("position") or {}
    size = p.get("size") or 0.0
    if labelled:
        what = f"{size:+g} @ {num(p.get('avg_price'))}" if size else "flat"
        return [(what, f"uPnL {num(status.get('unrealized_pnl'))}" if size else "",
                 f"rPnL {num(p.get('realized_pnl'))}")]
    if size:
        return [(market, f"{size:+g}", num(p.get("avg_price")), num(status.get("unrealized_pnl")),
                 num(p.get("realized_pnl")))]
    return [(market, "flat", "-", "-", num(p.get("realized_pnl")))]


def position_title(status: Mapping[str, Any], width: int) -> str:
    """The position panel's title, shortened to fit ``width`` (the border takes 6 cells)."""
    eq = status.get("equity")
    pnl = status.get("day_pnl_pct")
    has_eq, has_pnl = isinstance(eq, int | float), isinstance(pnl, int | float)
    day = [f"day {pnl:+.2f} %"] if has_pnl else []
    from_venue = str(status.get("equity_source") or "").startswith("drift")  # the account's collateral
    unknown = ["equity UNKNOWN"] if from_venue and not has_eq else []
    src = " (venue)" if from_venue else ""
    candidates = [
        " · ".join(["position", *([f"equity {eq:,.2f} USD{src}"] if has_eq else unknown), *day]),
        " · ".join(["pos", *([f"eq {eq:,.0f}{src}"] if has_eq else unknown),
                    *(d.replace(" %", "%") for d in day)]),
        " · ".join(["pos", *([f"eq {eq:,.0f}"] if has_eq else ["eq ?"] if unknown else [])]),
    ]
    return next((c for c in candidates if len(c) + 6 <= width), candidates[-1])


ORDER_COLUMNS = ("order", "side", "type", "size", "price")
ORDER_PRIORITY = (0, 1, 2, 0, 0)


def order_rows(status: Mapping[str, Any]) -> list[Row]:
    out: list[Row] = []
    for o in status.get("open_orders") or []:
        px = o.get("trigger_price") or o.get("price")
        tag = str(o.get("tag") or o.get("order_id") or "")
        kind = str(o.get("type", "")).replace("trigger_", "t-")
        role = tag.rsplit(":", 1)[-1] + (" UNKNOWN" if o.get("status") == "unknown" else "")
        out.append((role, str(o.get("side", "")), kind, f"{o.get('size', 0):g}", num(px)))
    return out
