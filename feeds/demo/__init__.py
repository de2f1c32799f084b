"""The bundled demo: a deterministic synthetic SOL market in each venue's wire format.

``generate_demo(path)`` writes an ``autotrader-rec/1`` recording (header ``"synthetic": true,
"label": "synthetic demo"``) that replays through the real Binance, Bybit and OKX codecs: a calm
up-trend, a chop around the session VWAP with reclaims the 1m CVD + VWAP signal fires on, a
liquidation cascade and a recovery. ``ensure_demo(cache_dir)`` generates it once per generator
version and seed and reuses it.
"""

from __future__ import annotations

from feeds.demo.cache import demo_filename, ensure_demo
from feeds.demo.generator import DEFAULT_START_MS, DEMO_VERSION, LABEL, DemoInfo, DemoPhase, generate_demo

__all__ = [
    "DEFAULT_START_MS",
    "DEMO_VERSION",
    "LABEL",
    "DemoInfo",
    "DemoPhase",
    "demo_filename",
    "ensure_demo",
    "generate_demo",
]
