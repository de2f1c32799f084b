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

venue_app = typer.Typer(help="The Drift venue's state.", no_args_is_help=True)
delegate_app = typer.Typer(help="The Drift account's delegate (owner-signed).", no_args_is_help=True)
keys_app = typer.Typer(
    help="Keys in the OS keyring or the encrypted key file (secrets are never printed).", no_args_is_help=True
)


def _cfg(config: Path | None, set_: list[str] | None, mainnet: bool = False):  # type: ignore[no-untyped-def]
    return get_config(config, set_, {"venues.drift.allow_mainnet": True} if mainnet else None)


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
    mainnet: MainnetOpt = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Decoded Drift State/PerpMarket pause state (exchange_status bits, market status, paused_operations)."""
    from solders.pubkey import Pubkey

    from core.cluster import ClusterMismatch
    from execution.drift.factory import DriftSetupError, build_chain
    from execution.drift.genesis import verify_cluster
    from execution.drift.rpc import RpcClient, RpcError
    from execution.drift.status import render_text

    cfg = _cfg(config, set_, mainnet)

    async def main() -> dict[str, Any]:
        rpc = RpcClient(cfg.venues.drift.rpc_url, timeout_s=cfg.venues.drift.rpc_timeout_s)
        try:
            await verify_cluster(rpc, cfg.venues.drift.cluster)
            chain = build_chain(cfg, rpc, Pubkey.default())
            await chain.refresh(0.0)
            return chain.status().to_json()
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
    _echo(st, json_out, text)


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
