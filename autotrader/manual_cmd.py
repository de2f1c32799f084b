"""Manual (hand-signed) Drift orders, for when delegation is off: ``autotrader intent --manual``
and the hidden demo ``autotrader drift-order --manual``.

Shows a summary per order (market, side, size, price, reduce-only, fees), asks for confirmation
(unless ``--yes``), signs with the local owner key (passphrase) or the Ledger — one transaction, so
one confirmation on the device — sends it and follows it through the confirmation schedule like
any order. ``intent --manual`` signs the entry together with its reduce-only stop and take-profits
(:func:`protected_requests`): the position is never naked. What needs the engine running with a
delegate — breakeven after TP1, the ATR trail, cancelling the TPs once the stop fills — is not done
for hand-signed orders; reduce-only keeps the leftovers harmless (they cannot open a position).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # the CLI imports the domain (and solders) only in the commands that sign
    from core.config_schema import Config
    from core.intents import Intent
    from core.venue import OrderRequest, OrderSide
    from execution.signers.base import Signer


def protected_requests(intent: Intent, market: str) -> list[OrderRequest]:
    """The entry with its protection, to sign together: a post-only entry, a reduce-only
    trigger-market stop for the whole size and the reduce-only take-profit ladder. Reduce-only
    exits can never open a position, so they are safe while the entry has not filled, and the
    position is protected from the moment it exists (never naked, even without the engine)."""
    from core.venue import OrderRequest, OrderType, PostOnly, TriggerCondition

    long = intent.side == "buy"
    exit_side: OrderSide = "sell" if long else "buy"
    tag = intent.id
    reqs = [
        OrderRequest(market=market, side=intent.side, type=OrderType.LIMIT, size=intent.size,
                     price=intent.price, post_only=PostOnly.MUST if intent.post_only else PostOnly.NONE,
                     client_tag=f"{tag}:e1"),
        OrderRequest(market=market, side=exit_side, type=OrderType.TRIGGER_MARKET, size=intent.size,
                     trigger_price=intent.sl,
                     trigger_condition=TriggerCondition.BELOW if long else TriggerCondition.ABOVE,
                     reduce_only=True, client_tag=f"{tag}:sl1"),
    ]
    left = intent.size
    for i, (px, frac) in enumerate(intent.tps):
        size = left if i == len(intent.tps) - 1 else intent.size * frac
        left -= size
        reqs.append(OrderRequest(market=market, side=exit_side, type=OrderType.LIMIT, size=size, price=px,
                                 reduce_only=True, client_tag=f"{tag}:tp{i + 1}"))
    return reqs


def run_manual_orders(
    cfg: Config,
    reqs: Sequence[OrderRequest],
    signer: Signer,
    *,
    yes: bool = False,
    mainnet_flag: bool = False,
    echo: Callable[[str], None] = typer.echo,
    confirm: Callable[[str], bool] = typer.confirm,
) -> int:
    """Summarize ``reqs``, ask, sign them in ONE transaction, send and follow it through the
    confirmation schedule. 0 = on chain, 1 = failed, 2 = refused (cluster mismatch, or
    the user declined)."""
    import asyncio

    from core.clock import WallClock
    from core.cluster import ClusterMismatch
    from core.venue import OrderStatus, OrderUpdate
    from execution.drift.factory import build_drift_venue
    from execution.drift.genesis import verify_cluster
    from execution.drift.manual import summarize

    async def main() -> int:
        venue = build_drift_venue(cfg, WallClock(), signer, mainnet_flag=mainnet_flag)
        try:
            await verify_cluster(venue.chain.rpc, cfg.venues.drift.cluster)  # before anything is signed
            await venue.start(poll=False)
            st = await venue.status()
            for r in reqs:
                echo(f"[{r.client_tag}]")
                echo((await summarize(venue, r)).text())
            echo(f"venue: {st.state}" + (f" ({st.reason})" if st.reason else ""))
            if not yes and not confirm(f"sign and send these {len(reqs)} order(s) in one transaction?"):
                return 2  # declined: refused (autotrader.exit_codes)
            orders = await venue.cancel_and_place([], list(reqs))
            sent = ", ".join(f"{o.order_id} (user order id {o.request.user_order_id})" for o in orders)
            echo(f"sent {sent}; waiting for confirmation")
            await venue.wait_idle()
            ids = {o.order_id for o in orders}
            for ev in venue.events():
                if (isinstance(ev, OrderUpdate) and ev.order.order_id in ids
                        and ev.order.status == OrderStatus.REJECTED):
                    echo(f"failed: {ev.reason}")
                    return 1
            echo("on chain: " + ", ".join(f"{o.order_id} {o.status}" for o in await venue.open_orders()))
            return 0
        except ClusterMismatch as e:
            echo(f"refused: {e}")
            return 2
        except Exception as e:
            echo(f"refused: {e}")
            return 1
        finally:
            await venue.close()
            await venue.chain.rpc.close()

    return asyncio.run(main())


def run_manual_order(
    cfg: Config,
    side: str,
    price: float,
    size: float,
    signer: Signer,
    *,
    yes: bool = False,
    mainnet_flag: bool = False,
    echo: Callable[[str], None] = typer.echo,
    confirm: Callable[[str], bool] = typer.confirm,
    tag: str = "manual:e1",
) -> int:
    """One bare post-only entry (the hidden ``drift-order`` demo); ``intent --manual`` sends the
    entry with its protection instead (:func:`protected_requests`)."""
    if side not in ("buy", "sell"):
        echo(f"side must be buy or sell, got {side!r}")
        return 2
    from core.venue import OrderRequest, OrderType, PostOnly

    req = OrderRequest(market="SOL-PERP", side="buy" if side == "buy" else "sell", type=OrderType.LIMIT,
                       size=size, price=price, post_only=PostOnly.MUST, client_tag=tag)
    return run_manual_orders(cfg, [req], signer, yes=yes, mainnet_flag=mainnet_flag, echo=echo,
                             confirm=confirm)


def drift_order(
    side: str = typer.Option(..., "--side"),
    price: float = typer.Option(..., "--price"),
    size: float = typer.Option(..., "--size"),
    manual: bool = typer.Option(False, "--manual", help="Required: sign this order by hand."),
    yes: bool = typer.Option(False, "--yes"),
    mainnet: bool = typer.Option(False, "--mainnet"),
    passphrase_file: str | None = typer.Option(None, "--passphrase-file"),
    config: str | None = typer.Option(None, "--config", "-c"),
    set_: list[str] | None = typer.Option(None, "--set"),  # noqa: B008
) -> None:
    """(demo, hidden) One hand-signed post-only Drift order; see docs/DRIFT_VENUE.md."""
    from pathlib import Path

    from autotrader.cli_common import fail, get_config
    from autotrader.drift_cmd import _store
    from execution.drift.factory import owner_signer

    if not manual:
        fail("drift-order needs --manual (orders are otherwise placed by the engine)")
    cfg = get_config(
        Path(config) if config else None, set_, {"venues.drift.allow_mainnet": True} if mainnet else None
    )
    try:
        signer = owner_signer(cfg, _store(cfg, Path(passphrase_file) if passphrase_file else None))
    except Exception as e:
        fail(f"signer: {e}", 1)
    raise typer.Exit(run_manual_order(cfg, side, price, size, signer, yes=yes, mainnet_flag=mainnet))
