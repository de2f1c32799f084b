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
