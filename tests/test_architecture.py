"""Layering rules of ARCHITECTURE.md, enforced.

core/ may use asyncio primitives (the bus queues) but no I/O library, file or network access.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

IO_MODULES = {
    "aiohttp",
    "websockets",
    "textual",
    "rich",
    "driftpy",
    "solana",
    "solders",
    "sqlite3",
    "pyarrow",
    "keyring",
    "requests",
    "httpx",
    "zstandard",
    "gzip",
    "typer",
    "orjson",
    "platformdirs",
}
LAYERS = {"core": set(), "feeds": {"core"}, "storage": {"core"}, "execution": {"core"}, "tui": {"core"}}
PROJECT_PACKAGES = {"core", "feeds", "storage", "execution", "tui", "autotrader"}


def test_core_imports_no_io_library() -> None:
    code = (
        "import sys, json, pkgutil, importlib, core\n"
        "before = set(sys.modules)\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    loaded = set(json.loads(out.stdout))
    assert not (loaded & IO_MODULES), f"core pulls in I/O modules: {sorted(loaded & IO_MODULES)}"
    assert not (loaded & (PROJECT_PACKAGES - {"core"})), "core imports another layer"


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & PROJECT_PACKAGES


def test_layers_import_only_downwards() -> None:
    bad = []
    for layer, allowed in LAYERS.items():
        for py in (REPO_ROOT / layer).rglob("*.py"):
            extra = _imported_packages(py) - allowed - {layer}
            if extra:
                bad.append(f"{py.relative_to(REPO_ROOT)} imports {sorted(extra)}")
    assert not bad, "\n".join(bad)


def test_core_source_opens_no_files() -> None:
    offenders = []
    for py in (REPO_ROOT / "core").rglob("*.py"):
        tree = ast.parse(py.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"open", "print"}
            ):
                offenders.append(f"{py.name}:{node.lineno} {node.func.id}()")
    assert not offenders, offenders
