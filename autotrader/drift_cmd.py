"""CLI: ``venue status``, ``delegate set|revoke|status``, ``keys ...`` and the hidden demo
``drift-order --manual`` (issue 8). cli.py registers these typer sub-apps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import platformdirs
import typer

from autotrader.cli_common import ConfigOpt, SetOpt, fail, get_config

MainnetOpt = Annotated[bool, typer.Option("--mainnet", help="Allow cluster = mainnet for this command.")]
PassFileOpt = Annotated[
    Path | None, typer.Option("--passphrase-file", help="Read the key-file passphrase from this file.")
]

venue_app = typer.Typer(help="The on-chain venue's state (Drift or Velocity).", no_args_is_help=True)
delegate_app = typer.Typer(help="The account's delegate (owner-signed): Drift, or Velocity when "
                           "engine.venue = velocity.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Keys in the OS keyring or the encrypted key file (secrets are never printed).", no_args_is_help=True
)


def _cfg(config: Path | None, set_: list[str] | None, mainnet: bool = False):  # type: ignore[no-untyped-def]
    opt_in = {"venues.drift.allow_mainnet": True, "venues.velocity.allow_mainnet": True}
    return get_config(config, set_, opt_in if mainnet else None)


def _which(cfg, venue: str | None) -> str:  # type: ignore[no-untyped-def]
    """``--venue``, else ``engine.venue`` when it is an on-chain venue, else drift."""
    which = venue or (cfg.engine.venue if cfg.engine.venue in ("drift", "velocity") else "drift")
    if which not in ("drift", "velocity"):
        fail(f"--venue must be drift or velocity, got {which!r}")
    return str(which)


VenueOpt = Annotated[
    str | None, typer.Option("--venue", help="drift or velocity (default: engine.venue, else drift).")
]


def _data_dir() -> Path:
    return Path(platformdirs.user_data_dir("autotrader"))


def _store(cfg, passphrase_file: Path | None):  # type: ignore[no-untyped-def]
    from execution.drift.factory import key_store
    from execution.signers.keystore import passphrase_source

    return key_store(cfg, passphrase_source(passphrase_file), _data_dir())


def _echo(obj: Any, json_out: bool, text: str) -> None:
    typer.echo(orjson.dumps(obj).decode() if json_out else text)


# ---------------------------------------------------------------------------- venue status
@venue_app.command("status")
def venue_status(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    venue: VenueOpt = None,
    mainnet: MainnetOpt = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Decoded venue state: State/PerpMarket pause bits, market status; Velocity: also the program
    check; Drift: also whether the program still accepts orders."""
    cfg = _cfg(config, set_, mainnet)
    if _which(cfg, venue) == "velocity":
        _velocity_status(cfg, json_out)
        return
    from solders.instruction import AccountMeta
    from solders.pubkey import Pubkey

    from core.cluster import ClusterMismatch
    from execution.anchor_idl.codec import discriminator
    from execution.anchor_idl.probe import probe_instruction
    from execution.drift.factory import DriftSetupError, build_chain
    from execution.drift.genesis import verify_cluster
    from execution.drift.status import render_text
    from execution.solana_send.rpc import RpcClient, RpcError

    async def main() -> dict[str, Any]:
        rpc = RpcClient(cfg.venues.drift.rpc_url, timeout_s=cfg.venues.drift.rpc_timeout_s)
        try:
            await verify_cluster(rpc, cfg.venues.drift.cluster)
            chain = build_chain(cfg, rpc, Pubkey.default())
            await chain.refresh(0.0)
            out = chain.status().to_json()
            # since protocol-v2 v2.162.0 the program has no instructions left: ask the cluster
            metas = [AccountMeta(chain.state_pubkey, False, False),
                     AccountMeta(chain.user_pubkey, False, True), AccountMeta(chain.authority, True, False)]
            place = discriminator("global", "place_perp_order")
            probe = await probe_instruction(rpc, chain.program_id, place, metas, chain.authority)
            out["accepts_orders"], out["orders_probe"] = probe.dispatched, probe.detail
            if probe.dispatched is False:
                why = f"the Drift program no longer accepts orders: {probe.detail}"
                out["state"], out["reason"] = "paused", why + (f"; {out['reason']}" if out["reason"] else "")
            return out
        finally:
            await rpc.close()

    import asyncio

    try:
        st = asyncio.run(main())
    except (DriftSetupError, ClusterMismatch) as e:
        fail(str(e))
    except (RpcError, Exception) as e:  # unreachable RPC, missing accounts
        fail(f"cannot read the Drift accounts: {e}", 1)
    from execution.drift.status import DriftStatus

    text = render_text(
        DriftStatus.of(
            st["exchange_status"],
            st["perp_market_status_value"],
            st["paused_operations"],
            st["perp_market_index"],
            st["slot"],
        )
    )
    if st.get("accepts_orders") is False:
        text = f"venue: drift  state: paused  ({st['reason']})\n" + text.split("\n", 1)[1]
    text += f"\naccepts orders: {st.get('accepts_orders')} ({st.get('orders_probe')})"
    _echo(st, json_out, text)


