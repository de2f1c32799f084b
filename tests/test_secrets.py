"""No secret (auth headers, API keys inside URLs, passphrases) reaches a recording, a log line, an
error message or ``config show``; recordings and the UI log are 0600 in 0700 directories."""

from __future__ import annotations

import asyncio
import io
import logging
import stat
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from autotrader.cli import app
from autotrader.config import validate
from autotrader.logs import JsonFormatter, redact, register_secrets
from core.bus import Bus, Topics
from core.config_schema import to_dict
from core.models import BookTop
from core.secrets import MASK, Redactor, redact_tree, redact_url, scrub, tree_secrets, url_secrets
from feeds.pipeline import MarketPipeline, drive
from feeds.record import run_record
from feeds.replay.readers import open_recording
from tests.transport_harness import fast_options, start_fake

HELIUS_KEY = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
ALCHEMY_KEY = "AbCdEf123456GhIjKl7890MnOp"
BASIC_PASS = "S3cretPassw0rd"
AUTH_TOKEN = "hel1us-webhook-t0ken-value"
SECRETS = [HELIUS_KEY, ALCHEMY_KEY, BASIC_PASS, AUTH_TOKEN]


def test_redact_url_forms() -> None:
    assert redact_url(f"https://mainnet.helius-rpc.com/?api-key={HELIUS_KEY}") == (
        f"https://mainnet.helius-rpc.com/?api-key={MASK}")
    assert redact_url(f"https://solana-mainnet.g.alchemy.com/v2/{ALCHEMY_KEY}") == (
        f"https://solana-mainnet.g.alchemy.com/v2/{MASK}")
    assert redact_url(f"http://me:{BASIC_PASS}@127.0.0.1:8080/x") == f"http://{MASK}@127.0.0.1:8080/x"
    assert redact_url(f"wss://rpc.example/{HELIUS_KEY}/ws?token=abc&commitment=confirmed") == (
        f"wss://rpc.example/{MASK}/ws?token={MASK}&commitment=confirmed")
    public = "https://fapi.binance.com/fapi/v1/depth?symbol=SOLUSDT&limit=1000"
    assert redact_url(public) == public  # replay routes REST bodies by these URLs
    okx = "https://www.okx.com/api/v5/public/instruments?instType=SWAP&instId=SOL-USDC-SWAP"
    assert redact_url(okx) == okx
    assert redact_url("not a url") == "not a url" and url_secrets("nope") == []
    assert set(url_secrets(f"http://u:{BASIC_PASS}@h/v2/{ALCHEMY_KEY}?apiKey=k1234")) == {
        "u", BASIC_PASS, ALCHEMY_KEY, "k1234"}


key_text = st.text(alphabet="abcdefABCDEF0123456789-_", min_size=20, max_size=48).filter(
    lambda s: any(c.isdigit() for c in s) and any(c.isalpha() for c in s))


@given(key=key_text, form=st.sampled_from([
    "https://rpc.example.com/?api-key={k}", "https://rpc.example.com/?foo=1&apikey={k}&x=2",
    "https://rpc.example.com/v2/{k}", "https://x.solana-mainnet.quiknode.pro/{k}/",
    "wss://rpc.example.com/{k}?commitment=confirmed", "https://user:{k}@rpc.example.com/",
    "https://rpc.example.com/?token={k}#frag"]))
def test_no_url_form_leaks_its_key(key: str, form: str) -> None:
    url = form.format(k=key)
    assert key not in redact_url(url)
    assert key in url_secrets(url)
    assert key not in scrub(f"ClientError: 403, url='{url}' ({key})", url)


def _secret_tree(base: dict[str, object] | None = None) -> dict[str, object]:
    tree: dict[str, object] = dict(base or {})
    venues = dict(tree.get("venues", {}))  # type: ignore[call-overload]
    venues["drift"] = {"rpc_url": f"https://mainnet.helius-rpc.com/?api-key={HELIUS_KEY}",
                       "ws_url": f"wss://mainnet.helius-rpc.com/?api-key={HELIUS_KEY}"}
    venues["helius"] = {"listen": "127.0.0.1:8787", "auth_header": f"Bearer {AUTH_TOKEN}"}
    tree["venues"] = venues
    tree["liqmap"] = {"rpc_url": f"https://solana-mainnet.g.alchemy.com/v2/{ALCHEMY_KEY}"}
    return tree


def test_tree_secrets_and_redact_tree() -> None:
    cfg = validate(_secret_tree())
    tree = to_dict(cfg)
    found = tree_secrets(tree)
    assert {HELIUS_KEY, ALCHEMY_KEY, AUTH_TOKEN, f"Bearer {AUTH_TOKEN}"} <= set(found)
    shown = repr(redact_tree(tree))
    assert not any(s in shown for s in SECRETS)
    assert "mainnet.helius-rpc.com" in shown  # the host is still there to recognise


