"""Prometheus metrics: names, guard gauge, counters by delta, loopback HTTP."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from autotrader.metrics import Metrics
from core.bus import Bus, Topics
from core.guards import GUARDS, Depth, GuardCheck, GuardReport, Status
from core.models import FeedStatus


def _check(name: str, level: str) -> GuardCheck:
    return GuardCheck(name=name, value=1.0, threshold=1.0, level=level, blocking=level != "passing",  # type: ignore[arg-type]
                      reason=f"{name} {level}")


def _report(status: Status, checks: list[GuardCheck] | None = None) -> GuardReport:
    return GuardReport(
        ts=1, spread_bps=1.0, depth_10bps=Depth(bid_usd=1.0, ask_usd=1.0), funding_apr=0.0, basis_bps=0.0,
        oi_notional=0.0, liq_events_5m=0, status=status, warnings=[], blocks=[], ages_s={},
        data_source="replay", checks=checks or [],
    )


def _value(m: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return m.registry.get_sample_value(name, labels or {})


def test_render_contains_metric_names() -> None:
    m = Metrics(CollectorRegistry())
    m.order_submitted()
    m.order_filled()
    m.order_cancelled("sl")
    m.submit_confirmed(0.3)
    text = m.render().decode()
    for name in (
        "orders_submitted_total", "orders_filled_total", "orders_cancelled_total",
        "order_submit_confirm_latency_seconds_bucket", "guard_breaches_total", "guard_status",
        "feed_messages_total", "feed_reconnects_total",
    ):
        # counters with labels appear once a series exists; the help line is always there
        assert name.removesuffix("_total").removesuffix("_bucket") in text, name
    assert 'orders_cancelled_total{role="sl"} 1.0' in text
    assert _value(m, "order_submit_confirm_latency_seconds_count") == 1.0


def test_registries_are_independent() -> None:
    a, b = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
    a.order_submitted()
    assert _value(a, "orders_submitted_total", {"role": "entry"}) == 1.0
    assert _value(b, "orders_submitted_total", {"role": "entry"}) == 0.0  # exported from the start


def test_guard_gauge_follows_reports() -> None:
    bus = Bus()
    m = Metrics(CollectorRegistry())
    off = m.bind_bus(bus)
    assert _value(m, "guard_status") == 3.0  # nothing seen yet: stale (fail closed)
    expected = {"passing": 0.0, "warning": 1.0, "breach": 2.0, "stale": 3.0}
    for status in ("passing", "warning", "breach", "stale", "passing"):
        bus.publish(GUARDS, _report(status))
        assert _value(m, "guard_status") == expected[status]
    off()
    bus.publish(GUARDS, _report("breach"))
    assert _value(m, "guard_status") == 0.0


def test_guard_breaches_count_transitions() -> None:
    bus = Bus()
    m = Metrics(CollectorRegistry())
    m.bind_bus(bus)
    liq = {"guard": "liquidations"}
    checks = [_check("liquidations", "passing"), _check("leverage", "skipped")]
    bus.publish(GUARDS, _report("passing", checks))
    assert _value(m, "guard_breaches_total", liq) == 0.0  # exported from the start
    bus.publish(GUARDS, _report("breach", [_check("liquidations", "breach")]))
    bus.publish(GUARDS, _report("breach", [_check("liquidations", "breach")]))  # same breach, repeated
    assert _value(m, "guard_breaches_total", liq) == 1.0
    assert _value(m, "guard_check_status", liq) == 2.0
    bus.publish(GUARDS, _report("passing", [_check("liquidations", "passing")]))
    bus.publish(GUARDS, _report("breach", [_check("liquidations", "breach")]))
    assert _value(m, "guard_breaches_total", liq) == 2.0
    assert _value(m, "guard_check_status", {"guard": "leverage"}) is None  # skipped: not exported


def test_feed_counters_by_delta() -> None:
    bus = Bus()
    m = Metrics(CollectorRegistry())
    m.bind_bus(bus)
    b = {"feed": "binance"}

    def st(messages: int, reconnects: int, state: str = "live", feed: str = "binance") -> FeedStatus:
        return FeedStatus(feed=feed, state=state, ts=0, messages=messages, reconnects=reconnects)  # type: ignore[arg-type]

    bus.publish(Topics.FEED_STATUS, st(100, 0))
    assert _value(m, "feed_messages_total", b) == 100.0
    assert _value(m, "feed_reconnects_total", b) == 0.0
    bus.publish(Topics.FEED_STATUS, st(250, 1, "connecting"))
    bus.publish(Topics.FEED_STATUS, st(250, 1, "connecting"))  # repeated status: no double count
    assert _value(m, "feed_messages_total", b) == 250.0
    assert _value(m, "feed_reconnects_total", b) == 1.0
    assert _value(m, "feed_state", b) == 1.0
    bus.publish(Topics.FEED_STATUS, st(30, 0))  # source restarted: its counters went back
    assert _value(m, "feed_messages_total", b) == 280.0
    bus.publish(Topics.FEED_STATUS, st(5, 0, "down", feed="okx"))
    assert _value(m, "feed_messages_total", {"feed": "okx"}) == 5.0
    assert _value(m, "feed_state", {"feed": "okx"}) == 3.0
    assert _value(m, "feed_messages_total", b) == 280.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_on_loopback() -> None:
    m = Metrics(CollectorRegistry())
    assert m.start_http("127.0.0.1", 0) is None  # 0 = off
    with pytest.raises(ValueError, match="loopback"):
        m.start_http("0.0.0.0", 9999)
    m.order_submitted()
    server = m.start_http("127.0.0.1", _free_port())
    assert server is not None
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        with opener.open(server.url, timeout=5) as resp:
            body = resp.read().decode()
        assert 'orders_submitted_total{role="entry"} 1.0' in body
    finally:
        server.close()