def _velocity_status(cfg: Any, json_out: bool) -> None:
    import asyncio

    from autotrader.velocity_cmd import read_status
    from core.cluster import ClusterMismatch
    from execution.velocity.factory import VelocitySetupError
    from execution.velocity.status import render_text

    try:
        st = asyncio.run(read_status(cfg))
    except (VelocitySetupError, ClusterMismatch) as e:
        fail(str(e))
    except Exception as e:  # unreachable RPC, missing accounts, undecodable layout
        fail(f"cannot read the Velocity accounts: {e}", 1)
    _echo(st, json_out, render_text(st))


@venue_app.command("reconcile")
def venue_reconcile(
    passphrase_file: PassFileOpt = None,
    mainnet: MainnetOpt = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Follow the transactions the journal holds unresolved (a crash or a stop mid-send) until the
    chain says whether each landed, and record it; exit 0 once all are resolved. A running instance
    does this at its start; do not run it while one runs."""
    from autotrader.drift_stack import StateBusy, report_resolved, trading_signer, with_journaled_venue

    cfg = _cfg(config, set_, mainnet)

    async def body(venue: Any, journal: Any, resumed: int) -> list[str]:
        if not resumed:
            return ["nothing unresolved in the journal"]
        typer.echo(f"following {resumed} transaction(s); waiting for the chain", err=True)
        await venue.wait_idle()
        return report_resolved(venue, journal)

    try:
        signer = trading_signer(cfg, _data_dir(), passphrase_file)
        lines: list[str] = with_journaled_venue(cfg, signer, body, mainnet_flag=mainnet)
    except StateBusy as exc:
        fail(f"venue reconcile: {exc} (a running instance reconciles by itself)", 1)
    except Exception as e:  # unreachable RPC, missing keys or accounts: one line, no traceback
        fail(f"venue reconcile: {type(e).__name__}: {e}", 1)
    for line in lines:
        typer.echo(line)


# ---------------------------------------------------------------------------- delegate
def _delegate_cmd(
    action: str, json_out: bool, mainnet: bool, pf: Path | None, config: Path | None, set_: list[str] | None
) -> None:
    import asyncio

    from autotrader.delegation_ops import delegate_action
    from core.cluster import ClusterMismatch
    from core.delegation_text import delegation_lines

    cfg = _cfg(config, set_, mainnet)
    try:
        if cfg.engine.venue == "velocity":  # the Velocity User account (issue 17)
            from autotrader.velocity_cmd import delegate

            st = delegate(cfg, action, pf)
        else:
            store = None if action == "status" else _store(cfg, pf)
            st = asyncio.run(delegate_action(cfg, action, store, _data_dir()))
    except ClusterMismatch as e:
        fail(f"delegate {action}: {e}")
    except Exception as e:
        fail(f"delegate {action}: {e}", 1)
    _echo(st, json_out, "\n".join(delegation_lines(st)))


@delegate_app.command("status")
def delegate_status_cmd(
    json_out: Annotated[bool, typer.Option("--json")] = False,
    mainnet: MainnetOpt = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """The User account's delegate field."""
    _delegate_cmd("status", json_out, mainnet, None, config, set_)


@delegate_app.command("set")
def delegate_set_cmd(
    json_out: Annotated[bool, typer.Option("--json")] = False,
    mainnet: MainnetOpt = False,
    passphrase_file: PassFileOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Make the app's delegate key the account's delegate (signed by the owner)."""
    _delegate_cmd("set", json_out, mainnet, passphrase_file, config, set_)


@delegate_app.command("revoke")
def delegate_revoke_cmd(
    json_out: Annotated[bool, typer.Option("--json")] = False,
    mainnet: MainnetOpt = False,
    passphrase_file: PassFileOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Remove the delegate (set it to the default pubkey; signed by the owner)."""
    _delegate_cmd("revoke", json_out, mainnet, passphrase_file, config, set_)


# ---------------------------------------------------------------------------- keys
NameOpt = Annotated[str | None, typer.Option("--name", help="Key name (default: keys.delegate_name).")]


@keys_app.command("generate")
def keys_generate(
    name: NameOpt = None,
    force: Annotated[bool, typer.Option("--force")] = False,
    passphrase_file: PassFileOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Generate a keypair in the key store; prints its public key only."""
    from solders.keypair import Keypair

    cfg = _cfg(config, set_)
    n = name or cfg.keys.delegate_name
    try:
        st = _store(cfg, passphrase_file)
        if st.pubkey(n) is not None and not force:
            fail(f"key {n!r} exists ({st.kind}); --force replaces it")
        kp = Keypair()
        st.save(n, kp)
    except typer.Exit:
        raise
    except Exception as e:
        fail(str(e), 1)
    typer.echo(f"{n}: {kp.pubkey()} ({st.kind})")


@keys_app.command("import")
def keys_import(
    path: Annotated[Path, typer.Argument(help="A Solana CLI keypair file (JSON array of 64 bytes).")],
    name: NameOpt = None,
    force: Annotated[bool, typer.Option("--force")] = False,
    passphrase_file: PassFileOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Import a Solana CLI keypair file into the key store; prints its public key only."""
    from execution.signers.keystore import KeyStoreError, read_solana_keypair_file

    cfg = _cfg(config, set_)
    n = name or cfg.keys.delegate_name
    try:
        kp = read_solana_keypair_file(path)
    except KeyStoreError as e:
        fail(str(e))
    try:
        st = _store(cfg, passphrase_file)
        if st.pubkey(n) is not None and not force:
            fail(f"key {n!r} exists ({st.kind}); --force replaces it")
        st.save(n, kp)
    except typer.Exit:
        raise
    except Exception as e:
        fail(str(e), 1)
    typer.echo(f"{n}: {kp.pubkey()} ({st.kind})")


@keys_app.command("show-pubkey")
def keys_show(
    name: NameOpt = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """The public key of a stored key (never the secret; no passphrase needed)."""
    cfg = _cfg(config, set_)
    n = name or cfg.keys.delegate_name
    st = _store(cfg, None)
    pk = st.pubkey(n)
    if pk is None:
        fail(f"no key {n!r} ({st.kind})", 1)
    _echo({"name": n, "pubkey": pk, "store": st.kind}, json_out, pk)


@keys_app.command("delete")
def keys_delete(
    name: NameOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Delete a stored key (revoke the delegate first: see docs/DELEGATION.md)."""
    cfg = _cfg(config, set_)
    n = name or cfg.keys.delegate_name
    st = _store(cfg, None)
    if not yes and not typer.confirm(f"delete key {n!r} ({st.pubkey(n)}) from {st.kind}?"):
        fail("not deleted", 1)
    if not st.delete(n):
        fail(f"no key {n!r} ({st.kind})", 1)
    typer.echo(f"deleted {n}")
