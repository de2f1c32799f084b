"""Text renderers for the charts (pure: data in, ``rich.text.Text`` out, no widgets).

Every chart reads with NO_COLOR: shape and glyphs carry the meaning, colour only helps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from core.models import Bar, Liquidation
from core.ui_port import Cluster

BLOCKS = "▁▂▃▄▅▆▇█"
SHADES = " ░▒▓█"
BUCKET_BPS = 25.0


def compact(x: float | None, unit: str = "") -> str:
    """181234 -> '181k', 1.2e9 -> '1.20B'."""
    if x is None or not math.isfinite(x):
        return "-"
    a = abs(x)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            v = x / div
            return f"{v:.2f}{suffix}{unit}" if abs(v) < 10 else f"{v:.1f}{suffix}{unit}" if abs(v) < 100 \
                else f"{v:.0f}{suffix}{unit}"
    return f"{x:.0f}{unit}" if a >= 100 else f"{x:.2f}{unit}"


def age_text(ms: int) -> str:
    if 0 <= ms < 60_000:
        return f"{ms // 1000}s"
    m = max(0, ms) // 60_000
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m"


def sparkline(values: Sequence[float], width: int) -> str:
    """One row of block glyphs, the last ``width`` values (averaged down when there are more)."""
    if width <= 0 or not values:
        return ""
    vals = list(values)
    if len(vals) > width:
        step = len(vals) / width
        vals = [sum(vals[int(i * step):max(int(i * step) + 1, int((i + 1) * step))])
                / max(1, int((i + 1) * step) - int(i * step)) for i in range(width)]
    lo, hi = min(vals), max(vals)
    span = hi - lo
    return "".join(BLOCKS[3] if span <= 0 else BLOCKS[min(7, int((v - lo) / span * 7.999))] for v in vals)


def _two_row_spark(values: Sequence[float], width: int) -> tuple[str, str]:
    if not values:
        return "", ""
    vals = list(values)[-width:]
    lo, hi = min(vals), max(vals)
    span = hi - lo
    top, bottom = [], []
    for v in vals:
        lvl = 8 if span <= 0 else int((v - lo) / span * 15.999) + 1  # 1..16
        bottom.append(BLOCKS[min(lvl, 8) - 1])
        top.append(BLOCKS[lvl - 9] if lvl > 8 else " ")
    return "".join(top), "".join(bottom)


def price_chart(bars: Sequence[Bar], width: int, height: int) -> Text:
    """Closes (●, green up / red down) with the high-low range (│) and the session VWAP (─) per 1m
    bar, price labels on the right, and two rows of CVD below."""
    out = Text(no_wrap=True, overflow="crop")
    label_w = 9
    cols = max(1, width - label_w)
    rows = max(2, height - 3)
    data = list(bars)[-cols:]
    if not data:
        out.append("waiting for the first 1m bar…", style="dim")
        return out
    lo = min(min(b.low for b in data), min(b.vwap for b in data))
    hi = max(max(b.high for b in data), max(b.vwap for b in data))
    span = hi - lo or max(hi * 1e-4, 1e-9)

    def row_of(px: float) -> int:
        return min(rows - 1, max(0, round((hi - px) / span * (rows - 1))))

    grid = [[(" ", "")] * len(data) for _ in range(rows)]
    for c, b in enumerate(data):
        for r in range(row_of(b.high), row_of(b.low) + 1):
            grid[r][c] = ("│", "dim")
        grid[row_of(b.vwap)][c] = ("─", "yellow")
        up = b.close >= b.open
        grid[row_of(b.close)][c] = ("●", "green" if up else "red")
    last = data[-1]
    labels = {0: f"{hi:.2f}", rows - 1: f"{lo:.2f}", row_of(last.close): f"◀{last.close:.2f}"}
    for r in range(rows):
        for ch, style in grid[r]:
            out.append(ch, style=style)
        out.append(" " * (cols - len(data)))
        out.append(" " + labels.get(r, "").ljust(label_w - 1)[: label_w - 1],
                   style="bold" if r == row_of(last.close) else "dim")
        out.append("\n")
    top, bottom = _two_row_spark([b.cvd for b in data], cols)
    out.append(top.ljust(cols) + " CVD\n", style="cyan")
    out.append(bottom.ljust(cols) + f" {compact(last.cvd)}\n", style="cyan")
    out.append(f"● close  ─ VWAP {last.vwap:.2f}  │ range  CVD {compact(last.cvd)} SOL", style="dim")
    return out


def heatmap(
    liqs: Sequence[Liquidation],
    mid: float | None,
    now_ms: int,
    start_ms: int,
    width: int,
    height: int,
    window_ms: int = 6 * 3600 * 1000,
) -> Text:
    """Liquidations in 25 bps price buckets around ``mid`` (rows) × time (columns, from
    ``max(start_ms, now - window)`` to now), shaded by notional; the current price row is marked ◀."""
    out = Text(no_wrap=True, overflow="crop")
    if mid is None or mid <= 0:
        out.append("waiting for the book…", style="dim")
        return out
    label_w = 9
    cols = max(1, width - label_w)
    rows = max(3, height - 2)
    if rows % 2 == 0:
        rows -= 1
    half = rows // 2
    t0 = max(start_ms, now_ms - window_ms)
    span_ms = max(60_000, now_ms - t0)
    bin_ms = span_ms / cols
    step = mid * BUCKET_BPS / 1e4
    cells = [[0.0] * cols for _ in range(rows)]
    for liq in liqs:
        if liq.ts < t0 or liq.ts > now_ms:
            continue
        k = round((liq.price - mid) / step)
        r = half - max(-half, min(half, k))
        c = min(cols - 1, int((liq.ts - t0) / bin_ms))
        cells[r][c] += liq.notional
    peak = max((v for row in cells for v in row), default=0.0)
    for r in range(rows):
        here = r == half
        for c in range(cols):
            v = cells[r][c]
            if v <= 0:
                out.append("─" if here else " ", style="dim" if here else "")
            else:
                lvl = min(4, 1 + int(v / peak * 3.999)) if peak > 0 else 1
                out.append(SHADES[lvl], style=("red", "red", "bold red", "bold red", "bold red")[lvl])
        px = mid + (half - r) * step
        edge = "↑" if r == 0 else "↓" if r == rows - 1 else " "
        label = f"◀{mid:.2f}" if here else f"{edge}{px:.2f}"
        out.append(" " + label[: label_w - 1], style="bold reverse" if here else "dim")
        out.append("\n")
    out.append(f"-{age_text(now_ms - t0)}".ljust(cols // 2) + "now".rjust(cols - cols // 2), style="dim")
    out.append("\n")
    cell = f"{BUCKET_BPS:g} bps × {age_text(int(bin_ms))}"
    if peak > 0:
        out.append(f"░▒▓█ notional · █ {compact(peak)} USD · cell {cell}", style="dim")
    else:
        out.append(f"no liquidations in the last {age_text(now_ms - t0)} · cell {cell}", style="dim")
    return out


def clusters_text(clusters: Sequence[Cluster], mid: float | None, seen: bool, height: int) -> Text:
    """Drift liq-map clusters nearest the price first: price, notional, distance."""
    out = Text(no_wrap=True, overflow="crop")
    if not seen:
        out.append("no Drift liq-map\n(onchain:drift:liq_map)", style="dim")
        return out
    if not clusters:
        out.append("liq-map: no clusters", style="dim")
        return out
    ref = mid or 0.0
    ranked = sorted(clusters, key=lambda c: abs(c[0] - ref))[: max(1, height)]
    for px, notional in ranked:
        dist = (px - ref) / ref * 100 if ref else 0.0
        arrow = "▲" if px >= ref else "▼"
        out.append(f"{arrow}{px:8.2f} {compact(notional):>6} {dist:+5.1f}%\n",
                   style="red" if abs(dist) < 2 else "")
    return out
