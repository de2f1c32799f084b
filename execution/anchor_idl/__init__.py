"""Anchor 1.0 IDLs: a Borsh codec driven by the IDL, fingerprints of the items a client uses, and
the IDL a program publishes on chain (Program Metadata program)."""
