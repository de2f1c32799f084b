"""Configuration schema: typed, validated sections (pure data; loading lives in autotrader.config).

Every layer may read these structs; only the composition root reads files and the environment.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import msgspec

from core.engine_types import EngineConfig
from core.guard_config import Age, GuardsConfig, RiskConfig, SignalConfig

Url = Annotated[str, msgspec.Meta(pattern=r"^(wss?|https?)://[^\s/]+.*$")]
Symbol = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]+$")]
OkxInst = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]+(-[A-Z0-9]+)+$")]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]  # a timeout or poll period


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class MarketConfig(_Section):
    binance_symbol: Symbol = "SOLUSDT"
    bybit_symbol: Symbol = "SOLUSDT"
    okx_usdc_inst: OkxInst = "SOL-USDC-SWAP"
    okx_usdt_inst: OkxInst = "SOL-USDT-SWAP"  # liquidations, open interest and funding


class BinanceConfig(_Section):
    ws_public_url: Url = "wss://fstream.binance.com/public/stream"
    ws_market_url: Url = "wss://fstream.binance.com/market/stream"
    rest_url: Url = "https://fapi.binance.com"


class BybitConfig(_Section):
    ws_url: Url = "wss://stream.bybit.com/v5/public/linear"
    rest_url: Url = "https://api.bybit.com"


class OkxConfig(_Section):
    ws_url: Url = "wss://ws.okx.com:8443/ws/v5/public"
    rest_url: Url = "https://www.okx.com"


Base58Key = Annotated[str, msgspec.Meta(pattern=r"^([1-9A-HJ-NP-Za-km-z]{32,44})?$")]


class DriftConfig(_Section):
    cluster: Literal["devnet", "mainnet"] = "devnet"
    rpc_url: Url = "https://api.devnet.solana.com"
    ws_url: Url = "wss://api.devnet.solana.com"
    program_id: Base58Key = "dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH"
    authority: Base58Key = ""
    sub_account: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    # --- issue 8: the Drift venue (execution/drift); see docs/DRIFT_VENUE.md
    allow_mainnet: bool = False  # mainnet is refused unless this (or --mainnet) says so
    perp_market_index: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    use_delegate: bool = True  # trade as the app's delegate key (see docs/DELEGATION.md)
    # the cap itself is engine.priority_fee_cap (one setting: the sender's ceiling and the preflight check)
    priority_fee_percentile: Annotated[float, msgspec.Meta(ge=0, le=100)] = 75.0
    compute_unit_limit: Annotated[int, msgspec.Meta(ge=10_000, le=1_400_000)] = 400_000
    # --- issue 14: the send path (execution/solana_send; docs/DRIFT_VENUE.md "Order states")
    confirm_poll_s: Seconds = 1.0  # signature statuses while a transaction is followed
    rebroadcast_s: Seconds = 2.0  # the same signed bytes again until confirmed or expired
    ack_wait_s: Seconds = 2.0  # a call waits this long for sendTransaction's answer, then: unknown
    unknown_after_s: Seconds = 10.0  # sent but unconfirmed this long: reported unknown
    max_resigns: Annotated[int, msgspec.Meta(ge=0, le=10)] = 1  # only after a copy provably cannot land
    session_ttl_h: Annotated[float, msgspec.Meta(gt=0, le=24 * 365)] = 24.0  # delegate session length
    delegation_check_s: Annotated[float, msgspec.Meta(gt=0, le=30)] = 30.0  # delegate re-read period
    account_poll_s: Seconds = 1.0
    max_account_age_s: Seconds = 15.0  # older User/State data: the venue reports itself down
    rpc_timeout_s: Seconds = 10.0
    lookup_tables: list[Base58Key] = msgspec.field(default_factory=list)  # fetched once, not per send

    def __post_init__(self) -> None:
        if self.cluster == "mainnet" and not self.allow_mainnet:
            raise ValueError(
                "allow_mainnet: cluster = \"mainnet\" needs an explicit opt-in "
                "(venues.drift.allow_mainnet = true or --mainnet)"
            )


MarketName = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{1,16}-PERP$")]


class VelocityConfig(_Section):
    """The Velocity venue (issue 17; docs/VELOCITY_VENUE.md): Drift's successor program."""

    cluster: Literal["devnet", "mainnet"] = "devnet"
    rpc_url: Url = "https://api.devnet.solana.com"
    program_id: Base58Key = "vELoC1audYbSYVRXn1vPaV8Axoa9oU6BYmNGZZBDZ1P"  # devnet and mainnet
    authority: Base58Key = ""  # the owner wallet's public key (the User account's PDA seed)
    sub_account: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    allow_mainnet: bool = False
    market: MarketName = "SOL-PERP"  # the perp market's index is read from the chain by this name
    use_delegate: bool = True  # sign as the app's delegate key (keys.delegate_name)
    priority_fee_percentile: Annotated[float, msgspec.Meta(ge=0, le=100)] = 75.0
    compute_unit_limit: Annotated[int, msgspec.Meta(ge=10_000, le=1_400_000)] = 400_000
    # the send path is Drift's (execution/solana_send; docs/DRIFT_VENUE.md "Order states")
    confirm_poll_s: Seconds = 1.0  # signature statuses while a transaction is followed
    rebroadcast_s: Seconds = 2.0  # the same signed bytes again until confirmed or expired
    ack_wait_s: Seconds = 2.0  # a call waits this long for sendTransaction's answer, then: unknown
    unknown_after_s: Seconds = 10.0  # sent but unconfirmed this long: reported unknown
    max_resigns: Annotated[int, msgspec.Meta(ge=0, le=10)] = 1  # only after a copy provably cannot land
    session_ttl_h: Annotated[float, msgspec.Meta(gt=0, le=24 * 365)] = 24.0  # delegate session length
    delegation_check_s: Annotated[float, msgspec.Meta(gt=0, le=30)] = 30.0  # delegate re-read period
    account_poll_s: Seconds = 1.0
    max_account_age_s: Seconds = 15.0
    rpc_timeout_s: Seconds = 10.0

    def __post_init__(self) -> None:
        if self.cluster == "mainnet" and not self.allow_mainnet:
            raise ValueError(
                "allow_mainnet: cluster = \"mainnet\" needs an explicit opt-in "
                "(venues.velocity.allow_mainnet = true or --mainnet)"
            )


