"""The dependency set co-installs with driftpy and every library actually imports."""

from __future__ import annotations

import importlib
import importlib.metadata as md

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "textual",
        "rich",
        "typer",
        "websockets",
        "aiohttp",
        "driftpy",
        "solana",
        "solders",
        "keyring",
        "pyarrow",
        "msgspec",
        "orjson",
        "platformdirs",
        "prometheus_client",
        "zstandard",
        "numpy",
        "h11",
    ],
)
def test_imports(module: str) -> None:
    importlib.import_module(module)


def test_driftpy_pins_hold() -> None:
    assert md.version("driftpy") == "0.8.89"
    assert md.version("websockets").startswith("13.")
    assert md.version("solana").startswith("0.36")
    assert int(md.version("numpy").split(".")[0]) < 2
    assert md.version("anchorpy") == "0.21.0"
