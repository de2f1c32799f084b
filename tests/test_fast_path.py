"""The compiled hot path (``feeds/binance/_fast.pyx``) against the pure-Python path: identical
outputs, byte for byte, on the shared recordings and the demo session; identical events and
counters frame by frame on mutated frames; the compiled book against :class:`core.book.OrderBook`
on random diffs."""

from __future__ import annotations

import asyncio
import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotrader.backtest import Backtest
from autotrader.config import validate
from autotrader.replay_cmd import run_replay
from core.book import OrderBook
from feeds.binance import fast
from feeds.binance.codec import BinanceCodec

pytestmark = pytest.mark.skipif(fast.compiled is None, reason="compiled hot path not built")


@pytest.fixture
def pure(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside: codecs built now take the pure-Python path."""
    monkeypatch.setattr(fast, "compiled", None)
    yield


def _replay(path: Path, emit: str) -> tuple[bytes, int]:
    out = io.BytesIO()
    code = run_replay(validate({}), path, emit, symbol=None, progress=False, out=out)
    return out.getvalue(), code


def _both(monkeypatch: pytest.MonkeyPatch, fn):  # type: ignore[no-untyped-def]
    compiled = fn()
    with monkeypatch.context() as m:
        m.setattr(fast, "compiled", None)
        python = fn()
    return compiled, python


@pytest.fixture(scope="module")
def cryptofeed_binance(data_dir: Path) -> Path:
    return data_dir / "cryptofeed" / "BINANCE_FUTURES.jsonl.zst"


@pytest.mark.parametrize("emit", ["book", "bars", "trades", "guards"])
def test_replay_outputs_identical_on_the_btc_recording(btc_file: Path, emit: str,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    compiled, python = _both(monkeypatch, lambda: _replay(btc_file, emit))
    assert compiled == python
    assert compiled[1] == 0 and compiled[0].count(b"\n") > 5
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0] == err[1]  # the codec counters (stderr summary) too


@pytest.mark.parametrize("emit", ["book", "bars", "trades"])
def test_replay_outputs_identical_on_cryptofeed_binance(cryptofeed_binance: Path, emit: str,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    compiled, python = _both(monkeypatch, lambda: _replay(cryptofeed_binance, emit))
    assert compiled == python and compiled[0]
    err = capsys.readouterr().err.splitlines()
    assert err[0] == err[1]


def _backtest(path: Path, tree: dict[str, object]) -> bytes:
    r = asyncio.run(Backtest(validate(tree), path).run())
    r.wall_s = r.events_per_s = 0.0
    return msgspec.json.encode(r)


def test_backtest_reports_identical(btc_file: Path, demo_recording: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for path, tree in ((btc_file, {}), (demo_recording, {"guards": {"atr_period": 3}})):
        compiled, python = _both(monkeypatch, lambda p=path, t=tree: _backtest(p, t))
        assert compiled == python


def _frames(btc_file: Path) -> list[bytes]:
    with gzip.open(btc_file, "rb") as fh:
        return [line.rstrip(b"\n").partition(b" ")[2] for _, line in zip(range(4000), fh, strict=False)]


@pytest.fixture(scope="module")
def sample_frames(btc_file: Path) -> list[bytes]:
    return _frames(btc_file)


def _run_codec(codec: BinanceCodec, frames: list[bytes | str]) -> tuple[list[object], dict[str, object]]:
    events: list[object] = []
    for i, f in enumerate(frames):
        events.append(codec.feed_ws(f, i))
    return events, codec.stats.as_dict()


def _mutations(frame: bytes, rnd: st.DrawFn) -> bytes:
    kind = rnd(st.sampled_from(["byte", "delete", "insert", "swap_value", "unicode", "none"]))
    if kind == "none" or not frame:
        return frame
    i = rnd(st.integers(0, len(frame) - 1))
    if kind == "byte":
        return frame[:i] + bytes([rnd(st.integers(0, 255))]) + frame[i + 1:]
    if kind == "delete":
        return frame[:i] + frame[i + 1:]
    if kind == "insert":
        junk = rnd(st.sampled_from([b" ", b"\\", b'"', b"0", b".", b",", b"-", b"e", b"nan"]))
        return frame[:i] + junk + frame[i:]
    if kind == "unicode":
        return frame[:i] + "é".encode() + frame[i:]
    old = rnd(st.sampled_from([b'"61800.20"', b'"0.000"', b"false", b'"MARKET"', b"5266583935",
                               b'"BTCUSDT"']))
    new = rnd(st.sampled_from([b'"1e3"', b"61800.2", b'" 1.5"', b'"1_0.5"', b"null", b"true", b'"inf"',
                               b'"00.5"', b'"-1.5"', b"1.0", b'"ETHUSDT"', b'"INSURANCE"', b"-5", b"01"]))
    return frame.replace(old, new, 1)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_codec_events_and_counters_identical_on_mutated_frames(sample_frames: list[bytes],
                                                               data: st.DataObject) -> None:
    picks = data.draw(st.lists(st.integers(0, len(sample_frames) - 1), min_size=20, max_size=200))
    frames: list[bytes | str] = []
    for i in sorted(picks):
        f = _mutations(sample_frames[i], data.draw)
        frames.append(f.decode("utf-8", "replace") if data.draw(st.booleans()) else f)
    symbols = data.draw(st.sampled_from([None, ["BTCUSDT"], ["ETHUSDT"]]))
    drop = data.draw(st.booleans())
    compiled = BinanceCodec(symbols, compiled=True)
    python = BinanceCodec(symbols, compiled=False)
    compiled.drop_book_ticker = python.drop_book_ticker = drop
    assert compiled.fast is not None and python.fast is None
    snap = next(f for f in sample_frames if f.startswith(b'{"lastUpdateId"'))
    compiled.feed_http("", snap, 0)
    python.feed_http("", snap, 0)
    assert _run_codec(compiled, frames) == _run_codec(python, frames)


prices = st.integers(1, 400).map(lambda i: f"{100 + i / 10:.2f}")
qtys = st.sampled_from(["0", "0.000", "0.001", "1.5", "2.25", "10", "123.456"])
levels = st.lists(st.tuples(prices, qtys), max_size=12)
Side = list[tuple[str, str]]


@settings(max_examples=150, deadline=None)
@given(snapshot=st.tuples(levels, levels), diffs=st.lists(st.tuples(levels, levels), max_size=300))
def test_compiled_book_equals_python_book(snapshot: tuple[Side, Side],
                                          diffs: list[tuple[Side, Side]]) -> None:
    assert fast.compiled is not None
    a, b = OrderBook(), fast.compiled.Book()
    a.load(*snapshot)
    b.load(*snapshot)
    for i, (bids, asks) in enumerate(diffs):
        a.apply(bids, asks)
        b.apply(bids, asks)
        assert a.top("x", "y", i, i) == b.top("x", "y", i, i)
    assert a.bids() == b.bids() and a.asks(5) == b.asks(5) and len(a) == len(b)
    assert (a.best_bid(), a.best_ask(), a.mid(), a.spread_bps()) == (b.best_bid(), b.best_ask(), b.mid(),
                                                                     b.spread_bps())
    assert a.depth_usd(25) == b.depth_usd(25)


def test_both_books_refuse_non_finite_levels() -> None:
    assert fast.compiled is not None
    for book in (OrderBook(), fast.compiled.Book()):
        with pytest.raises(ValueError):
            book.apply([("nan", "1")], [])
        with pytest.raises(ValueError):
            book.apply([], [("100", "inf")])


def test_pure_python_switch(pure: None) -> None:
    assert BinanceCodec().fast is None


trades = st.lists(st.tuples(st.integers(-3, 200), st.sampled_from([99.5, 100.0, 100.25, 101.0]),
                            st.sampled_from([0.0, 0.001, 1.5, 3.0]), st.booleans(), st.booleans()),
                  max_size=300)


@settings(max_examples=150, deadline=None)
@given(seq=trades, start=st.sampled_from([0, 86_400_000 * 19_943 - 90_000]))
def test_compiled_bars_equal_python_bars(seq: list[tuple[int, float, float, bool, bool]], start: int) -> None:
    """Same bars from the compiled builder and core.bars.BarBuilder: out-of-order prints, day
    boundaries, flushes in the middle."""
    from core.bars import BarBuilder

    assert fast.compiled is not None
    a, b = BarBuilder("X"), fast.compiled.Bars("X")
    for step, px, qty, sell, flush in seq:
        ts = start + step * 20_000
        assert a.add(ts, px, qty, sell) == b.add(ts, px, qty, sell)
        assert a.current() == b.current()
        if flush:
            assert a.flush() == b.flush()
    assert a.late == b.late and a.flush() == b.flush()
