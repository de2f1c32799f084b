"""Manual (hand-signed) Drift orders: ``run_manual_order`` for ``autotrader intent --manual``
(the lead hooks it in) and the hidden demo command ``autotrader drift-order --manual``.

Shows the summary (market, side, size, price, reduce-only, fees), asks for confirmation (unless
``yes``), signs with the local owner key (passphrase) or the Ledger, sends the post-only entry and
follows it through the confirmation schedule like any order. The stop and take-profits are listed
in the summary; placing them after the fill is the engine's job (not done by this command).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import typer

from core.clock import WallClock
from core.config_schema import Config
from core.venue import OrderRequest, OrderStatus, OrderType, OrderUpdate, PostOnly
from execution.signers.base import Signer


def run_manual_order(
    cfg: Config,
    side: str,
    price: float,
    size: float,
    sl: float | None,
    tps: Sequence[tuple[float, float]],
    signer: Signer,
    *,
    yes: bool = False,
    mainnet_flag: bool = False,
    echo: Callable[[str], None] = typer.echo,
    confirm: Callable[[str], bool] = typer.confirm,
    tag: str = "manual:e1",
) -> int:
    """0 = the entry landed on chain, 1 = refused/failed, 3 = not confirmed by the user."""
    from execution.drift.factory import build_drift_venue
    from execution.drift.manual import summarize

    if side not in ("buy", "sell"):
        echo(f"side must be buy or sell, got {side!r}")
        return 2
    req = OrderRequest(
        market="SOL-PERP",
        side=side,  # type: ignore[arg-type]
        type=OrderType.LIMIT,
        size=size,
        price=price,
        post_only=PostOnly.MUST,
        client_tag=tag,
    )

    async def main() -> int:
        venue = build_drift_venue(cfg, WallClock(), signer, mainnet_flag=mainnet_flag)
        try:
            await venue.start(poll=False)
            st = await venue.status()
            s = await summarize(venue, req)
            echo(s.text())
            if sl is not None:
                echo(
                    f"stop-loss (after the fill): trigger-market "
                    f"{('sell' if side == 'buy' else 'buy')} {sl:.4f}"
                )
            for px, frac in tps:
                echo(f"take-profit (after the fill): {frac:.0%} at {px:.4f}")
            echo(f"venue: {st.state}" + (f" ({st.reason})" if st.reason else ""))
            if not yes and not confirm("sign and send?"):
                return 3
            order = await venue.place(req)
            echo(
                f"sent {order.order_id} (user order id {order.request.user_order_id}); "
                "waiting for confirmation"
            )
            await venue.wait_idle()
            for ev in venue.events():
                if (
                    isinstance(ev, OrderUpdate)
                    and ev.order.order_id == order.order_id
                    and ev.order.status == OrderStatus.REJECTED
                ):
                    echo(f"failed: {ev.reason}")
                    return 1
            echo("on chain: " + ", ".join(f"{o.order_id} {o.status}" for o in await venue.open_orders()))
            return 0
        except Exception as e:
            echo(f"refused: {e}")
            return 1
        finally:
            await venue.close()
            await venue.chain.rpc.close()

    return asyncio.run(main())


def drift_order(
    side: str = typer.Option(..., "--side"),
    price: float = typer.Option(..., "--price"),
    size: float = typer.Option(..., "--size"),
    sl: float | None = typer.Option(None, "--sl"),
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
    raise typer.Exit(run_manual_order(cfg, side, price, size, sl, [], signer, yes=yes, mainnet_flag=mainnet))
