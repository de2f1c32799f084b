"""The Solana send path shared by the on-chain venues (Drift now, Velocity next): no venue SDK here.

* :mod:`~execution.solana_send.rpc` — JSON-RPC client (statuses with history, signature lists,
  block height);
* :mod:`~execution.solana_send.tx` — v0 transactions signed through a Signer, priority fee;
* :mod:`~execution.solana_send.landing` — the states of a send and the evidence rules;
* :mod:`~execution.solana_send.sender` — journal before broadcast, rebroadcast of the same bytes,
  resolution (landed / not landed / unknown), re-sign only once a copy provably cannot land,
  resume after a restart;
* :mod:`~execution.solana_send.crash` — kill points for the crash tests.

A venue supplies the instructions, a probe of its account (is the effect visible?) and an address
the transaction writes (its signature list is a second source of history). See docs/DRIFT_VENUE.md.
"""
