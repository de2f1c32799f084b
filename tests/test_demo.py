"""The bundled synthetic demo: replays cleanly through the real codecs and shows every phase."""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.bus import Bus, Topics
from core.models import Bar, Basis, BookTicker, BookTop, Funding, Liquidation, OpenInterest
from feeds.demo import LABEL, DemoInfo, ensure_demo, generate_demo
from feeds.demo.cache import demo_filename
from feeds.pipeline import MarketPipeline, drive
from feeds.replay import open_recording

MIN = 60_000


@dataclass
class Replayed:
    info: DemoInfo
    header: dict[str, object]
    pipeline: MarketPipeline
    bad_lines: int
    bars: list[Bar] = field(default_factory=list)
    tops: list[BookTop] = field(default_factory=list)
    tickers: list[BookTicker] = field(default_factory=list)
    liqs: list[Liquidation] = field(default_factory=list)
    funding: list[Funding] = field(default_factory=list)
    oi: list[OpenInterest] = field(default_factory=list)
    basis: list[Basis] = field(default_factory=list)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    info = generate_demo(tmp_path_factory.mktemp("demo") / "demo.jsonl.zst")
    rec = open_recording(info.path)
    bus = Bus()
    pipeline = MarketPipeline(bus)
    out = Replayed(info, rec.header, pipeline, 0)
    bus.on(Topics.BARS, out.bars.append)
    bus.on(Topics.BOOK, out.tops.append)
    bus.on(Topics.BOOK_TICKER, out.tickers.append)
    bus.on(Topics.LIQUIDATIONS, out.liqs.append)
    bus.on(Topics.FUNDING, out.funding.append)
    bus.on(Topics.OPEN_INTEREST, out.oi.append)
    bus.on(Topics.BASIS, out.basis.append)
    drive(pipeline, rec.frames())
    pipeline.flush()
    out.bad_lines = rec.stats.bad_lines
    return out


def signals(bars: list[Bar], n: int = 3) -> list[tuple[int, str]]:
    """1m CVD + VWAP reclaim: close crosses the VWAP vs the previous close, CVD monotone over n bars."""
    out: list[tuple[int, str]] = []
    for i in range(n, len(bars)):
        prev, bar = bars[i - 1], bars[i]
        cvd = [b.cvd for b in bars[i - n : i + 1]]
        rising = all(a < b for a, b in itertools.pairwise(cvd))
        falling = all(a > b for a, b in itertools.pairwise(cvd))
        if prev.close < prev.vwap and bar.close > bar.vwap and rising:
            out.append((i, "long"))
        elif prev.close > prev.vwap and bar.close < bar.vwap and falling:
            out.append((i, "short"))
    return out


def liqs_between(liqs: list[Liquidation], start: int, end: int) -> int:
    return sum(1 for x in liqs if start <= x.ts < end)


def phase(info: DemoInfo, name: str) -> tuple[int, int]:
    (p,) = [p for p in info.phases if p.name == name]
    return p.start_ms, p.end_ms


def test_header_marks_the_session_synthetic(demo: Replayed) -> None:
    assert demo.header["synthetic"] is True
    assert demo.header["label"] == LABEL == "synthetic demo"
    assert demo.header["seed"] == 7
    assert [p.name for p in demo.info.phases] == ["trend", "chop", "cascade", "recovery"]


def test_replays_through_the_codecs_without_errors(demo: Replayed) -> None:
    assert demo.bad_lines == 0
    for venue, codec in demo.pipeline.codecs.items():
        st = codec.stats
        assert (st.malformed, st.unknown, st.errors, st.gaps) == (0, 0, 0, 0), (venue, st.as_dict())
        assert st.decoded > 0, venue
    assert demo.pipeline.stats.resync_requests == 1  # only the initial "snapshot needed"
    assert demo.pipeline.codecs["binance"].books["SOLUSDT"].synced  # type: ignore[attr-defined]
    counts = demo.info.counts
    for kind in (
        "binance.aggTrade",
        "binance.depth",
        "binance.bookTicker",
        "binance.forceOrder",
        "bybit.ticker",
        "bybit.allLiquidation",
        "okx.trade",
        "binance.snapshot",
        "binance.markPrice",
        "binance.openInterest",
        "okx.open-interest",
        "okx.funding-rate",
        "okx.liquidation",
    ):
        assert counts.get(kind, 0) > 0, kind
    assert {x.venue for x in demo.liqs} == {"binance", "bybit", "okx"}
    assert {(f.venue, f.symbol) for f in demo.funding} == {
        ("binance", "SOLUSDT"), ("bybit", "SOLUSDT"), ("okx", "SOL-USDT-SWAP"), ("okx", "SOL-USDC-SWAP")}
    assert {(o.venue, o.symbol) for o in demo.oi} == {
        ("binance", "SOLUSDT"), ("bybit", "SOLUSDT"), ("okx", "SOL-USDT-SWAP"), ("okx", "SOL-USDC-SWAP")}
    assert all(o.oi_notional > 0 for o in demo.oi)
    assert len(demo.bars) == demo.info.minutes


