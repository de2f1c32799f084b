"""autotrader: terminal trading application for SOL perpetuals."""

__version__ = "0.1.0"
