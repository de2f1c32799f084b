"""Commands that talk to a running instance over its control socket: ``status``, ``kill``,
``intent``, ``automation``, ``resume``. Exit codes: 0 done, 1 no running instance (or a kill the
venue has not confirmed yet), 2 bad input (also when the daemon refuses it). ``kill`` also works
without an instance (:mod:`autotrader.kill_cmd`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from autotrader.cli_common import ConfigOpt, JsonOpt, SetOpt, fail, get_config

KILL_WAIT_S = 60.0  # the instance answers once the venue confirmed, or after this long


def _request(cfg_path: Path | None, sets: list[str] | None, cmd: str, args: dict[str, Any],
             timeout: float = 5.0) -> Any:
    from autotrader.config import control_socket_path
    from autotrader.control import ControlError, RemoteError, request_sync

    cfg = get_config(cfg_path, sets)
    path = control_socket_path(cfg)
    try:
        return request_sync(path, cmd, args, timeout=timeout)
    except RemoteError as exc:
        fail(str(exc), 2)
    except ControlError as exc:
        fail(f"{exc} (start one with 'autotrader run --no-ui' or 'autotrader demo')", 1)


def _echo_json(obj: Any) -> None:
    typer.echo(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS, default=str).decode())


def parse_tp(text: str) -> tuple[float, float | None]:
    """``PRICE`` or ``PRICE:FRACTION``."""
    px, sep, frac = text.partition(":")
    try:
        return float(px), (float(frac) if sep else None)
    except ValueError:
        raise ValueError(f"--tp must be PRICE or PRICE:FRACTION, got {text!r}") from None


def _manual(config: Path | None, sets: list[str] | None, side: str, size: float, sl: float,
            price: float | None, tps: list[tuple[float, float | None]], yes: bool,
            passphrase_file: Path | None, mainnet: bool) -> int:
    """``intent --manual``: entry, stop and TPs signed together by the owner (see manual_cmd)."""
    import time

    from autotrader.drift_cmd import _data_dir
    from autotrader.manual_cmd import protected_requests, run_manual_orders
    from core.manual import ManualIntentError, build_manual_intent
    from execution.signers.keystore import passphrase_source

    if price is None:
        fail("--manual needs --price (this command has no market data to take the touch from)")
    opt_in = {"venues.drift.allow_mainnet": True, "venues.velocity.allow_mainnet": True}
    cfg = get_config(config, sets, opt_in if mainnet else None)
    if cfg.engine.venue == "velocity":  # issue 17: no driftpy for the Velocity venue
        from execution.velocity.factory import key_store, owner_signer
    else:
        from execution.drift.factory import key_store, owner_signer
    try:
        now = int(time.time() * 1000)
        intent = build_manual_intent(
            intent_id=f"manual-{now}", ts=now, market=cfg.signal.market, side=side, size=size, sl=sl,
            price=price, bid=None, ask=None, tps=tps, default_split=cfg.risk.tp_split,
            equity_usd=cfg.paper.equity_usd,
        )
    except ManualIntentError as exc:
        fail(str(exc))
    try:
        signer = owner_signer(cfg, key_store(cfg, passphrase_source(passphrase_file), _data_dir()))
    except Exception as exc:
        fail(f"signer: {exc}", 1)
    return run_manual_orders(cfg, protected_requests(intent, cfg.signal.market), signer, yes=yes,
                             mainnet_flag=mainnet, intent=intent)


def _dry_run(config: Path | None, sets: list[str] | None, side: str, size: float, sl: float,
             price: float | None, tps: list[tuple[float, float | None]], json_out: bool,
             mainnet: bool) -> int:
    """``intent --dry-run``: what ``--manual`` would sign, printed, not sent (autotrader.dry_run)."""
    from autotrader.dry_run import dry_run, render_text, requests_for
    from core.manual import ManualIntentError

    if price is None:
        fail("--dry-run needs --price (this command has no market data to take the touch from)")
    opt_in = {"venues.drift.allow_mainnet": True, "venues.velocity.allow_mainnet": True}
    cfg = get_config(config, sets, opt_in if mainnet else None)
    try:
        reqs = requests_for(cfg, side, size, sl, price, tps)
    except ManualIntentError as exc:
        fail(str(exc))
    from core.cluster import ClusterMismatch

    try:
        out = dry_run(cfg, reqs)
    except ClusterMismatch as exc:  # the RPC serves another cluster than the config says
        fail(f"dry run: {exc}")
    except Exception as exc:  # unreachable RPC, missing accounts, bad config keys
        fail(f"dry run: {exc}", 1)
    typer.echo(orjson.dumps(out).decode() if json_out else render_text(out))
    return 1 if "refused" in out else 0


def register(app: typer.Typer) -> None:
    @app.command()
    def status(json_out: JsonOpt = False, config: ConfigOpt = None, set_: SetOpt = None) -> None:
        """State of the running instance: trading state, kill reason, position, orders, guards, feeds."""
        from autotrader.status_text import render_status

        result = _request(config, set_, "status", {})
        if json_out:
            _echo_json(result)
        else:
            typer.echo(render_status(result))

    @app.command()
    def kill(
        reason: Annotated[
            str, typer.Option("--reason", help="Why (recorded in the activity log; default: manual).")
        ] = "manual",
        flatten: Annotated[
            bool | None,
            typer.Option("--flatten/--no-flatten",
                         help="Also close the position with a reduce-only market order "
                              "(default: engine.flatten_on_kill)."),
        ] = None,
        cancel_all: Annotated[
            bool,
            typer.Option("--cancel-all", help="Also cancel the stop (the position keeps no protection)."),
        ] = False,
        json_out: JsonOpt = False,
        config: ConfigOpt = None,
        set_: SetOpt = None,
    ) -> None:
        """Kill switch: cancel entries and take-profits, keep the stop on an open position, automation
        off, HALTED. With no running instance it is done here, on the venue (Drift: on chain)."""
        from autotrader.config import control_socket_path
        from autotrader.control import ControlError, NoInstance, RemoteError, request_sync
        from autotrader.kill_cmd import kill_text

        if not reason.strip():
            fail("--reason must not be empty")
        cfg = get_config(config, set_)
        args = {"reason": reason, "flatten": flatten, "cancel_all": cancel_all, "wait_s": KILL_WAIT_S}
        try:
            result = request_sync(control_socket_path(cfg), "kill", args, timeout=KILL_WAIT_S + 5)
        except RemoteError as exc:
            fail(str(exc), 2)
        except NoInstance:
            typer.echo("no running instance: killing on the venue from here", err=True)
            from autotrader.kill_cmd import run_offline  # the venue's stack: heavy, only here
            from autotrader.trading import VenueUnavailable

            try:
                result = run_offline(cfg, reason, flatten, cancel_all)
            except VenueUnavailable as exc:
                fail(str(exc), 1)
            except TimeoutError:
                fail("the venue did not confirm in time; run the kill again", 1)
            except Exception as exc:  # a clear line, never a traceback
                fail(f"kill failed: {type(exc).__name__}: {exc}", 1)
        except ControlError as exc:  # an instance is there but does not answer: it must be stopped first
            fail(f"{exc}: if it is hung, stop it (SIGTERM/SIGKILL) and run the kill again", 1)
        if json_out:
            _echo_json(result)
        else:
            typer.echo(kill_text(result))
        raise typer.Exit(0 if result.get("confirmed") else 1)

    @app.command()
    def intent(
        side: Annotated[str, typer.Argument(help="buy or sell")],
        size: Annotated[float, typer.Option("--size", help="Size in base units (SOL).")],
        sl: Annotated[float, typer.Option("--sl", help="Stop-loss price (required: never naked).")],
        price: Annotated[
            float | None, typer.Option("--price", help="Post-only limit price (default: the touch).")
        ] = None,
        tp: Annotated[
            list[str] | None, typer.Option("--tp", help="Take-profit PRICE or PRICE:FRACTION (repeatable).")
        ] = None,
        replay: Annotated[
            Path | None, typer.Option("--replay", help="Submit to a backtest of this recording instead.")
        ] = None,
        at: Annotated[
            str, typer.Option("--at", help="With --replay: offset from the start (90s, 5m) or epoch ms.")
        ] = "60s",
        manual: Annotated[
            bool, typer.Option("--manual", help="Sign it yourself (local key or Ledger); send it to Drift.")
        ] = False,
        yes: Annotated[bool, typer.Option("--yes", help="With --manual: do not ask before signing.")] = False,
        passphrase_file: Annotated[
            Path | None, typer.Option("--passphrase-file", help="With --manual: the key file's passphrase.")
        ] = None,
        mainnet: Annotated[bool, typer.Option("--mainnet", help="With --manual: allow mainnet.")] = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print what would be signed (any venue); send nothing.")
        ] = False,
        json_out: JsonOpt = False,
        config: ConfigOpt = None,
        set_: SetOpt = None,
    ) -> None:
        """Submit a manual intent (post-only entry + stop + TP ladder) to the running instance;
        with --manual, sign it by hand and send it to Drift (delegation off)."""
        if side not in ("buy", "sell"):
            fail(f"side must be 'buy' or 'sell', got {side!r}")
        try:
            tps = [parse_tp(t) for t in (tp or [])]
        except ValueError as exc:
            fail(str(exc))
        if dry_run:
            raise typer.Exit(_dry_run(config, set_, side, size, sl, price, tps, json_out, mainnet))
        if manual:
            raise typer.Exit(_manual(config, set_, side, size, sl, price, tps, yes, passphrase_file, mainnet))
        if replay is not None:
            from autotrader.backtest_cmd import run_backtest_with_intent

            code = run_backtest_with_intent(config, set_, replay, side=side, size=size, sl=sl, price=price,
                                            tps=tps, at=at, json_out=json_out)
            raise typer.Exit(code)
        args = {"side": side, "size": size, "sl": sl, "price": price, "tps": [list(t) for t in tps]}
        result = _request(config, set_, "intent", args, timeout=15.0)
        if json_out:
            _echo_json(result)
        elif result.get("status") == "accepted":
            tps_txt = ", ".join(f"{p:g}" for p, _ in result["tps"]) or "none"
            typer.echo(f"accepted {result['id']}: {result['side']} {result['size']:g} @ {result['price']:g}, "
                       f"stop {result['sl']:g}, TPs {tps_txt}")
        else:
            typer.echo(f"{result.get('status')} {result.get('id')}: " + "; ".join(result.get("reasons", [])))
        raise typer.Exit(0 if result.get("status") == "accepted" else 1)

    @app.command()
    def automation(
        state: Annotated[str, typer.Argument(help="on or off")],
        config: ConfigOpt = None,
        set_: SetOpt = None,
    ) -> None:
        """Turn automation (signal intents) on or off on the running instance."""
        if state not in ("on", "off"):
            fail(f"expected 'on' or 'off', got {state!r}")
        result = _request(config, set_, "automation", {"on": state == "on"})
        typer.echo(f"automation {'on' if result['automation_on'] else 'off'}")

    @app.command()
    def resume(
        reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "operator resume",
        config: ConfigOpt = None,
        set_: SetOpt = None,
    ) -> None:
        """Leave HALTED/REDUCING after a kill or a storage failure (automation stays off until turned
        on; while storage still fails the engine stays REDUCING and says why)."""
        result = _request(config, set_, "resume", {"reason": reason})
        auto = "on" if result["automation_on"] else "off"
        why = f" ({result['reason']})" if result.get("reason") else ""
        typer.echo(f"trading {result['trading_state']}, automation {auto}{why}")
