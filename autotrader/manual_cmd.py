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
from typing import TYPE_CHECKING, Any

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
    intent: Intent | None = None,
) -> int:
    """Summarize ``reqs``, ask, sign them in ONE transaction, send and follow it until the chain
    decides. Journaled in the live state database like the engine's orders (the intent and its
    orders with their user order ids before signing, the signed transaction before its broadcast);
    transactions an earlier run left unresolved are followed first, and nothing new is signed while
    one is unknown. 0 = on chain, 1 = failed, 2 = refused (cluster mismatch, another process holds
    the state, or the user declined)."""
    import msgspec

    from autotrader.drift_stack import StateBusy, report_resolved, with_journaled_venue
    from core.cluster import ClusterMismatch
    from core.venue import OrderStatus

    velocity = cfg.engine.venue == "velocity"

    async def text_of(venue: Any, r: OrderRequest) -> str:
        if velocity:  # issue 17: the same flow on the Velocity program
            from execution.velocity.manual import summarize as summarize_velocity

            return summarize_velocity(venue, r)
        from execution.drift.manual import summarize

        return (await summarize(venue, r)).text()

    async def body(venue: Any, journal: Any, resumed: int) -> int:
        try:
            if resumed:
                echo(f"following {resumed} transaction(s) an earlier run left unresolved; "
                     "waiting for the chain")
                await venue.wait_idle()
                for line in report_resolved(venue, journal):
                    echo(line)
            st = await venue.status()
            for r in reqs:
                echo(f"[{r.client_tag}]")
                echo(await text_of(venue, r))
            echo(f"venue: {st.state}" + (f" ({st.reason})" if st.reason else ""))
            if not yes and not confirm(f"sign and send these {len(reqs)} order(s) in one transaction?"):
                return 2  # declined: refused (autotrader.exit_codes)
            iid = intent.id if intent is not None else reqs[0].client_tag.rsplit(":", 1)[0]
            # bookkeeping only: a hand-signed intent is never managed by the engine
            payload = {"manual": True, **({"intent": msgspec.to_builtins(intent)} if intent else {})}
            journal.begin_intent(iid, payload, state="done")
            for r in reqs:
                kind = r.client_tag.rsplit(":", 1)[-1].rstrip("0123456789")
                role = {"e": "entry", "sl": "sl", "tp": "tp"}.get(kind, "entry")
                journal.record_order(iid, role, r.client_tag, None, "submitting",
                                     request=msgspec.to_builtins(r))
            orders = await venue.cancel_and_place([], list(reqs))
            sent = ", ".join(f"{o.order_id} (user order id {o.request.user_order_id})" for o in orders)
            sigs = ", ".join(dict.fromkeys(s for o in orders for s in o.signatures))
            echo(f"sent {sent}; signature {sigs}; waiting for the chain")
            await venue.wait_idle()
            for line in report_resolved(venue, journal):
                echo(line)
            ids = {o.order_id for o in orders}
            if any(venue._by_tag[i].status == OrderStatus.REJECTED for i in ids if i in venue._by_tag):
                return 1
            echo("on chain: " + ", ".join(f"{o.order_id} {o.status}" for o in await venue.open_orders()))
            return 0
        except Exception as e:
            echo(f"refused: {e}")
            return 1

    try:
        code: int = with_journaled_venue(cfg, signer, body, mainnet_flag=mainnet_flag)
    except StateBusy as exc:
        echo(f"refused: {exc} (hand-signed orders share its journal: stop it first)")
        return 2
    except ClusterMismatch as e:  # checked before anything is signed or sent again
        echo(f"refused: {e}")
        return 2
    except Exception as e:  # the venue could not be built or read: one line, never a traceback
        echo(f"refused: {type(e).__name__}: {e}")
        return 1
    return code


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
