"""Shared test fixtures. Real recordings live in ../shared/data beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("AUTOTRADER_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
BTC_FILE = DATA_DIR / "binance-futures" / "btcusdt_20240808.gz"
CRYPTOFEED_DIR = DATA_DIR / "cryptofeed"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"shared recordings not found at {DATA_DIR} (set AUTOTRADER_SHARED_DATA)")
    return DATA_DIR


@pytest.fixture(scope="session")
def btc_file(data_dir: Path) -> Path:
    return BTC_FILE
