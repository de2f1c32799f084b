from __future__ import annotations

from pathlib import Path

import pytest

from autotrader.config import ConfigError, load_config, parse_set_option


def test_defaults_are_mainnet_market_data_endpoints(tmp_path: Path) -> None:
    cfg = load_config(None, environ={})
    assert cfg.venues.binance.ws_public_url == "wss://fstream.binance.com/public/stream"
    assert cfg.venues.binance.ws_market_url == "wss://fstream.binance.com/market/stream"
    assert cfg.venues.bybit.ws_url.startswith("wss://stream.bybit.com")
    assert cfg.market.binance_symbol == "SOLUSDT"
    assert cfg.venues.drift.cluster == "devnet"


def test_precedence_file_env_cli(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        '[market]\nbinance_symbol = "BTCUSDT"\nbybit_symbol = "BTCUSDT"\n[venues.binance]\nrest_url = "http://127.0.0.1:1"\n'
    )
    env = {
        "AUTOTRADER__VENUES__BINANCE__REST_URL": "http://127.0.0.1:2",
        "AUTOTRADER__FEEDS__OKX_MAX_AGE_S": "7",
    }
    cfg = load_config(f, environ=env, overrides={"market.bybit_symbol": "ETHUSDT"})
    assert cfg.market.binance_symbol == "BTCUSDT"  # file
    assert cfg.venues.binance.rest_url == "http://127.0.0.1:2"  # env beats file
    assert cfg.feeds.okx_max_age_s == 7.0  # env value parsed as a number
    assert cfg.market.bybit_symbol == "ETHUSDT"  # CLI beats all


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"AUTOTRADER__VENUES__BINANCE__RESTURL": "http://x"}, "venues.binance.resturl"),
        ({"AUTOTRADER__FEEDS__BINANCE_MAX_AGE_S": "-1"}, "feeds.binance_max_age_s"),
        ({"AUTOTRADER__FEEDS__BINANCE_MAX_AGE_S": "soon"}, "feeds.binance_max_age_s"),
        ({"AUTOTRADER__MARKET__BINANCE_SYMBOL": "sol/usdt"}, "market.binance_symbol"),
        ({"AUTOTRADER__VENUES__DRIFT__CLUSTER": "testnet"}, "venues.drift.cluster"),
        ({"AUTOTRADER__VENUES__OKX__WS_URL": "ftp://x"}, "venues.okx.ws_url"),
        ({"AUTOTRADER__NOPE__X": "1"}, "nope"),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ=env)
    assert err.value.key == key
    assert key in str(err.value)


def test_missing_explicit_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[market\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad, environ={})


def test_set_option_parsing() -> None:
    assert parse_set_option("feeds.okx_max_age_s=12.5") == ("feeds.okx_max_age_s", 12.5)
    assert parse_set_option("market.binance_symbol=BTCUSDT") == ("market.binance_symbol", "BTCUSDT")
    with pytest.raises(ConfigError):
        parse_set_option("novalue")


# ---------------------------------------------------------------------------- issue 16: cannot lie
@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("feeds.binance_max_age_s", float("inf"), "finite"),
        ("guards.max_age.book_s", float("inf"), "finite"),  # an infinite age would switch staleness off
        ("guards.max_age.bars_s", 1e9, "<= 86400"),
        ("paper.maker_fee_bps", float("nan"), "finite"),
        ("paper.taker_fee_bps", -1, ">= 0"),
        ("engine.taker_fee_bps", float("nan"), "finite"),
        ("engine.priority_fee_cap", float("inf"), "finite"),
        ("guards.max_leverage", 0.5, ">= 1"),
        ("guards.max_leverage", 21, "<= 20"),
        ("risk.leverage", 8, "above guards.max_leverage"),
        ("risk.risk_per_trade_pct", 25, "<= 10"),
        ("risk.sl_atr_mult", 0, "> 0"),
        ("risk.tp_atr_mult", [2.0, float("inf")], "finite"),
        ("guards.daily_stop.max_loss_pct", 150, "<= 100"),
        ("paper.maker_fee_bps", -4, "larger than the taker fee"),
        ("guards.obv_cliff.lookback_bars", 10**20, "out of range"),
        ("engine.replace_timeout_s", 0, "> 0"),
    ],
)
def test_numbers_are_finite_and_in_their_documented_range(key: str, value: object, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={}, overrides={key: value})
    assert err.value.key.startswith(key) and says in str(err.value), str(err.value)


