"""autotrader: terminal trading application for SOL perpetuals."""

from __future__ import annotations


def package_version() -> str:
    """The installed distribution's version (pyproject.toml through the package metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autotrader")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":  # computed on demand: importing the package stays free
        return package_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