def test_log_lines_and_error_messages_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTRADER_PASSPHRASE", "correct horse battery staple")
    register_secrets(validate(_secret_tree()))
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test_secrets")
    log.addHandler(handler)
    try:
        log.error("rpc failed at https://mainnet.helius-rpc.com/?api-key=%s with %s", HELIUS_KEY,
                  f"Bearer {AUTH_TOKEN}", extra={"data": {"url": f"https://a/v2/{ALCHEMY_KEY}"}})
        try:
            raise RuntimeError("passphrase was correct horse battery staple")
        except RuntimeError:
            log.exception("boom")
    finally:
        log.removeHandler(handler)
    text = buf.getvalue()
    assert text.count(MASK) >= 4
    assert not any(s in text for s in [*SECRETS, "correct horse battery staple"]), text
    assert redact(f"x {AUTH_TOKEN} y") == f"x {MASK} y"
    assert Redactor(["ab"])("ab") == "ab"  # too short to mask meaningfully


def test_config_show_masks_and_names_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(f'[venues.helius]\nlisten = "127.0.0.1:8787"\nauth_header = "Bearer {AUTH_TOKEN}"\n')
    monkeypatch.setenv("AUTOTRADER__VENUES__DRIFT__RPC_URL", f"https://mainnet.helius-rpc.com/?api-key={HELIUS_KEY}")
    runner = CliRunner()
    for args in (["config", "show"], ["config", "show", "--json"]):
        res = runner.invoke(app, [*args, "--config", str(conf), "--set",
                                  f"liqmap.rpc_url=https://x.example/v2/{ALCHEMY_KEY}", "--set",
                                  "feeds.okx_max_age_s=7"])
        assert res.exit_code == 0, res.output
        assert not any(s in res.output for s in SECRETS), res.output
    lines = {ln.split(" = ")[0]: ln for ln in runner.invoke(
        app, ["config", "show", "--config", str(conf), "--set", "feeds.okx_max_age_s=7"]).output.splitlines()}
    auth = lines["venues.helius.auth_header"]
    assert auth.endswith("# file") and MASK in auth
    assert lines["venues.drift.rpc_url"].endswith("# env AUTOTRADER__VENUES__DRIFT__RPC_URL")
    assert lines["feeds.okx_max_age_s"].startswith("feeds.okx_max_age_s = 7.0")
    assert lines["feeds.okx_max_age_s"].endswith("# --set")
    assert lines["market.binance_symbol"].endswith("# default")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


async def test_a_recording_made_with_secrets_in_the_config_contains_none(tmp_path: Path) -> None:
    fx = await start_fake()
    try:
        tree = fx.config_tree()
        rest = str(tree["venues"]["binance"]["rest_url"])  # type: ignore[index]
        tree["venues"]["binance"]["rest_url"] = rest.replace("://", f"://apiuser:{BASIC_PASS}@")  # type: ignore[index]
        cfg = validate(_secret_tree(tree))
        bus = Bus()
        tops: list[BookTop] = []
        bus.on(Topics.BOOK, tops.append)
        stop = asyncio.Event()

        async def enough() -> None:
            while len(tops) < 20:
                await asyncio.sleep(0.02)
            stop.set()

        watcher = asyncio.create_task(enough())
        out = tmp_path / "rec" / "nested"
        result = await asyncio.wait_for(
            run_record(cfg, out, None, stop, flush_interval_s=0.2, options=fast_options(), bus=bus), 60)
        watcher.cancel()
    finally:
        await fx.stop()
    assert result.frames > 20 and result.files
    assert _mode(out) == 0o700
    for f in result.files:
        assert _mode(f) == 0o600
        raw = zstandard.ZstdDecompressor().stream_reader(f.open("rb")).read()
        for s in [*SECRETS, "apiuser"]:
            assert s.encode() not in raw, (s, f)
        assert b"mainnet.helius-rpc.com" not in raw  # only the recorded venues' endpoints are in it
        recording = open_recording(f)
        assert (recording.header or {}).get("venues", {}).get("binance", {}).get("rest_url", "").startswith(
            "http://***@127.0.0.1")
    m = cfg.market
    pipe = MarketPipeline(Bus(), binance_symbol=m.binance_symbol, bybit_symbol=m.bybit_symbol,
                          okx_usdc_inst=m.okx_usdc_inst)
    replayed: list[BookTop] = []
    pipe.bus.on(Topics.BOOK, replayed.append)
    drive(pipe, open_recording(result.files[0]).frames())
    assert len(replayed) >= 20  # a redacted recording still replays (REST URLs route as before)


def test_the_ui_log_is_private(tmp_path: Path) -> None:
    from autotrader.ui_main import setup_file_logging

    logfile = tmp_path / "logs" / "deeper" / "ui.log"  # (exports: tests/test_file_modes.py)
    setup_file_logging("INFO", logfile)
    logging.getLogger().handlers.clear()
    assert _mode(logfile) == 0o600
    assert _mode(logfile.parent) == 0o700 and _mode(logfile.parent.parent) == 0o700