def test_inf_and_nan_from_every_source(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[paper]\nmaker_fee_bps = nan\n")
    with pytest.raises(ConfigError, match=r"paper.maker_fee_bps.*finite"):
        load_config(f, environ={})
    with pytest.raises(ConfigError, match=r"guards.max_age.oi_s.*finite"):
        load_config(None, environ={"AUTOTRADER__GUARDS__MAX_AGE__OI_S": "inf"})
    with pytest.raises(ConfigError, match=r"engine.entry_ttl_s.*finite"):
        load_config(None, environ={}, overrides=dict([parse_set_option("engine.entry_ttl_s=inf")]))


def test_set_and_env_values_parse_by_the_declared_type() -> None:
    assert parse_set_option("keys.delegate_name=007") == ("keys.delegate_name", "007")  # str stays str
    assert parse_set_option("keys.delegate_name=\"a b\"") == ("keys.delegate_name", "a b")  # quoted
    assert parse_set_option("keys.delegate_name='\"q\"'") == ("keys.delegate_name", '"q"')
    assert parse_set_option("engine.venue=paper") == ("engine.venue", "paper")  # a Literal is text
    assert parse_set_option("feeds.okx_max_age_s=7") == ("feeds.okx_max_age_s", 7)
    assert parse_set_option("engine.market_convert=true") == ("engine.market_convert", True)
    assert parse_set_option("risk.tp_split=[60, 40]") == ("risk.tp_split", [60, 40])
    assert parse_set_option("ui.keys={kill = \"ctrl+x\"}") == ("ui.keys", {"kill": "ctrl+x"})
    assert parse_set_option("ui.keys.kill=ctrl+x") == ("ui.keys.kill", "ctrl+x")  # a table's value
    assert parse_set_option("nope.nope=12") == ("nope.nope", 12)  # unknown: refused by validation
    cfg = load_config(None, environ={"AUTOTRADER__KEYS__DELEGATE_NAME": "12345",
                                     "AUTOTRADER__MARKET__BINANCE_SYMBOL": "1000PEPEUSDT"})
    assert cfg.keys.delegate_name == "12345" and cfg.market.binance_symbol == "1000PEPEUSDT"


def test_sources_of_each_value(tmp_path: Path) -> None:
    from autotrader.config import load_config_with_sources

    f = tmp_path / "c.toml"
    f.write_text('[market]\nbinance_symbol = "BTCUSDT"\n[ui.keys]\nkill = "ctrl+x"\n')
    _, layers = load_config_with_sources(f, {"AUTOTRADER__FEEDS__OKX_MAX_AGE_S": "7"},
                                           {"feeds.bybit_max_age_s": 9})
    assert layers.file == f
    assert layers.source("market.binance_symbol") == "file" and layers.source("ui.keys.kill") == "file"
    assert layers.source("feeds.okx_max_age_s") == "env AUTOTRADER__FEEDS__OKX_MAX_AGE_S"
    assert layers.source("feeds.bybit_max_age_s") == "--set"
    assert layers.source("market.bybit_symbol") == "default"


def test_configuration_reference_is_current() -> None:
    from autotrader.config_doc import reference
    from tests.conftest import REPO_ROOT

    doc = (REPO_ROOT / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8")
    assert doc == reference(), "regenerate: python -m autotrader.config_doc > docs/CONFIGURATION.md"
