"""Fuzz the command line in-process (typer, the console script's own entry point): random commands,
options, arguments and config values (``--set``, environment, a TOML file) always end with a
documented exit code (0, 1, 2 or 3) and a clean message — never a traceback, never "internal error".

Nothing leaves the machine: every endpoint is 127.0.0.1:9 (closed) and a fuzzed URL is either
local or invalid; the long-running bodies (the runtime, the UI, the recorder, the live guard
report, the liq-map scan, the demo generator) are replaced by stand-ins after their arguments and
config have been validated, which is the part under test."""

from __future__ import annotations

import gzip
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import autotrader.logs
from autotrader.cli import app
from autotrader.config_cmd import flatten
from autotrader.exit_codes import run_app
from core.config_schema import Config
from core.secrets import Redactor
from storage.activity_log import ActivityLog
from tests.conftest import BTC_FILE
from tests.test_exit_codes import DEAD, dead_endpoints

DOCUMENTED = {0, 1, 2, 3}
KEYS = [k for k, _ in flatten(msgspec.to_builtins(Config()))]
URL_KEYS = [k for k in KEYS if k.endswith("_url")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Paths the fuzz may name, the environment, and stand-ins for the long-running bodies."""
    tmp = tmp_path_factory.mktemp("fuzz")
    tiny = tmp / "tiny.gz"
    with gzip.open(BTC_FILE, "rb") as src, gzip.open(tiny, "wb") as dst:
        for _ in range(400):
            dst.write(src.readline())
    garbage = tmp / "garbage.jsonl"
    garbage.write_bytes(b"\x00\xff not a recording\n")
    (tmp / "adir").mkdir()
    db = tmp / "state.sqlite3"
    log = ActivityLog(db)
    for i in range(50):
        log.append("guard_block", ts_ms=1_723_161_256_000 + i * 1000, message=f"blocked {i}")
    log.close()
    env = {**dead_endpoints(tmp), "XDG_CONFIG_HOME": str(tmp / "cfg"), "XDG_DATA_HOME": str(tmp / "data"),
           "XDG_CACHE_HOME": str(tmp / "cache"), "XDG_RUNTIME_DIR": str(tmp / "run"),
           "AUTOTRADER__LIQMAP__RPC_URL": DEAD,
           "AUTOTRADER__VENUES__DRIFT__WS_URL": DEAD.replace("http", "ws"),
           "AUTOTRADER__LIQMAP__RETRIES": "0"}
    paths = [str(tiny), str(db), str(garbage), str(tmp / "adir"), str(tmp / "missing.gz"), "/proc/nope/x", "",
             str(tmp / "out" / "new"), str(tmp / "adir" / "file.jsonl"), "-"]
    mp = pytest.MonkeyPatch()
    _stand_ins(mp, tiny)
    yield {"env": env, "paths": paths, "tmp": tmp}
    mp.undo()


def _stand_ins(mp: pytest.MonkeyPatch, tiny: Path) -> None:
    import autotrader.guards_cmd
    import autotrader.liqmap_cmd
    import autotrader.runtime
    import autotrader.ui_main
    import feeds.demo
    import feeds.record
    from core.bus import Bus
    from core.clock import WallClock
    from core.guard_monitor import GuardMonitor
    from feeds.drift.scanner import ScanError

    def runtime(*a: Any, **k: Any) -> int:
        return 0

    async def record(*a: Any, **k: Any) -> feeds.record.RecordResult:
        return feeds.record.RecordResult()

    async def guards(cfg: Config, timeout_s: float) -> Any:
        return GuardMonitor(Bus(), cfg.guards, WallClock(), "live").check()  # nothing came: stale

    async def scan(*a: Any, **k: Any) -> Any:
        raise ScanError("no RPC in the fuzz")

    mp.setattr(autotrader.runtime, "run_runtime", runtime)
    mp.setattr(autotrader.ui_main, "run_with_ui", runtime)
    mp.setattr(feeds.demo, "ensure_demo", lambda cache, seed: tiny)
    mp.setattr(feeds.record, "run_record", record)
    mp.setattr(autotrader.guards_cmd, "one_shot_report", guards)
    mp.setattr(autotrader.liqmap_cmd, "scan_and_store", scan)


def invoke(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    with CliRunner().isolation(env=env) as (out, err, _):
        code = run_app(app, argv)
        sys.stdout.flush()
        sys.stderr.flush()
        return code, out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")


def check(code: int, out: str, err: str, argv: list[str]) -> None:
    ctx = f"argv={argv!r}\nexit={code}\nstderr={err[-2000:]}"
    assert code in DOCUMENTED, ctx
    assert "Traceback" not in out + err and "internal error" not in err, ctx
    if code in (1, 2):
        assert err.strip(), "a failure says why on stderr\n" + ctx


# ---------------------------------------------------------------------------- strategies
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=16)
numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-1", "0", "1e-320", "0x10", "1_000", "5", "0.5",
                     "99999999999999999999", "1.5", "3"]),
)
weird = st.one_of(numbers, text, st.sampled_from(
    ["true", "false", "[1, 2]", "[]", "{a = 1}", '"quoted"', "'007'", "007", "''", "[50, 50]",
     "{kill = \"ctrl+x\"}", "127.0.0.1:8787", "0.0.0.0:8787", f'"{DEAD}"', DEAD, "ftp://x", "mainnet",
     "devnet", "drift", "paper", "always", "off", "DEBUG", "SOLUSDT", "sol/usdt"]))


def _local(value: str) -> bool:
    return "://" not in value or "://127.0.0.1:9" in value  # never an address outside this machine


config_value = weird.filter(_local)
set_key = st.one_of(st.sampled_from(KEYS), text, st.sampled_from(
    ["", ".", "a..b", "market", "engine.max_leverage", "venues.helius", "ui.keys.kill"]))
set_arg = st.one_of(st.builds(lambda k, v: f"{k}={v}", set_key, config_value), text.filter(_local))


@st.composite
def argvs(draw: st.DrawFn, paths: list[str]) -> list[str]:
    path = st.sampled_from(paths)
    dur = st.one_of(st.sampled_from(["90", "90s", "10m", "2h", "1d", "0", "-5", "soon", "1e400s", "infm"]),
                    text)
    opt_values: dict[str, st.SearchStrategy[str]] = {
        "--emit": st.one_of(st.sampled_from(["bars", "book", "trades", "liquidations", "funding", "guards",
                                             "intents"]), text),
        "--symbol": st.one_of(st.just("BTCUSDT"), text), "--speed": st.one_of(numbers, st.just("max"), text),
        "--seed": numbers, "--duration": dur, "--timeout": numbers, "--limit": numbers, "--since": st.one_of(
            dur, st.sampled_from(["2024-08-08", "2024-13-45T99:00", "1723161256505", "24h", "7d"]), text),
        "--kind": text, "--format": st.one_of(st.sampled_from(["jsonl", "csv"]), text), "--db": path,
        "--out": path, "--replay": path, "--size": numbers, "--sl": numbers, "--price": numbers,
        "--tp": st.one_of(numbers, st.builds(lambda a, b: f"{a}:{b}", numbers, numbers), text),
        "--at": st.one_of(dur, numbers), "--reason": text, "--config": path, "--set": set_arg,
    }
    flags = ["--json", "--no-ui", "--live", "--scan", "--store", "--no-store", "--progress", "--no-progress"]
    commands: list[tuple[list[str], list[str]]] = [
        (["config", "show"], ["--json"]),
        (["replay", draw(path)], ["--emit", "--symbol", "--progress", "--no-progress"]),
        (["backtest", draw(path)], ["--json"]),
        (["run"], ["--no-ui", "--replay", "--speed", "--store", "--no-store"]),
        (["demo"], ["--no-ui", "--speed", "--seed"]),
        (["record"], ["--out", "--duration"]),
        (["guards"], ["--json", "--timeout", "--live"]),
        (["liqmap"], ["--scan", "--json", "--limit"]),
        (["activity"], ["--json", "--kind", "--limit", "--since", "--db"]),
        (["activity", "export"], ["--format", "--since", "--kind", "--out", "--db"]),
        (["status"], ["--json"]),
        (["automation", draw(st.one_of(st.sampled_from(["on", "off"]), text))], []),
        (["resume"], ["--reason"]),
        (["intent", draw(st.one_of(st.sampled_from(["buy", "sell"]), text))],
         ["--size", "--sl", "--price", "--tp", "--replay", "--at", "--json"]),
        (["venue", "status"], ["--json"]),
        ([draw(text)], []),
    ]
    words, allowed = draw(st.sampled_from(commands))
    argv = list(words)
    required = {"replay": ["--emit"], "intent": ["--size", "--sl", "--replay"]}.get(words[0], [])
    for name in required:  # mostly present, so the command gets past its usage checks
        if draw(st.integers(0, 9)) < 8:
            argv += [name, draw(opt_values[name])]
    for name in draw(st.lists(st.sampled_from([*allowed, "--config", "--set", "--set"]), max_size=5)):
        argv += [name] if name in flags else [name, draw(opt_values[name])]
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:  # now and then a stray word or option
        argv.insert(draw(st.integers(0, len(argv))), draw(st.one_of(text, st.sampled_from(flags))))
    return argv


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_command_lines_end_cleanly(world: dict[str, Any], data: st.DataObject,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autotrader.logs, "_REDACTOR", Redactor())  # fuzzed "secrets" stay in this test
    argv = data.draw(argvs(world["paths"]))
    code, out, err = invoke(argv, world["env"])
    check(code, out, err, argv)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(KEYS), value=config_value, how=st.sampled_from(["--set", "env", "file"]))
def test_random_config_values_are_taken_or_refused_cleanly(
    world: dict[str, Any], key: str, value: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(autotrader.logs, "_REDACTOR", Redactor())
    env = dict(world["env"])
    argv = ["config", "show", "--json"]
    if how == "--set":
        argv += ["--set", f"{key}={value}"]
    elif how == "env":
        env["AUTOTRADER__" + key.upper().replace(".", "__")] = value
    else:
        section, _, leaf = key.rpartition(".")
        conf = world["tmp"] / "fuzz.toml"
        conf.write_text(f"[{section}]\n{leaf} = {value}\n", encoding="utf-8")
        argv += ["--config", str(conf)]
    code, out, err = invoke(argv, env)
    check(code, out, err, argv)
    assert code in (0, 2), err
    if code == 0:  # whatever was accepted is finite and what the config now says
        shown = orjson.loads(out)["settings"]
        for row in shown:
            v = row["value"]
            for x in v if isinstance(v, list) else [v]:
                assert not isinstance(x, float) or math.isfinite(x), row
        if how != "env" or key not in URL_KEYS:
            sources = {r["key"]: r["source"] for r in shown}
            touched = [k for k in sources if k == key or k.startswith(key + ".")]
            assert all(sources[k] != "default" for k in touched) or not touched, (key, sources)
    else:
        assert err.startswith("autotrader: config error") or "config error" in err, err
