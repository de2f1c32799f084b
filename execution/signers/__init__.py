"""Signers (local keypair, Ledger) and key storage (OS keyring, encrypted file)."""
