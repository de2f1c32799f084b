"""Drift on-chain feeds: the liquidation-map scanner and the Helius webhook receiver."""
