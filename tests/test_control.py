"""Control endpoint: request/response over an owner-only UNIX socket, one instance per path."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autotrader.control import ControlError, ControlServer, RemoteError, default_socket_path, request


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # short path: AF_UNIX paths are limited to 107 bytes and pytest's tmp_path can be long
    with tempfile.TemporaryDirectory(prefix="at-ctl-") as d:
        yield Path(d)


def _handlers(calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    async def kill(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(("kill", args))
        return {"killed": True, "reason": args.get("reason")}

    async def status(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(("status", args))
        return {"automation": "off", "nan": float("nan")}

    async def guards(args: dict[str, Any]) -> list[str]:
        return ["spread"]

    async def intent(args: dict[str, Any]) -> Any:
        raise ValueError(f"no such intent {args.get('id')!r}")

    return {"kill": kill, "status": status, "guards": guards, "intent": intent}


async def test_request_response(sock_dir: Path) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    path = sock_dir / "control.sock"
    async with ControlServer(path, _handlers(calls)):
        assert await request(path, "kill", {"reason": "test"}) == {"killed": True, "reason": "test"}
        assert await request(path, "status", {}) == {"automation": "off", "nan": None}
        assert await request(path, "guards") == ["spread"]
        with pytest.raises(RemoteError, match="intent failed: no such intent 'x'"):
            await request(path, "intent", {"id": "x"})
        # concurrent clients
        results = await asyncio.gather(*(request(path, "guards") for _ in range(20)))
        assert results == [["spread"]] * 20
    assert calls == [("kill", {"reason": "test"}), ("status", {})]
    assert not path.exists()  # close() removes the socket


async def test_unknown_command_and_bad_requests(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"
    async with ControlServer(path, _handlers([])):
        known = r"unknown command 'reboot' \(known: guards, intent, kill, status\)"
        with pytest.raises(RemoteError, match=known):
            await request(path, "reboot")

        async def raw(line: bytes) -> bytes:
            reader, writer = await asyncio.open_unix_connection(str(path))
            writer.write(line)
            await writer.drain()
            out = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return out

        assert b'"ok":false' in await raw(b"not json\n")
        assert b"JSON object" in await raw(b"[1, 2]\n")
        assert b'string \\"cmd\\"' in await raw(b'{"args": {}}\n')
        assert b"must be a JSON object" in await raw(b'{"cmd": "kill", "args": [1]}\n')


async def test_socket_permissions(sock_dir: Path) -> None:
    path = sock_dir / "new" / "dir" / "control.sock"
    async with ControlServer(path, _handlers([])):
        st = path.lstat()
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_stale_socket_replaced(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: what a SIGKILLed daemon leaves behind
    assert path.exists()
    async with ControlServer(path, _handlers([])):
        assert await request(path, "guards") == ["spread"]


async def test_regular_file_never_removed(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"
    path.write_text("precious")
    with pytest.raises(ControlError, match="not a socket"):
        await ControlServer(path, _handlers([])).start()
    assert path.read_text() == "precious"


async def test_second_server_refused(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"
    async with ControlServer(path, _handlers([])):
        with pytest.raises(ControlError, match="another autotrader instance"):
            await ControlServer(path, _handlers([])).start()
        assert await request(path, "guards") == ["spread"]  # the first one still answers
    # once the first is closed, a new one may start
    async with ControlServer(path, _handlers([])):
        assert await request(path, "guards") == ["spread"]


def test_second_server_in_other_process_refused(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"
    code = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from autotrader.control import ControlServer
        async def main():
            async def ping(args):
                return "pong"
            async with ControlServer(Path({str(path)!r}), {{"ping": ping}}):
                print("ready", flush=True)
                await asyncio.sleep(30)
        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        assert asyncio.run(request(path, "ping")) == "pong"

        async def second() -> None:
            await ControlServer(path, {}).start()

        with pytest.raises(ControlError, match="another autotrader instance"):
            asyncio.run(second())
        proc.kill()  # SIGKILL: the socket file is left behind, stale
        proc.wait(timeout=10)
        assert path.exists()

        async def third() -> Any:
            async def ping(args: dict[str, Any]) -> str:
                return "pong2"

            async with ControlServer(path, {"ping": ping}):
                return await request(path, "ping")

        assert asyncio.run(third()) == "pong2"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def test_client_error_when_nothing_runs(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"
    with pytest.raises(ControlError, match=f"no running autotrader at {path}"):
        await request(path, "status")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    with pytest.raises(ControlError, match=f"no running autotrader at {path}"):
        await request(path, "status")


async def test_client_timeout(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"

    async def slow(args: dict[str, Any]) -> None:
        await asyncio.sleep(5)

    async with ControlServer(path, {"slow": slow}):
        with pytest.raises(ControlError, match=r"no answer .* within 0\.2 s"):
            await request(path, "slow", timeout=0.2)


async def test_path_too_long(sock_dir: Path) -> None:
    path = sock_dir / ("x" * 120) / "control.sock"
    with pytest.raises(ControlError, match="too long"):
        await ControlServer(path, {}).start()


def test_default_socket_path(sock_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = sock_dir / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert default_socket_path() == runtime / "autotrader" / "control.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)  # the platform default, not the tests' dir
    p = default_socket_path()  # no runtime dir: the state dir, never a guessable /tmp directory
    assert p.name == "control.sock" and "autotrader" in str(p) and os.path.isabs(p)
    if not Path(f"/run/user/{os.getuid()}").is_dir():
        assert not str(p).startswith("/tmp/")
