"""Recording readers: format sniffing, counts, bad input, truncation, own-format round trip."""

from __future__ import annotations

import gzip
import os
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from feeds.replay import Frame, Recording, RecordingError, RecordingWriter, open_recording


def kinds(rec: Recording) -> tuple[Counter[tuple[str, str]], list[Frame]]:
    frames = list(rec.frames())
    return Counter((f.kind, f.venue) for f in frames), frames


# ------------------------------------------------------------------------------ the three formats
def test_hftbacktest_gzip(btc_file: Path) -> None:
    rec = open_recording(btc_file)
    assert (rec.format, rec.compression) == ("hftbacktest", "gzip")
    c, frames = kinds(rec)
    assert c == {("recv", "binance"): 93_953, ("http", "binance"): 1}
    snap = next(f for f in frames if f.kind == "http")
    assert snap.line == 55 and snap.url == "" and snap.data.startswith(b'{"lastUpdateId":5123107852948')
    first = frames[0]
    assert first.ts_ns == 1723161255030314667 and first.line == 1
    assert first.data.startswith(b'{"stream":"btcusdt@depth@0ms"') and first.data.endswith(b"}}")
    assert sum(b'"btcusdt@trade"' in f.data[:30] for f in frames) == 21_313
    assert sum(b'"btcusdt@bookTicker"' in f.data[:30] for f in frames) == 66_089
    assert sum(b'"btcusdt@depth@0ms"' in f.data[:30] for f in frames) == 6_551
    s = rec.stats
    assert (s.lines, s.frames, s.bad_lines, s.truncated) == (93_954, 93_954, 0, False)


@pytest.mark.parametrize(
    ("name", "venue", "expected"),
    [
        ("BINANCE_FUTURES", "binance", {"recv": 1535, "http": 5, "connect": 1}),
        ("BYBIT", "bybit", {"recv": 3227, "send": 24, "http": 2, "connect": 2}),
        ("OKX", "okx", {"recv": 410, "http": 25, "send": 3, "connect": 1}),
    ],
)
def test_cryptofeed_zstd(data_dir: Path, name: str, venue: str, expected: dict[str, int]) -> None:
    path = data_dir / "cryptofeed" / f"{name}.jsonl.zst"
    rec = open_recording(path)
    assert (rec.format, rec.compression) == ("cryptofeed", "zstd")
    assert rec.header["exchange"] == name
    c, frames = kinds(rec)
    assert c == {(k, venue): n for k, n in expected.items()}
    assert rec.stats.bad_lines == 0 and not rec.stats.truncated
    assert all(f.conn.startswith(name + ".") for f in frames)
    http = next(f for f in frames if f.kind == "http")
    assert http.url.startswith("https://") and http.data.startswith(b"{")
    conn = next(f for f in frames if f.kind == "connect")
    assert conn.url.startswith("wss://") and conn.data == b""
    assert all(f.ts_ns % 1000 == 0 and f.ts_ns > 1_600_000_000 * 10**9 for f in frames)


def test_own_format_round_trip_byte_for_byte(tmp_path: Path, btc_file: Path) -> None:
    src = list(open_recording(btc_file).frames())[:3000]
    extra = [
        '{"x":"caf\u00e9 \\u00e9 \\\\ \\" \\n","y":[1,2]}'.encode(),
        b"\x00\xff\xfebinary\n\r\t",  # not UTF-8: stored as base64
        b"",
    ]
    for ext in ("jsonl", "jsonl.gz", "jsonl.zst"):
        path = tmp_path / f"rec.{ext}"
        with RecordingWriter(path, meta={"app": "test"}, flush_every=100) as w:
            w.write_connect("binance.ws.1", "wss://fstream.binance.com/stream", ts_ns=1)
            w.write_send("binance.ws.1", '{"method":"SUBSCRIBE"}', ts_ns=2)
            for f in src:
                if f.kind == "http":
                    w.write_http("binance.http.1", "https://fapi.binance.com/fapi/v1/depth", f.data, f.ts_ns)
                else:
                    w.write_recv("binance.ws.1", f.data, f.ts_ns)
            for i, d in enumerate(extra):
                w.write_recv("bybit.ws.2", d, ts_ns=10 + i)
            w.write_disconnect("binance.ws.1", "1006 abnormal", ts_ns=99)
        assert w.records == 3 + len(src) + len(extra)
        rec = open_recording(path)
        assert rec.format == "autotrader" and rec.header["app"] == "test"
        assert rec.compression == {"jsonl": "none", "jsonl.gz": "gzip", "jsonl.zst": "zstd"}[ext]
        out = list(rec.frames())
        assert rec.stats.bad_lines == 0 and not rec.stats.truncated
        assert len(out) == 3 + len(src) + len(extra)
        assert (out[0].kind, out[0].url, out[0].data, out[0].ts_ns) == (
            "connect",
            "wss://fstream.binance.com/stream",
            b"",
            1,
        )
        assert (out[1].kind, out[1].data) == ("send", b'{"method":"SUBSCRIBE"}')
        body = out[2 : 2 + len(src)]
        assert [f.data for f in body] == [f.data for f in src]
        assert [f.ts_ns for f in body] == [f.ts_ns for f in src]
        assert [f.kind for f in body] == [f.kind for f in src]
        assert {f.venue for f in body} == {"binance"}
        tail = out[2 + len(src) : -1]
        assert [f.data for f in tail] == extra and {f.venue for f in tail} == {"bybit"}
        assert (out[-1].kind, out[-1].data, out[-1].line) == ("disconnect", b"1006 abnormal", len(out) + 1)


