"""Observability: submit-to-confirm latency (on-chain confirmation for venues that confirm after the
send, the acknowledgement on paper), the trading gauges and counters the dashboard and alerts use,
every metric they query exported by a running instance, and the Prometheus rules valid."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from autotrader.metrics import Metrics
from core.engine_types import EngineConfig, EngineEvent
from core.models import FeedStatus
from core.venue import Order, OrderRequest, OrderStatus, OrderType, VenueError
from execution.drift.venue import DriftVenue
from execution.order_gateway import OrderGateway
from tests.conftest import REPO_ROOT
from tests.test_daemon import Daemon

OPS = REPO_ROOT / "ops"


class _Venue:
    """Just enough venue for the gateway: ``place`` accepts (or refuses) at once."""

    name = "fake"

    def __init__(self, confirms_async: bool) -> None:
        self.confirms_async = confirms_async
        self.refuse = False

    async def place(self, req: OrderRequest) -> Order:
        if self.refuse:
            raise VenueError("refused")
        return Order(order_id=req.client_tag, request=req, status=OrderStatus.OPEN)

    async def open_orders(self, market: str | None = None) -> list[Order]:
        return []

    async def fills(self, since_ts: int = 0) -> list[Any]:
        return []


def _req(tag: str) -> OrderRequest:
    return OrderRequest(market="SOL-PERP", side="buy", type=OrderType.LIMIT, size=1.0, price=100.0,
                        client_tag=tag)


async def test_latency_runs_to_the_on_chain_confirmation() -> None:
    seen: list[float] = []
    venue = _Venue(confirms_async=True)
    gw = OrderGateway(venue, EngineConfig(), now_ms=lambda: 0, on_latency=seen.append)  # type: ignore[arg-type]
    await gw.place(_req("i1:entry"), "i1", "entry")
    assert seen == []  # sent, not confirmed yet
    time.sleep(0.02)
    gw.confirmed("i1:entry")  # the order shows up on chain
    assert len(seen) == 1 and seen[0] >= 0.02
    gw.confirmed("i1:entry")  # a later update of the same order: measured once
    await gw.place(_req("i2:entry"), "i2", "entry")
    gw.confirmed("i2:entry", rejected=True)  # never landed: not a confirmation
    assert len(seen) == 1
    venue.refuse = True
    with pytest.raises(VenueError):
        await gw.place(_req("i3:entry"), "i3", "entry")
    assert gw._confirming == {}


async def test_paper_latency_is_submit_to_ack() -> None:
    seen: list[float] = []
    gw = OrderGateway(_Venue(confirms_async=False), EngineConfig(), now_ms=lambda: 0,  # type: ignore[arg-type]
                      on_latency=seen.append)
    await gw.place(_req("p:entry"), "p", "entry")
    assert len(seen) == 1 and seen[0] < 1.0
    assert DriftVenue.confirms_async is True


def test_trading_gauges_and_error_counters() -> None:
    m = Metrics(CollectorRegistry())

    def value(name: str, **labels: str) -> float | None:
        return m.registry.get_sample_value(name, labels)

    m.update_trading({"trading_state": "halted", "automation_on": False, "venue_state": "active",
                      "day_pnl_pct": -1.25}, 9_875.5, {"size": -2.5, "realized_pnl": 12.0}, -3.5)
    assert (value("trading_state"), value("automation_enabled"), value("venue_state")) == (2.0, 0.0, 0.0)
    assert (value("equity_usd"), value("day_pnl_pct"), value("position_size")) == (9_875.5, -1.25, -2.5)
    assert (value("realized_pnl_usd"), value("unrealized_pnl_usd")) == (12.0, -3.5)
    assert abs((value("autotrader_heartbeat_timestamp_seconds") or 0) - time.time()) < 5
    for kind, data in (("order_rejected", {"role": "tp"}), ("intent_rejected", {}), ("guard_block", {}),
                       ("error", {}), ("entry_abandoned", {})):
        m.on_engine_event(EngineEvent(kind=kind, intent_id="x", ts=1, data=data))
    assert value("orders_rejected_total", role="tp") == 1.0
    assert value("orders_rejected_total", role="entry") == 0
    assert value("intents_rejected_total") == 1.0 and value("guard_blocks_total") == 1.0
    assert value("engine_errors_total", kind="error") == 1.0
    assert value("engine_errors_total", kind="entry_abandoned") == 1.0
    m.on_feed_status(FeedStatus(feed="okx", state="stale", ts=1, last_msg_age_s=75.5))
    assert value("feed_last_message_age_seconds", feed="okx") == 75.5


# ------------------------------------------------------------------ dashboard and alert rules

PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "delta", "deriv", "by", "without",
    "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "histogram_quantile",
    "time", "absent", "absent_over_time", "changes", "resets", "clamp_min", "clamp_max", "max_over_time",
    "min_over_time", "avg_over_time", "last_over_time", "le", "offset", "label_replace", "topk", "abs",
    "vector", "scalar", "count_over_time", "sum_over_time", "inf", "nan",
}
SYNTHETIC = {"up"}  # added by Prometheus itself for each scrape target


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (label matchers, grouping and strings removed)."""
    e = re.sub(r'"[^"]*"', "", expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        tok = m.group(0)
        rest = e[m.end():].lstrip()
        if tok in PROMQL_WORDS or rest.startswith("("):
            continue
        names.add(tok)
    return names


def _exprs_in(obj: Any) -> list[str]:
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "expr" and isinstance(v, str):
                out.append(v)
            else:
                out += _exprs_in(v)
    elif isinstance(obj, list):
        for v in obj:
            out += _exprs_in(v)
    return out


def dashboard_exprs() -> list[str]:
    exprs: list[str] = []
    for path in sorted((OPS / "grafana").glob("*.json")):
        exprs += _exprs_in(json.loads(path.read_text()))
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((OPS / "prometheus" / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_metric_name_extraction() -> None:
    expr = ('histogram_quantile(0.99, sum by (le) (rate(order_submit_confirm_latency_seconds_bucket'
            '{job="autotrader"}[5m]))) > on(instance) group_left max(feed_state) or time() - x_seconds > 60')
    assert metric_names(expr) == {"order_submit_confirm_latency_seconds_bucket", "feed_state", "x_seconds"}


def test_dashboard_has_the_panels_the_issue_asks_for() -> None:
    [path] = sorted((OPS / "grafana").glob("*.json"))
    dash = json.loads(path.read_text())
    titles = " | ".join(p["title"].lower() for p in dash["panels"])
    for word in ("fills", "rejects", "errors", "kill switch", "trading state", "guard", "staleness",
                 "reconnects", "latency", "equity", "pnl"):
        assert word in titles, word
    exprs = " ".join(dashboard_exprs())
    for q in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({q}" in exprs


def test_alert_rules_cover_kill_stale_errors_and_silence() -> None:
    rules = alert_rules()
    names = {r["alert"] for r in rules}
    assert {"AutotraderKillSwitch", "AutotraderFeedStale", "AutotraderErrorBurst", "AutotraderDown",
            "AutotraderStalled"} <= names
    for r in rules:  # the YAML schema Prometheus expects of an alerting rule
        assert set(r) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, r
        assert isinstance(r["expr"], str) and r["expr"].strip()
        assert r.get("labels", {}).get("severity") in ("critical", "warning")
        assert "summary" in r.get("annotations", {})
        if "for" in r:
            assert re.fullmatch(r"\d+[smhd]", r["for"]), r["for"]
    down = next(r for r in rules if r["alert"] == "AutotraderDown")
    assert "up" in metric_names(down["expr"])


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian: prometheus)")
def test_promtool_checks_rules_and_config() -> None:
    rules = subprocess.run(["promtool", "check", "rules", str(OPS / "prometheus" / "alerts.yml")],
                           capture_output=True, text=True, timeout=60)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = str(OPS / "prometheus" / "prometheus.yml")
    conf = subprocess.run(["promtool", "check", "config", "--syntax-only", config], capture_output=True,
                          text=True, timeout=60)
    assert conf.returncode == 0, conf.stdout + conf.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exported(text: str) -> set[str]:
    lines = [x for x in text.splitlines() if x and not x.startswith("#")]
    return {x.split("{")[0].split(" ")[0] for x in lines}


def _queried() -> set[str]:
    names: set[str] = set()
    for e in [*dashboard_exprs(), *(r["expr"] for r in alert_rules())]:
        names |= metric_names(e)
    return names - SYNTHETIC


def test_every_queried_metric_is_exported_by_a_running_instance(demo_recording: Path,
                                                                 short_tmp: Path) -> None:
    port = _free_port()
    d = Daemon(short_tmp, demo_recording, "max", f"metrics.port={port}", "liqmap.scan=\"off\"")
    try:
        d.wait_for("the end of the replay", lambda s: s["replay_done"] is True, timeout=240)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 30
        missing: Sequence[str] = ()
        while time.monotonic() < deadline:
            with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            missing = sorted(_queried() - _exported(text))
            if not missing:
                break
            time.sleep(0.5)
        assert not missing, f"queried but not exported: {missing}"
        assert 'autotrader_info{data_source="replay",venue="paper"} 1.0' in text
        assert "order_submit_confirm_latency_seconds_count" in text
    finally:
        assert d.stop() == 0, d.tail()


@pytest.fixture
def short_tmp() -> Any:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="at-") as tmp:
        yield Path(tmp)