def test_book_top_matches_book_ticker(demo: Replayed) -> None:
    by_id = {t.update_id: t for t in demo.tops}
    matched = 0
    for bt in demo.tickers:
        top = by_id.get(bt.update_id)
        if top is None:  # before the REST snapshot synced the book
            continue
        assert (top.bid_px, top.bid_qty, top.ask_px, top.ask_qty) == (
            bt.bid_px,
            bt.bid_qty,
            bt.ask_px,
            bt.ask_qty,
        )
        matched += 1
    assert matched >= len(demo.tickers) - 5


def test_phases_show_in_the_bars(demo: Replayed) -> None:
    info, bars = demo.info, demo.bars
    c0, c1 = phase(info, "cascade")
    before = [b for b in bars if b.timestamp < c0]
    during = [b for b in bars if c0 <= b.timestamp < c1]
    assert before[-1].close / before[0].open > 1.005  # the session opened with an up-trend
    drop = 1 - min(b.low for b in during) / max(b.high for b in bars if c0 - 3 * MIN <= b.timestamp < c0)
    assert drop >= 0.05
    # the cascade breaches the liquidation guard (> 10 in 5 min) and widens/thins the book
    assert max(liqs_between(demo.liqs, t, t + 5 * MIN) for t in range(c0, c1, 30_000)) > 10
    cascade_tops = [t for t in demo.tops if c0 <= t.timestamp < c1]
    assert max(t.spread_bps for t in cascade_tops) > 10
    assert min(min(t.bid_usd, t.ask_usd) for t in cascade_tops) < 50_000
    # outside it, liquidations stay sparse
    h0, h1 = phase(info, "chop")
    assert max(liqs_between(demo.liqs, t, t + 5 * MIN) for t in range(h0, h1 - 5 * MIN, 30_000)) <= 10


def test_vwap_reclaims_with_rising_cvd(demo: Replayed) -> None:
    found = signals(demo.bars)
    assert any(side == "long" for _, side in found)
    assert set(demo.info.planned_signals) <= set(found), found


def test_guards_can_pass_when_the_signal_fires(demo: Replayed) -> None:
    tops_ts = [t.timestamp for t in demo.tops]
    basis_ts = [b.ts for b in demo.basis]
    fund_ts = [f.ts for f in demo.funding]
    longs = [i for i, side in signals(demo.bars) if side == "long"]
    assert longs
    for i in longs:
        close = demo.bars[i].timestamp + MIN
        top = demo.tops[bisect.bisect_left(tops_ts, close) - 1]
        assert top.spread_bps <= 10
        assert min(top.bid_usd, top.ask_usd) >= 50_000
        assert liqs_between(demo.liqs, close - 5 * MIN, close) <= 10
        assert abs(demo.basis[bisect.bisect_left(basis_ts, close) - 1].basis_bps) <= 25
        assert abs(demo.funding[bisect.bisect_left(fund_ts, close) - 1].apr_pct) <= 300


def test_generation_is_deterministic(tmp_path: Path) -> None:
    paths = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        paths.append(generate_demo(tmp_path / sub / "demo.jsonl.zst", minutes=2).path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    other = generate_demo(tmp_path / "other.jsonl.zst", minutes=2, seed=8).path
    assert other.read_bytes() != paths[0].read_bytes()


def test_ensure_demo_generates_once_and_reuses(tmp_path: Path) -> None:
    path = ensure_demo(tmp_path, minutes=1)
    assert path == tmp_path / demo_filename(7, 1)
    stamp = path.stat().st_mtime_ns
    assert ensure_demo(tmp_path, minutes=1) == path
    assert path.stat().st_mtime_ns == stamp
    path.write_bytes(b"garbage\n")  # a damaged cache entry is regenerated
    assert ensure_demo(tmp_path, minutes=1) == path
    assert open_recording(path).header["label"] == LABEL
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