def test_own_format_append_session(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.zst"
    for i in range(2):
        with RecordingWriter(path, append=True) as w:
            w.write_recv("okx.ws.1", f'{{"n":{i}}}', ts_ns=i)
    rec = open_recording(path)
    assert [f.data for f in rec.frames()] == [b'{"n":0}', b'{"n":1}']
    assert rec.stats.skipped == 1 and rec.stats.bad_lines == 0


# ------------------------------------------------------------------------------ bad input
def test_truncated_gzip_is_flagged_not_raised(tmp_path: Path, btc_file: Path) -> None:
    raw = btc_file.read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(raw[: len(raw) // 3])
    rec = open_recording(cut)
    frames = list(rec.frames())
    s = rec.stats
    assert s.truncated and 0 < len(frames) < 93_954
    assert s.truncated_line == len(frames) + 1 == s.lines + 1
    assert s.errors[-1][0] == s.truncated_line and "truncated" in s.errors[-1][1]
    full = list(open_recording(btc_file).frames())[: len(frames)]
    assert [f.data for f in frames] == [f.data for f in full]


def test_truncated_zstd_is_flagged(tmp_path: Path, data_dir: Path) -> None:
    raw = (data_dir / "cryptofeed" / "BYBIT.jsonl.zst").read_bytes()
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(raw[: len(raw) // 2])
    rec = open_recording(cut)
    n = sum(1 for _ in rec.frames())
    assert rec.stats.truncated and 0 < n < 3255 and rec.stats.truncated_line == rec.stats.lines + 1


def test_corrupt_gzip_mid_file_stops_with_truncated(tmp_path: Path, btc_file: Path) -> None:
    raw = bytearray(btc_file.read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 64] = os.urandom(64)
    bad = tmp_path / "corrupt.gz"
    bad.write_bytes(bytes(raw))
    rec = open_recording(bad)
    n = sum(1 for _ in rec.frames())
    assert rec.stats.truncated and 0 < n < 93_954


def test_garbage_lines_counted_and_skipped(tmp_path: Path, data_dir: Path) -> None:
    lines = (
        zstandard.ZstdDecompressor()
        .decompress((data_dir / "cryptofeed" / "OKX.jsonl.zst").read_bytes(), max_output_size=1 << 26)
        .split(b"\n")
    )
    assert lines[-1] == b""
    garbage = [
        b"\x00\x01garbage",
        b"{not json",
        b'{"t":"recv","conn":"OKX.ws.1","data":"{}"}',  # no ts
        b'{"t":"recv","ts":1.0,"data":"{}"}',  # no conn
        b'{"t":"http","ts":1.0,"conn":"OKX.http.1"}',  # no data
        b'{"t":"bogus","ts":1.0,"conn":"OKX.ws.1","data":""}',
        b'["t","recv"]',
        b'{"t":"recv","ts":"yesterday","conn":"OKX.ws.1","data":"{}"}',
        b"",  # blank: ignored, not bad
    ]
    mixed = [lines[0], lines[1], *garbage, *lines[2:]]
    path = tmp_path / "mixed.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(mixed)))
    rec = open_recording(path)
    frames = list(rec.frames())
    assert len(frames) == 439
    assert rec.stats.bad_lines == 8 and not rec.stats.truncated
    assert [e[0] for e in rec.stats.errors] == list(range(3, 11))
    assert frames[1].line == 12  # line numbers stay those of the file

    hft = [
        b'1723161255030314667 {"stream":"x@trade","data":{}}',
        b"garbage",
        b'12x {"a":1}',
        b"1723161255030314668 not-json",
        b'5 {"lastUpdateId":1}',
    ]
    p2 = tmp_path / "hft.txt"
    p2.write_bytes(b"\n".join(hft) + b"\n")
    rec2 = open_recording(p2)
    fr2 = list(rec2.frames())
    assert [(f.kind, f.line) for f in fr2] == [("recv", 1), ("http", 5)]
    assert rec2.stats.bad_lines == 3


def test_plain_file_cut_mid_line_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    with RecordingWriter(path) as w:
        for i in range(5):
            w.write_recv("bybit.ws.1", f'{{"i":{i}}}', ts_ns=i)
    raw = path.read_bytes()
    path.write_bytes(raw[:-7])
    rec = open_recording(path)
    assert len(list(rec.frames())) == 4
    assert rec.stats.truncated and rec.stats.truncated_line == 6 and rec.stats.bad_lines == 0


@pytest.mark.parametrize(
    ("content", "line", "why"),
    [
        (None, 0, "no such file"),
        (b"", 1, "empty"),
        (b"\x8f\x12\xa0" + bytes(range(256)) * 8, 1, "not a known recording format"),
        (b"hello world\n{}\n", 1, "not a known recording format"),
        (b'{"t":"header","format":"someone-else/9"}\n', 1, "not a known recording format"),
        (b'{"t":"recv","ts":1,"conn":"a.ws.1","data":"{}"}\n', 1, "not a known recording format"),
        (gzip.compress(b"x" * 1000, mtime=0)[:20], 1, "no complete first line"),
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 40, 1, "no complete first line"),
    ],
)
def test_unreadable_file_raises_naming_file_and_line(
    tmp_path: Path, content: bytes | None, line: int, why: str
) -> None:
    path = tmp_path / "bad.rec"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RecordingError) as ei:
        open_recording(path)
    err = ei.value
    assert err.path == str(path) and err.line == line
    assert str(err).startswith(f"{path}:{line}: ") and why in str(err)


def test_frames_is_repeatable_and_streams(btc_file: Path) -> None:
    rec = open_recording(btc_file)
    it = rec.frames()
    first = next(it)
    it.close()
    again = next(iter(rec.frames()))
    assert first == again and isinstance(first, Frame)
