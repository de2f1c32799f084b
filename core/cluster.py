"""Which Solana cluster an RPC serves, by its genesis hash (pure).

A cluster label in the config (``venues.drift.cluster``) is only a claim: an RPC URL copied from the
wrong place makes a "devnet" config trade mainnet money. Every place that talks to a cluster asks
the RPC for ``getGenesisHash`` first and calls :func:`check_cluster`; a mismatch refuses to start.
"""

from __future__ import annotations

from typing import Final

GENESIS_HASHES: Final[dict[str, str]] = {
    "mainnet": "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d",  # mainnet-beta
    "devnet": "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG",
    "testnet": "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3zQawwpjk2NsNY",
}


class ClusterMismatch(ValueError):
    """The configured cluster label and the RPC's genesis hash disagree (or the hash is unusable)."""


def cluster_of(genesis_hash: str) -> str | None:
    """``"mainnet"``, ``"devnet"``, ``"testnet"`` or None for an unknown cluster (a local validator)."""
    for name, h in GENESIS_HASHES.items():
        if h == genesis_hash:
            return name
    return None


def check_cluster(label: str, genesis_hash: object, where: str) -> str:
    """Return the cluster ``genesis_hash`` identifies when it is the one ``label`` names; raise
    :class:`ClusterMismatch` with a one-line message otherwise. ``where`` names the RPC (redacted)."""
    if not isinstance(genesis_hash, str) or not genesis_hash:
        raise ClusterMismatch(f"{where} answered getGenesisHash with {genesis_hash!r}: cannot tell "
                              f"which cluster it serves; refusing to use it as {label}")
    actual = cluster_of(genesis_hash)
    if actual == label:
        return actual
    served = f"{actual or 'an unknown cluster'} (genesis hash {genesis_hash})"
    raise ClusterMismatch(f"venues.drift.cluster is {label!r} but {where} serves {served}; "
                          f"fix the RPC URL or the cluster label")
