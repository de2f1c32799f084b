"""The cluster check every Drift command makes before it reads or signs anything: the configured
label (``venues.drift.cluster``) must be the cluster the RPC serves, by ``getGenesisHash``
(:mod:`core.cluster`). A mismatch — a devnet config pointed at a mainnet RPC, or the reverse —
raises :class:`core.cluster.ClusterMismatch` with a one-line message."""

from __future__ import annotations

from core.cluster import ClusterMismatch, check_cluster
from core.secrets import redact_url
from execution.drift.rpc import RpcClient, RpcError


async def verify_cluster(rpc: RpcClient, label: str) -> str:
    """The cluster ``rpc`` serves, when it is ``label``; ClusterMismatch otherwise (also when the RPC
    cannot say: nothing is read or signed on a cluster we could not identify)."""
    where = f"the RPC at {redact_url(rpc.url)}"
    try:
        genesis = await rpc.call("getGenesisHash", [])
    except RpcError as e:
        raise ClusterMismatch(f"{where} did not answer getGenesisHash ({e}): cannot tell which "
                              f"cluster it serves") from None
    return check_cluster(label, genesis, where)
