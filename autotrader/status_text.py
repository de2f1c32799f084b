"""``autotrader status`` as text (the JSON form is the daemon's answer as it is)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.sanity import dropped_by_venue, dropped_text


def _ts(ms: object) -> str:
    if not isinstance(ms, int | float) or ms <= 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(x: object, fmt: str = ",.2f") -> str:
    return format(x, fmt) if isinstance(x, int | float) else "-"


def render_status(d: dict[str, Any]) -> str:
    e = d.get("engine") or {}
    label = f" ({d['label']})" if d.get("label") else ""
    lines = [f"autotrader — {d.get('data_source', '?')}{label}, event time {_ts(d.get('event_ts'))}"
             + ("  [replay finished]" if d.get("replay_done") else "")]
    state = str(e.get("trading_state", "?")).upper()
    kill = e.get("kill")
    kill_txt = ""
    if kill:
        conf = kill.get("confirmed")
        word = "confirmed" if conf else ("confirming" if conf is None else "NOT confirmed")
        kill_txt = f"  kill switch: {kill.get('reason')} ({word})"
    auto = "on" if e.get("automation_on") else "off"
    why = e.get("trading_reason") if state == "REDUCING" else ""
    lines.append(f"  trading    {state}{kill_txt}   automation {auto}" + (f"   ({why})" if why else ""))
    storage = e.get("storage") or {}
    if storage.get("ok") is False:
        pending = ", ".join(f"{k} {v}" for k, v in (storage.get("pending") or {}).items()) or "none"
        lines.append(f"  STORAGE    {storage.get('reason')}  (writes waiting in memory: {pending}; "
                     "retried every second; 'autotrader resume' once they succeed)")
    dropped = sum((storage.get("dropped") or {}).values())
    if dropped:
        lines.append(f"  storage    {dropped} activity row(s) lost to a full backlog while storage failed")
    venue = e.get("venue") or {}
    vtxt = f"{venue.get('name', '?')} {venue.get('state', e.get('venue_state', '?'))}"
    if venue.get("reason"):
        vtxt += f" ({venue['reason']})"
    if e.get("venue_error"):
        vtxt += f"  ERROR: {e['venue_error']}"
    pnl = e.get("day_pnl_pct")
    lines.append(f"  venue      {vtxt}   equity {_num(e.get('equity'))} USD   day PnL "
                 + (f"{pnl:+.2f} %" if isinstance(pnl, int | float) else "unknown"))
    if e.get("equity_source"):
        lines.append(f"  equity     {e['equity_source']}")
    dg = e.get("delegation")
    if isinstance(dg, dict):
        lines.append(f"  delegate   {dg.get('delegate') or 'none'} [{dg.get('badge')}]"
                     + (f"  {dg['reason']}" if dg.get("reason") else ""))
    for u in e.get("unknown_orders") or []:
        sigs = ", ".join(u.get("signatures") or []) or "-"
        lines.append(f"  UNKNOWN    {u.get('tag') or u.get('order_id')}: {u.get('side')} {u.get('type')} "
                     f"{u.get('size'):g} — signature {sigs}; no new risk until the chain says whether "
                     "it landed")
    pos = e.get("position") or {}
    size = pos.get("size")
    if isinstance(size, int | float) and size:
        lines.append(f"  position   {size:+g} SOL @ {_num(pos.get('avg_price'))} USD  unrealized "
                     f"{_num(e.get('unrealized_pnl'))} USD  realized {_num(pos.get('realized_pnl'))} USD  "
                     f"fees {_num(pos.get('fees'))} USD")
    else:
        lines.append("  position   flat")
    orders = e.get("open_orders") or []
    lines.append(f"  orders     {len(orders)} open")
    for o in orders:
        px = o.get("trigger_price") or o.get("price")
        ro = " reduce-only" if o.get("reduce_only") else ""
        lines.append(f"    {o.get('tag') or o.get('order_id')}: {o.get('side')} {o.get('type')} "
                     f"{o.get('size'):g} SOL @ {_num(px)} USD{ro} [{o.get('status')}]")
    for a in e.get("active") or []:
        lines.append(f"  intent     {a.get('intent_id')}: {a.get('side')} {a.get('phase')}, holds "
                     f"{a.get('position'):g} SOL, stop {_num(a.get('stop'))} USD")
    g = d.get("guards") or {}
    why = "; ".join(g.get("blocks") or []) or "; ".join(g.get("warnings") or [])
    lines.append(f"  guards     {str(g.get('status', '?')).upper()}" + (f"  {why}" if why else ""))
    feeds = d.get("feeds") or {}
    ftxt = " | ".join(f"{k} {v.get('state')} {_num(v.get('age_s'), '.1f')}s" for k, v in feeds.items())
    lines.append(f"  feeds      {ftxt or '-'}")
    dropped = dropped_text(dropped_by_venue((k, v.get("dropped") or {}) for k, v in feeds.items()))
    if dropped:
        lines.append(f"  dropped    {dropped}")
    if e.get("state_db"):
        lines.append(f"  state      {e['state_db']}")
    return "\n".join(lines)
