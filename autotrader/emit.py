"""JSON shapes printed by ``autotrader replay --emit KIND`` (the command-line contract)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.bus import Topic, Topics
from core.guards import GUARDS
from core.guards import to_json as guards_json
from core.intents import INTENTS, Intent
from core.models import Bar, BookTop, Funding, Liquidation, OpenInterest, Trade


def bar_json(b: Bar) -> dict[str, Any]:
    return {
        "timestamp": b.timestamp,
        "open": b.open,
        "high": b.high,
        "low": b.low,
        "close": b.close,
        "buy_vol": b.buy_vol,
        "sell_vol": b.sell_vol,
        "cvd": b.cvd,
        "vwap": b.vwap,
        "trades": b.trades,
    }


def book_json(t: BookTop) -> dict[str, Any]:
    return {
        "timestamp": t.timestamp,
        "update_id": t.update_id,
        "bid_px": t.bid_px,
        "bid_qty": t.bid_qty,
        "ask_px": t.ask_px,
        "ask_qty": t.ask_qty,
        "spread_bps": t.spread_bps,
        "depth_10bps": {"bid_usd": t.bid_usd, "ask_usd": t.ask_usd},
    }


def trade_json(t: Trade) -> dict[str, Any]:
    return {
        "timestamp": t.ts,
        "venue": t.venue,
        "symbol": t.symbol,
        "price": t.price,
        "qty": t.qty,
        "side": str(t.side),
        "trade_id": t.trade_id,
    }


def liquidation_json(x: Liquidation) -> dict[str, Any]:
    return {
        "timestamp": x.ts,
        "venue": x.venue,
        "symbol": x.symbol,
        "side": x.side,
        "price": x.price,
        "qty": x.qty,
        "notional": x.notional,
    }


def funding_json(f: Funding) -> dict[str, Any]:
    return {
        "kind": "funding",
        "timestamp": f.ts,
        "venue": f.venue,
        "symbol": f.symbol,
        "rate": f.rate,
        "interval_hours": f.interval_hours,
        "apr_pct": f.apr_pct,
        "next_funding_ts": f.next_funding_ts,
        "mark_px": f.mark_px,
        "index_px": f.index_px,
    }


def open_interest_json(o: OpenInterest) -> dict[str, Any]:
    return {
        "kind": "open_interest",
        "timestamp": o.ts,
        "venue": o.venue,
        "symbol": o.symbol,
        "oi_base": o.oi_base,
        "oi_single": o.oi_single,
        "oi_notional": o.oi_notional,
    }


def intent_json(i: Intent) -> dict[str, Any]:
    return {
        "id": i.id,
        "timestamp": i.ts,
        "symbol": i.symbol,
        "side": i.side,
        "price": i.price,
        "size": i.size,
        "post_only": i.post_only,
        "sl": i.sl,
        "tps": [{"price": p, "fraction": f} for p, f in i.tps],
        "leverage": i.leverage,
        "atr_5m": i.atr,
        "risk_usd": i.risk_usd,
        "source": i.source,
        "reason": i.reason,
    }


# kind -> [(topic, serializer)]
EMITTERS: dict[str, list[tuple[Topic[Any], Callable[[Any], dict[str, Any]]]]] = {
    "bars": [(Topics.BARS, bar_json)],
    "book": [(Topics.BOOK, book_json)],
    "trades": [(Topics.TRADES, trade_json), (Topics.USDC_TRADES, trade_json)],
    "liquidations": [(Topics.LIQUIDATIONS, liquidation_json)],
    "funding": [(Topics.FUNDING, funding_json), (Topics.OPEN_INTEREST, open_interest_json)],
    "guards": [(GUARDS, guards_json)],
    "intents": [(INTENTS, intent_json)],
}
