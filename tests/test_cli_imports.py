"""Import budget of the command line: the light commands never import a heavy module.

``--version``, ``--help`` (every command's too), and ``status``, ``kill``, ``activity``, ``guards``
talking to a running instance run in a fresh interpreter each; what that interpreter holds in
``sys.modules`` when it exits is compared with the heavy list (driftpy, solana, textual, aiohttp,
pyarrow, numpy...: about 1.5 s and 100 MB before this budget). Start time and peak RSS are
measured by ``bench/bench_cli.py``, not here (timed tests are flaky on a shared machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT
from tests.test_daemon import Daemon, short_tmp  # noqa: F401  (the fixture)

#: third-party packages a light command must not import (top-level names)
HEAVY = frozenset({
    "driftpy", "solana", "solders", "anchorpy", "pyarrow", "textual", "aiohttp", "prometheus_client",
    "numpy", "httpx", "websockets", "zstandard", "cryptography", "keyring", "construct", "jsonrpcclient",
})
#: the project's own packages that pull those in (the daemon's side, not the CLI's)
HEAVY_OWN = frozenset({"feeds", "execution", "tui"})

#: runs the CLI like the console script and writes the top-level names in sys.modules at exit
PROBE = """
import atexit, json, sys
out = sys.argv.pop(1)
def dump():
    with open(out, "w") as fh:
        json.dump(sorted({m.split(".")[0] for m in list(sys.modules)}), fh)
atexit.register(dump)
sys.argv[0] = "autotrader"
from autotrader.cli import main
main()
"""


def probe(tmp: Path, *args: str, env: dict[str, str] | None = None,
          timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``autotrader ARGS`` in a fresh interpreter; its exit and the heavy packages it imported."""
    out = tmp / f"modules-{os.getpid()}-{len(list(tmp.glob('modules-*')))}.json"
    proc = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env or dict(os.environ), timeout=timeout)
    loaded = set(json.loads(out.read_text()))
    return proc, loaded & (HEAVY | HEAVY_OWN)


def test_importing_the_cli_is_light(tmp_path: Path) -> None:
    code = ("import sys, autotrader.cli; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                         timeout=60, check=True)
    loaded = set(out.stdout.split())
    assert "typer" in loaded  # the probe sees imports at all
    heavy = loaded & (HEAVY | HEAVY_OWN | {"core", "storage", "asyncio", "msgspec"})
    assert not heavy, heavy


def test_the_probe_sees_a_heavy_import(tmp_path: Path) -> None:
    """The budget can fail: ``replay --help`` is light, but a replay itself imports the codecs."""
    proc, heavy = probe(tmp_path, "replay", str(tmp_path / "missing.gz"), "--emit", "bars")
    assert proc.returncode != 0
    assert "feeds" in heavy, heavy


def test_version_comes_from_the_package_metadata(tmp_path: Path) -> None:
    from importlib.metadata import version

    proc, heavy = probe(tmp_path, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"autotrader {version('autotrader')}"
    assert not heavy


#: every ``--help`` of the command tree in ONE interpreter (the union of what they import)
HELP_PROBE = """
import contextlib, io, json, sys
from autotrader.cli import app
outs = []
for argv in json.loads(sys.argv[1]):
    buf, code = io.StringIO(), 0
    with contextlib.redirect_stdout(buf):
        try:
            app(argv, prog_name="autotrader")
        except SystemExit as e:
            code = e.code or 0
    outs.append([code, buf.getvalue()])
print(json.dumps({"outs": outs, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _listed(help_text: str) -> list[str]:
    """The commands a ``--help`` lists (typer's rich panel: ``│ name   help... │``, wrapped help
    text indented)."""
    lines = help_text.split("Commands")[1].splitlines()[1:]
    return [line[2:].split(" ")[0] for line in lines if line.startswith("│ ") and line[2] != " "]


def test_help_is_complete_and_light() -> None:
    import typer.main

    from autotrader.cli import app

    root: Any = typer.main.get_command(app)
    groups = {name: cmd for name, cmd in root.commands.items() if hasattr(cmd, "commands")}
    argvs = [["--help"]] + [[name, "--help"] for name in root.commands]
    argvs += [[g, leaf, "--help"] for g, cmd in groups.items() for leaf in cmd.commands]
    out = subprocess.run([sys.executable, "-c", HELP_PROBE, json.dumps(argvs)], capture_output=True,
                         text=True, cwd=REPO_ROOT, env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    heavy = set(got["modules"]) & (HEAVY | HEAVY_OWN)
    assert not heavy, heavy
    helps = {" ".join(argv[:-1]): (code, text) for argv, (code, text) in zip(argvs, got["outs"], strict=True)}
    for name, (code, text) in helps.items():
        assert code == 0 and "Usage" in text, (name, code, text)

    def visible(group: Any) -> list[str]:
        return sorted(n for n, c in group.commands.items() if not c.hidden)

    assert sorted(_listed(helps[""][1])) == visible(root)
    for g, cmd in groups.items():
        assert sorted(_listed(helps[g][1])) == visible(cmd), g


def test_light_commands_against_a_running_instance(btc_file: Path, short_tmp: Path) -> None:  # noqa: F811
    d = Daemon(short_tmp, btc_file, "max")
    try:
        d.wait_for("the daemon to answer", lambda s: s["engine"]["trading_state"] == "active")
        db = str(short_tmp / "state.sqlite3")
        runs: dict[str, tuple[subprocess.CompletedProcess[str], set[str]]] = {}
        for args in (("status",), ("status", "--json"), ("guards",), ("guards", "--json"),
                     ("activity",), ("activity", "--json"), ("activity", "--db", db, "--limit", "5"),
                     ("kill", "--reason", "import budget test"), ("kill", "--reason", "again", "--json")):
            runs[" ".join(args)] = probe(short_tmp, *args, env=d.env)
    finally:
        code = d.stop()
    assert code == 0, d.tail()
    for name, (proc, heavy) in runs.items():
        ok = {0, 3} if name.startswith("guards") else {0}  # 3: the guard report blocks entries
        assert proc.returncode in ok, (name, proc.stdout, proc.stderr)
        assert not heavy, (name, heavy)
    report = json.loads(runs["guards --json"][0].stdout)
    assert runs["guards --json"][0].returncode == (3 if report["blocks"] else 0)
    assert "trading" in runs["status"][0].stdout
    assert json.loads(runs["status --json"][0].stdout)["data_source"] == "replay"
    assert json.loads(runs["guards --json"][0].stdout)["data_source"] == "replay"
    assert "guards:" in runs["guards"][0].stdout
    assert "HALTED" in runs["kill --reason import budget test"][0].stdout
    assert json.loads(runs["kill --reason again --json"][0].stdout)["already"] is True
    assert isinstance(json.loads(runs["activity --json"][0].stdout), list)


def test_status_without_a_running_instance_stays_light(tmp_path: Path, short_tmp: Path) -> None:  # noqa: F811
    env = {**os.environ, "AUTOTRADER__CONTROL__SOCKET_PATH": str(short_tmp / "none.sock")}
    proc, heavy = probe(tmp_path, "status", env=env)
    assert proc.returncode == 1 and "no running autotrader" in proc.stderr
    assert not heavy, heavy
