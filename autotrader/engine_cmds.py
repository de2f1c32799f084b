"""Commands that talk to a running instance over its control socket: ``status``, ``kill``,
``intent``, ``automation``, ``resume``. Exit codes: 0 done, 1 no running instance (or a kill the
venue has not confirmed yet), 2 bad input (also when the daemon refuses it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from autotrader.cli_common import ConfigOpt, JsonOpt, SetOpt, fail, get_config


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

    from autotrader.drift_cmd import _store
    from autotrader.manual_cmd import protected_requests, run_manual_orders
    from core.manual import ManualIntentError, build_manual_intent
    from execution.drift.factory import owner_signer

    if price is None:
        fail("--manual needs --price (this command has no market data to take the touch from)")
    cfg = get_config(config, sets, {"venues.drift.allow_mainnet": True} if mainnet else None)
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
        signer = owner_signer(cfg, _store(cfg, passphrase_file))
    except Exception as exc:
        fail(f"signer: {exc}", 1)
    return run_manual_orders(cfg, protected_requests(intent, cfg.signal.market), signer, yes=yes,
                             mainnet_flag=mainnet)


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
                         help="Also close the position (default: engine.flatten_on_kill)."),
        ] = None,
        json_out: JsonOpt = False,
        config: ConfigOpt = None,
        set_: SetOpt = None,
    ) -> None:
        """Kill switch on the running instance: cancel every open order, automation off, HALTED."""
        if not reason.strip():
            fail("--reason must not be empty")
        result = _request(config, set_, "kill", {"reason": reason, "flatten": flatten}, timeout=10.0)
        if json_out:
            _echo_json(result)
        else:
            conf = "confirmed by the venue" if result.get("confirmed") else "NOT yet confirmed (retrying)"
            n, ms = result.get("cancelled", 0), result.get("elapsed_ms")
            head = str(result.get("trading_state")).upper()
            if result.get("already"):  # the wording of issue 14's kill_text
                typer.echo(f"trading was already {head} ({result.get('reason')}): this kill cancelled "
                           f"{n} order(s), {conf}")
            else:
                typer.echo(f"{head}: {result.get('reason')} — {n} order(s) cancelled, {conf} in {ms} ms")
            pos = result.get("position")
            if pos:
                typer.echo(f"position left open: {pos:+g} (use --flatten to close it)")
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
