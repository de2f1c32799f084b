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


@pytest.fixture(scope="session", autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Never touch the real user's config, data, state or control socket (subprocesses inherit it)."""
    base = tmp_path_factory.mktemp("xdg")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
        d = base / name.lower()
        d.mkdir(mode=0o700)
        os.environ[name] = str(d)


@pytest.fixture(scope="session")
def demo_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic demo session (seed 7, 45 minutes), generated once per test session."""
    from feeds.demo import generate_demo

    return generate_demo(tmp_path_factory.mktemp("demo-session") / "demo.jsonl.zst").path
