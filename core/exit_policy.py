"""What happens to the venue's orders when the app leaves (quit, SIGTERM, SIGHUP, a dropped SSH
session): ``engine.on_exit`` (pure; the engine acts on it, the UI's quit dialog shows it).

* ``keep_protection`` (default): orders that add risk (entries) are cancelled — nobody would watch
  them; the reduce-only stop and take-profits stay on the venue and protect the position;
* ``cancel_all``: every order is cancelled (a position is then left WITHOUT a stop);
* ``flatten``: every order is cancelled and the position closed at market.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

ExitMode = Literal["keep_protection", "cancel_all", "flatten"]

MODE_TEXT: dict[str, str] = {
    "keep_protection": "entries are cancelled; the stop and take-profits stay on the venue",
    "cancel_all": "every order is cancelled; a position is left WITHOUT a stop",
    "flatten": "every order is cancelled and the position is closed at market",
}


def stays_on_exit(mode: str, reduce_only: bool) -> bool:
    """Whether an order stays on the venue when the app leaves in ``mode``."""
    return mode == "keep_protection" and reduce_only


def order_line(o: Mapping[str, Any]) -> str:
    """``sl1 sell trigger_market 10 @ 99`` from a status order (tag, side, type, size, price...)."""
    tag = str(o.get("tag") or o.get("order_id") or "?").rsplit(":", 1)[-1]
    px = o.get("trigger_price") or o.get("price")
    size = o.get("size")
    size_txt = f"{size:g}" if isinstance(size, int | float) else "?"
    px_txt = f" @ {px:g}" if isinstance(px, int | float) else ""
    ro = " reduce-only" if o.get("reduce_only") else ""
    return f"{tag} {o.get('side', '?')} {o.get('type', '?')} {size_txt}{px_txt}{ro}"


def split_orders(mode: str, orders: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]],
                                                                            list[Mapping[str, Any]]]:
    """(cancelled, kept) for the open orders of a status answer."""
    kept = [o for o in orders if stays_on_exit(mode, bool(o.get("reduce_only")))]
    cancelled = [o for o in orders if not stays_on_exit(mode, bool(o.get("reduce_only")))]
    return cancelled, kept


def exit_summary(mode: str, cancelled: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]],
                 position: float | None) -> str:
    """One line: what was cancelled, what stays on the venue, and the position."""
    parts = [f"on exit ({mode}): "]
    parts.append(f"{len(cancelled)} order(s) cancelled" if cancelled else "nothing to cancel")
    if kept:
        parts.append("; left on the venue: " + ", ".join(order_line(o) for o in kept))
    elif mode != "flatten":
        parts.append("; no order left on the venue")
    if position:
        has_stop = any(str(o.get("type", "")).startswith("trigger") for o in kept)
        parts.append(f"; position {position:+g}" + ("" if has_stop else " WITHOUT a stop"))
    elif mode == "flatten" or position == 0:
        parts.append("; flat")
    return "".join(parts)
