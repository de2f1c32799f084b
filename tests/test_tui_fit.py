"""80×24: parts and columns drop by priority; text is never cut inside a word (property tests)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.models import FeedStatus
from core.ui_port import LinkState, UiInfo
from tui.fit import ELLIPSIS, Part, clip_words, fit_columns, fit_line
from tui.panels import fit_table, position_title, topbar

words = st.lists(st.text(alphabet="abcdefghij0123456789.@:", min_size=1, max_size=12),
                 min_size=1, max_size=12)


@given(words, st.integers(min_value=1, max_value=80))
def test_clip_words_fits_and_cuts_only_between_words(ws: list[str], width: int) -> None:
    text = " ".join(ws)
    out = clip_words(text, width)
    assert len(out) <= width
    if out == text:
        return
    assert out.endswith(ELLIPSIS)
    kept = out[:-1].split()
    if len(kept) > 1 or (kept and kept[0] == ws[0]):
        assert kept == ws[: len(kept)]  # whole words, in order
    else:  # only a first word longer than the room is ever cut inside
        assert len(ws[0]) >= width - 1 and (not kept or ws[0].startswith(kept[0]))


@given(st.lists(st.tuples(st.text(alphabet="xyz ", min_size=1, max_size=15), st.integers(0, 4)),
                min_size=1, max_size=8), st.integers(min_value=10, max_value=120))
def test_fit_line_drops_the_least_important_first(parts: list[tuple[str, int]], width: int) -> None:
    ps = [Part(t, "", p) for t, p in parts]
    out = fit_line(ps, width).plain
    assert len(out) <= width
    kept = [p for p in ps if p.text in out]
    if sum(len(p.text) for p in ps if p.priority == 0) <= width:
        assert all(p.text in out for p in ps if p.priority == 0)
    dropped = [p for p in ps if p.text not in out]
    if dropped and kept:
        assert max(p.priority for p in dropped) >= min(p.priority for p in kept)


def test_fit_columns_keeps_priority_zero_and_table_order() -> None:
    assert fit_columns([8, 15, 30], [1, 2, 0], 100) == [0, 1, 2]
    assert fit_columns([8, 15, 30], [1, 2, 0], 45) == [0, 2]  # the kind goes first
    assert fit_columns([8, 15, 30], [1, 2, 0], 20) == [2]
    names, rows = fit_table(("time", "kind", "what"), [("00:44:05", "guard_block",
                                                         "guard block (entry): spread 12 bps > 10 bps")],
                            (1, 2, 0), 40, flex=2)
    assert names == ["time", "what"] and rows[0][1] == "guard block (entry): spread…"


def test_topbar_at_80_columns_keeps_the_state_and_drops_ages_and_time() -> None:
    feeds = {n: FeedStatus(feed=n, state="live", ts=0, last_msg_age_s=a)
             for n, a in (("binance", 0.0), ("bybit", 1.2), ("okx", 9.0))}
    info = UiInfo(venue="drift", cluster="mainnet", delegate=False, label="")
    status = {"trading_reason": "kill switch (UI): flatten pending on the venue"}
    wide = topbar(info, None, status, "halted", False, feeds, 1_741_565_100_000, 160).plain
    assert "binance 0.0s" in wide and "UTC" in wide and "OWNER KEY" in wide
    narrow = topbar(info, LinkState(connected=False, text="x"), status, "halted", False, feeds,
                    1_741_565_100_000, 80).plain
    assert len(narrow) <= 80
    assert narrow.startswith(" LINK LOST  DRIFT mainnet ") and " HALTED " in narrow
    assert "UTC" not in narrow and "binance 0.0s" not in narrow
    assert position_title({"equity": 10007.23, "day_pnl_pct": 0.07}, 32) == "pos · eq 10,007"
