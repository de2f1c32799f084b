"""``autotrader liqmap [--scan] [--json] [--limit N]`` and the liq-map pieces the runtime wires:
where the map lives, the scanner's settings, the periodic scan task."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from autotrader.cli_common import ConfigOpt, SetOpt, fail, get_config

if TYPE_CHECKING:  # the scanner pulls in driftpy/solana/aiohttp: imported where used
    from core.bus import Bus
    from core.config_schema import Config
    from core.liqmap import LiqMap
    from feeds.drift.scanner import Progress, ScanConfig

log = logging.getLogger(__name__)


def liqmap_dir(cfg: Config) -> Path:
    from autotrader.config import storage_root

    return Path(cfg.liqmap.output_dir) if cfg.liqmap.output_dir else storage_root(cfg) / "drift" / "liq_map"


def helius_dir(cfg: Config) -> Path:
    from autotrader.config import storage_root

    h = cfg.venues.helius
    return Path(h.output_dir) if h.output_dir else storage_root(cfg) / "helius" / "drift"


def scan_target(cfg: Config) -> tuple[ScanConfig | None, str]:
    """What the scanner scans: the engine's venue and cluster by default (``liqmap.source``), or
    ``(None, why not)``."""
    if cfg.liqmap.source == "engine" and cfg.engine.venue == "velocity":  # issue 17: Velocity's Users
        from autotrader.velocity_liqmap import velocity_scan_config

        return velocity_scan_config(cfg), ""
    if cfg.liqmap.source == "engine" and cfg.engine.venue != "drift":
        venue = cfg.engine.venue
        why = ("the paper venue trades on no chain" if venue == "paper"
               else f"no liq-map scanner for the {venue} venue yet")
        return None, f"{why}; set liqmap.source = \"drift\" to scan Drift ({cfg.venues.drift.cluster})"
    return scan_config(cfg), ""


def scan_config(cfg: Config) -> ScanConfig:
    from feeds.drift.scanner import ScanConfig

    lm, d = cfg.liqmap, cfg.venues.drift
    return ScanConfig(
        rpc_url=lm.rpc_url or d.rpc_url,
        program_id=d.program_id,
        market_index=d.perp_market_index,
        timeout_s=lm.timeout_s,
        retries=lm.retries,
        backoff_cap_s=lm.backoff_cap_s,
        bucket_bps=lm.bucket_bps,
        cluster=d.cluster,
    )


async def scan_and_store(cfg: Config, progress: Progress | None = None) -> LiqMap:
    import asyncio

    from feeds.drift.scanner import LiqMapScanner, ScanError
    from storage import liqmap_store

    target, why = scan_target(cfg)
    if target is None:
        raise ScanError(f"nothing to scan: {why}")
    scanner: LiqMapScanner
    if cfg.liqmap.source == "engine" and cfg.engine.venue == "velocity":  # issue 17: Velocity's Users
        from autotrader.velocity_liqmap import VelocityLiqMapScanner

        scanner = VelocityLiqMapScanner(target, cfg.venues.velocity.market, progress)
    else:
        scanner = LiqMapScanner(target, progress)
    try:
        m = await scanner.scan_once()
    finally:
        await scanner.close()
    await asyncio.to_thread(liqmap_store.save, m, liqmap_dir(cfg))
    return m


async def periodic_scans(cfg: Config, bus: Bus, logger: logging.Logger,
                         status: Callable[[str], None] | None = None) -> None:
    """The runtime's scanner: the stored map first (if any), then a scan every ``interval_s``;
    a failed scan is logged, said through ``status`` (the guard report shows it) and retried at
    the next interval (the old map ages out of liq_gap)."""
    import asyncio

    from core.liqmap import LIQ_MAP
    from core.secrets import redact_url, scrub
    from feeds.drift.scanner import ScanError
    from storage import liqmap_store

    say = status or (lambda _why: None)
    rpc = scan_config(cfg).rpc_url  # its key (query or path) never reaches the report or the log
    stored = await asyncio.to_thread(liqmap_store.load, liqmap_dir(cfg))
    if stored is not None:
        bus.publish(LIQ_MAP, stored)
    while True:
        say(f"scanning {cfg.venues.drift.cluster} ({redact_url(rpc)})")
        try:
            m = await scan_and_store(cfg)
            bus.publish(LIQ_MAP, m)
            logger.info("liqmap: %d positions from %d accounts, %d clusters", len(m.entries), m.scanned,
                        len(m.clusters))
        except (ScanError, OSError, ValueError) as e:
            logger.error("liqmap scan failed: %s", scrub(str(e), rpc))
            say(f"last scan failed: {scrub(str(e), rpc)}")
        except Exception as e:  # a bug must not end the periodic scans silently
            logger.exception("liqmap scan failed unexpectedly")
            say(f"last scan failed: {type(e).__name__}")
        await asyncio.sleep(cfg.liqmap.interval_s)


def _stderr_progress() -> Progress:
    last: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage == "download":
            mb = done >> 24  # a line per 16 MiB
            if last.get(stage) == mb:
                return
            last[stage] = mb
            of = f" of {total / 2**20:.0f}" if total else ""
            print(f"liqmap: downloaded {done / 2**20:.1f}{of} MiB", file=sys.stderr, flush=True)
        else:
            print(f"liqmap: decoded {done:,}/{total:,} accounts", file=sys.stderr, flush=True)

    return report


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def render_table(m: LiqMap, limit: int) -> str:
    rows = [f"liq map: {len(m.entries)} positions in market {m.market_index} from {m.scanned:,} accounts; "
            f"oracle {m.oracle_price:.4f}; slot {m.slot}; updated_at {m.updated_at}",
            f"{'account':<44} {'size':>12} {'entry':>10} {'liq px':>10} {'dist bps':>9} {'lev':>6} "
            f"{'health':>6} {'collat USD':>12}"]
    for e in m.entries[:limit]:
        rows.append(f"{e.account:<44} {e.position_size:>12.3f} {e.avg_entry_price:>10.4f} "
                    f"{_fmt(e.est_liq_px if e.est_liq_px > 0 else None, '.4f'):>10} "
                    f"{_fmt(e.distance_bps, '.1f'):>9} {_fmt(e.leverage, '.2f'):>6} {e.health:>6} "
                    f"{e.collateral_usd:>12.2f}{'  ~' if e.approximate else ''}")
    if any(e.approximate for e in m.entries[:limit]):
        rows.append("~ approximate: other perp positions, LP shares, unpriced spot markets, spot orders or "
                    "high-leverage mode (docs/LIQMAP.md)")
    if m.clusters:
        top = ", ".join(f"{c.price_mid:.2f} ${c.notional_usd:,.0f}" for c in m.clusters[:5])
        rows.append(f"largest {m.bucket_bps:g} bps clusters: {top}")
    return "\n".join(rows)


def liqmap(
    scan: Annotated[bool, typer.Option("--scan", help="Scan now against the configured RPC.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON array of positions.")] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10**9, help="At most N positions (nearest first).")
    ] = 50,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """The Drift liquidation map: positions sorted by distance to their liquidation price."""
    import asyncio

    from autotrader.exit_codes import ERROR, USAGE
    from core.liqmap import entry_json
    from feeds.drift.scanner import ScanError
    from storage import liqmap_store

    cfg = get_config(config, set_)
    if scan:
        if scan_target(cfg)[0] is None:
            fail(f"liqmap: nothing to scan: {scan_target(cfg)[1]}")
        try:
            m = asyncio.run(scan_and_store(cfg, _stderr_progress()))
        except ScanError as e:
            fail(f"liqmap scan {'refused' if e.refused else 'failed'}: {e}", USAGE if e.refused else ERROR)
        except OSError as e:
            fail(f"liqmap: cannot store the map in {liqmap_dir(cfg)}: {e}", 1)
    else:
        try:
            loaded = liqmap_store.load(liqmap_dir(cfg))
        except (OSError, ValueError) as e:
            fail(f"liqmap: cannot read the stored map in {liqmap_dir(cfg)}: {e}", 1)
        if loaded is None:
            fail(f"liqmap: no liquidation map stored yet in {liqmap_dir(cfg)}; run "
                 "'autotrader liqmap --scan' (or a live 'autotrader run')", 1)
        m = loaded
    if json_out:
        typer.echo(json.dumps([entry_json(e) for e in m.entries[:limit]]))
    else:
        typer.echo(render_table(m, limit))