class KeysConfig(_Section):
    """Key storage (issue 8; docs/DELEGATION.md): OS keyring first, encrypted file as fallback."""

    backend: Literal["auto", "keyring", "file"] = "auto"  # auto: keyring if usable, else the file
    keyring_service: Annotated[str, msgspec.Meta(min_length=1)] = "autotrader"
    encrypted_file: str = ""  # default: <platformdirs data dir>/keys.enc
    delegate_name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]+$")] = "drift-delegate"
    owner_name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]+$")] = "drift-owner"
    owner_signer: Literal["local", "ledger"] = "local"  # who signs delegate set/revoke and manual orders
    ledger_path: Annotated[str, msgspec.Meta(pattern=r"^44'/501'(/[0-9]+'?)*$")] = "44'/501'/0'"
    ledger_transport: Literal["hid", "tcp"] = "hid"
    speculos: str = "127.0.0.1:9999"  # host:port of the Speculos APDU port (ledger_transport = tcp)


HostPort = Annotated[str, msgspec.Meta(pattern=r"^(|(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5})$")]


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.x.y.z`` or ``::1`` (a bind address reachable from this machine only)."""
    h = host.strip("[]").lower()
    if h in ("localhost", "::1"):
        return True
    parts = h.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and int(p) <= 255 for p in parts)


class HeliusConfig(_Section):
    """The Helius webhook receiver (issue 7; docs/LIQMAP.md): ``POST /webhooks/helius``."""

    listen: HostPort = ""  # bind address "HOST:PORT" (e.g. "127.0.0.1:8787"); "" = off
    #: listen on a non-loopback address (e.g. 0.0.0.0): refused unless this says so
    bind_public: bool = False
    auth_header: str = ""  # the webhook's authHeader; compared with the Authorization header
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    header_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0  # request line + headers
    body_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 15.0  # the whole body
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 64  # more are closed at once
    dedupe_signatures: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 100_000  # remembered
    #: how long a delivered signature is remembered (SQLite, survives restarts); Helius retries
    #: failed deliveries for a while, never for days
    dedupe_ttl_s: Annotated[float, msgspec.Meta(ge=60, le=30 * 86_400)] = 3 * 86_400.0
    output_dir: str = ""  # Parquet of the kept transactions; default <storage root>/helius/drift

    def __post_init__(self) -> None:
        if self.listen:
            host, port_text = self.listen.rsplit(":", 1)
            port = int(port_text)
            if not 0 < port <= 65535:
                raise ValueError(f"listen: port must be 1..65535, got {port} (form HOST:PORT)")
            if not self.bind_public and not is_loopback_host(host):
                raise ValueError(f"listen: {host} is not a loopback address; set "
                                 "venues.helius.bind_public = true to accept webhooks from other hosts")
            if not self.auth_header:
                raise ValueError("auth_header: required when listen is set (the webhook's authHeader; "
                                 "unauthenticated webhooks are refused)")


class LiqMapConfig(_Section):
    """The Drift liquidation-map scanner (issue 7; docs/LIQMAP.md)."""

    scan: Literal["live", "always", "off"] = "live"  # live: in live runs; always: also replay/demo
    # engine: the engine's venue and cluster (drift: venues.drift.*; paper and velocity: no scan);
    # drift: always venues.drift.* (cluster, rpc_url, program_id), whatever the engine trades
    source: Literal["engine", "drift"] = "engine"
    interval_s: Annotated[float, msgspec.Meta(ge=60, le=86_400)] = 3600.0
    rpc_url: Annotated[str, msgspec.Meta(pattern=r"^(|https?://[^\s/]+.*)$")] = ""  # "": venues.drift
    timeout_s: Seconds = 120.0  # per getProgramAccounts call: slow on mainnet
    retries: Annotated[int, msgspec.Meta(ge=0, le=20)] = 4
    backoff_cap_s: Seconds = 60.0
    bucket_bps: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 25.0  # cluster width
    max_age_s: Age = 7200.0  # an older map is not given to the liq_gap guard
    output_dir: str = ""  # latest.json + latest.parquet; default <storage root>/drift/liq_map


class VenuesConfig(_Section):
    binance: BinanceConfig = msgspec.field(default_factory=BinanceConfig)
    bybit: BybitConfig = msgspec.field(default_factory=BybitConfig)
    okx: OkxConfig = msgspec.field(default_factory=OkxConfig)
    drift: DriftConfig = msgspec.field(default_factory=DriftConfig)
    velocity: VelocityConfig = msgspec.field(default_factory=VelocityConfig)
    helius: HeliusConfig = msgspec.field(default_factory=HeliusConfig)


class FeedsConfig(_Section):
    """Max silence per feed before it is reported stale (seconds), and the market-data sanity band
    (core/sanity.py): a trade, mark or liquidation price further than ``price_band_pct`` % from the
    reference (the primary book's mid or a mark of the same asset, at most
    ``price_reference_max_age_s`` away from the event) is dropped and counted."""

    binance_max_age_s: Seconds = 5.0
    bybit_max_age_s: Seconds = 30.0
    okx_max_age_s: Seconds = 60.0
    price_band_pct: Annotated[float, msgspec.Meta(gt=0, le=100)] = 10.0
    price_reference_max_age_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0


class StorageConfig(_Section):
    root: str = ""
    #: activity log + order/intent journal + paper venue state (SQLite, WAL); default: data dir
    state_db: str = ""
    flush_interval_s: Seconds = 60.0
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36_500)] = 30


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    status_interval_s: Seconds = 10.0




class PaperConfig(_Section):
    """The paper venue (the default venue): starting equity, fees and the fill model."""

    equity_usd: Annotated[float, msgspec.Meta(gt=0, le=1e12)] = 10_000.0
    #: negative = a rebate, never larger than the taker fee (a round trip would pay)
    maker_fee_bps: Annotated[float, msgspec.Meta(ge=-100, le=100)] = -0.25
    taker_fee_bps: Annotated[float, msgspec.Meta(ge=0, le=100)] = 3.5
    tick_size: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 0.01
    funding: bool = False  # accrue funding on the position from the funding feed
    latency_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 0
    slippage_ticks: Annotated[float, msgspec.Meta(ge=0, le=10_000)] = 1.0
    queue_behind_factor: Annotated[float, msgspec.Meta(ge=0, le=1000)] = 1.0

    def __post_init__(self) -> None:
        if self.maker_fee_bps < -self.taker_fee_bps:
            raise ValueError(f"maker_fee_bps: a rebate of {-self.maker_fee_bps:g} bps is larger than the "
                             f"taker fee {self.taker_fee_bps:g} bps (a round trip would earn money)")


class ControlConfig(_Section):
    """The local control socket (``autotrader kill|status|guards|intent`` reach a running instance)."""

    socket_path: str = ""  # default: the user runtime dir, control.sock


class MetricsConfig(_Section):
    """Prometheus metrics served on loopback (``port = 0``: off)."""

    host: Annotated[str, msgspec.Meta(pattern=r"^(127\.\d+\.\d+\.\d+|::1|localhost)$")] = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0


KeyName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_+,]+$")]
BindingId = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_.]*$")]


class UiConfig(_Section):
    """The terminal UI (issue 6; docs/TUI.md). ``keys`` remaps bindings by id, e.g.
    ``kill = "ctrl+x"`` (ids: kill, automation, order, settings, filter, help, quit)."""

    keys: dict[BindingId, KeyName] = msgspec.field(default_factory=dict)
    #: repaints per second per widget at most (charts repaint at most once a second)
    max_fps: Annotated[float, msgspec.Meta(gt=0, le=10)] = 4.0


class Config(_Section):
    market: MarketConfig = msgspec.field(default_factory=MarketConfig)
    venues: VenuesConfig = msgspec.field(default_factory=VenuesConfig)
    feeds: FeedsConfig = msgspec.field(default_factory=FeedsConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    guards: GuardsConfig = msgspec.field(default_factory=GuardsConfig)
    signal: SignalConfig = msgspec.field(default_factory=SignalConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    paper: PaperConfig = msgspec.field(default_factory=PaperConfig)
    keys: KeysConfig = msgspec.field(default_factory=KeysConfig)
    engine: EngineConfig = msgspec.field(default_factory=EngineConfig)
    control: ControlConfig = msgspec.field(default_factory=ControlConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    liqmap: LiqMapConfig = msgspec.field(default_factory=LiqMapConfig)
    ui: UiConfig = msgspec.field(default_factory=UiConfig)

    def __post_init__(self) -> None:
        if self.risk.leverage > self.guards.max_leverage:
            raise ValueError(f"risk.leverage: {self.risk.leverage:g} is above guards.max_leverage "
                             f"{self.guards.max_leverage:g} (every signal intent would be refused)")


MAX_CONFIG_INT = 2**53  # larger integers do not survive JSON (and mean a typo)


def bad_number_key(obj: Any, prefix: str = "") -> str | None:
    """The dotted key of the first number in ``obj`` (a config tree or Struct) that no setting can
    mean: a float that is inf or NaN, an integer beyond ±2**53; None when there is none. Range
    constraints alone let ``inf`` through (``inf > 0``) and NaN through plain ``float`` fields."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else prefix
    if isinstance(obj, int) and not isinstance(obj, bool):
        return None if -MAX_CONFIG_INT <= obj <= MAX_CONFIG_INT else prefix
    if isinstance(obj, msgspec.Struct):
        items: Any = ((f, getattr(obj, f)) for f in obj.__struct_fields__)
    elif isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = ((f"[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for name, value in items:
        key = f"{prefix}{name}" if str(name).startswith("[") or not prefix else f"{prefix}.{name}"
        found = bad_number_key(value, key)
        if found is not None:
            return found
    return None


def engine_config(cfg: Config) -> EngineConfig:
    """``[engine]`` completed with the settings other sections own (one source of truth)."""
    return msgspec.structs.replace(
        cfg.engine,
        max_leverage=cfg.guards.max_leverage,
        risk_per_trade_pct=cfg.risk.risk_per_trade_pct,
        daily_stop_pct=cfg.guards.daily_stop.max_loss_pct,
        atr_period=cfg.guards.atr_period,
        atr_bar_minutes=cfg.guards.atr_bar_minutes,
        equity_usd=cfg.paper.equity_usd,
        market=cfg.signal.market,
    )


def to_dict(cfg: Config) -> dict[str, object]:
    """The config as plain builtins, secrets included: show or store only its
    :func:`core.secrets.redact_tree` form."""
    result: dict[str, object] = msgspec.to_builtins(cfg)
    return result
