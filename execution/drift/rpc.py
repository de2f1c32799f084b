"""Moved to :mod:`execution.solana_send.rpc` (the send path is shared with other Solana venues)."""

from execution.solana_send.rpc import RpcClient, RpcError

__all__ = ["RpcClient", "RpcError"]
