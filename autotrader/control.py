"""Local control endpoint: a UNIX socket (owner-only) so CLI commands reach a ``--no-ui`` daemon.

Protocol: per connection, one JSON request line ``{"cmd": "kill"|"status"|"guards"|"intent",
"args": {...}}`` and one JSON response line ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``; then the server closes the connection.

Safety: the socket file is mode 0600, its parent directory is created 0700, the server refuses
peers of another uid (``SO_PEERCRED`` where available), and one instance per socket path is
enforced with an ``flock`` on ``<socket>.lock`` held for the server's lifetime (plus a connect
probe: a socket file nobody listens on is stale and is replaced; a regular file is never removed).

Handlers should answer promptly (the client waits ``timeout`` seconds, 5 by default). A kill
handler records and starts the kill and returns; its retries-until-confirmed run in the engine.
A handler is not cancelled when its client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import socket
import stat
import struct
import warnings
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import platformdirs

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

MAX_REQUEST_BYTES = 1 << 20
READ_TIMEOUT_S = 10.0
#: AF_UNIX path limit on Linux (sun_path is 108 bytes including the terminating NUL)
MAX_SOCKET_PATH = 107

log = logging.getLogger("autotrader.control")


class ControlError(Exception):
    """The control endpoint could not start, or a request failed (no daemon, timeout, refused)."""


class NoInstance(ControlError):
    """Nothing listens at the control socket (no instance runs)."""


class RemoteError(ControlError):
    """The daemon answered ``{"ok": false, "error": ...}``."""


def default_socket_path() -> Path:
    """``user_runtime_dir("autotrader")/control.sock``; ``user_state_dir`` when there is no real
    per-user runtime directory (no ``XDG_RUNTIME_DIR`` and no ``/run/user/<uid>``: platformdirs
    would fall back to a guessable directory under /tmp)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime = Path(platformdirs.user_runtime_dir("autotrader"))
    fell_back = any("RuntimeDir" in type(w.message).__name__ for w in caught)
    if not fell_back and runtime.parent.is_dir() and os.access(runtime.parent, os.W_OK | os.X_OK):
        return runtime / "control.sock"
    return Path(platformdirs.user_state_dir("autotrader")) / "control.sock"


def _check_path_length(path: Path) -> None:
    if len(os.fsencode(str(path))) > MAX_SOCKET_PATH:
        raise ControlError(
            f"control socket path is too long for a UNIX socket ({len(str(path))} > {MAX_SOCKET_PATH} "
            f"bytes): {path}; set control.socket_path to a shorter path"
        )


def _encode(obj: Any) -> bytes:
    return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n"


def _probe(path: Path) -> bool:
    """True when something accepts connections on the socket at ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as exc:
        # anything but "refused"/"gone" (EAGAIN: a listener with a full backlog; EACCES: not ours)
        # counts as a live listener: never remove a socket we cannot prove dead
        return exc.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    else:
        return True
    finally:
        s.close()


class ControlServer:
    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = Path(path)
        self.handlers: dict[str, Handler] = dict(handlers)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._server: asyncio.Server | None = None
        self._lock_fd: int | None = None
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        path = self.path
        _check_path_length(path)
        parent = path.parent
        if not parent.exists():
            parent.mkdir(parents=True, mode=0o700)
            os.chmod(parent, 0o700)
        self._take_lock()
        try:
            if path.exists() or path.is_symlink():
                mode = path.lstat().st_mode
                if not stat.S_ISSOCK(mode):
                    raise ControlError(f"{path} exists and is not a socket; refusing to replace it")
                if await asyncio.to_thread(_probe, path):
                    raise ControlError(f"another autotrader instance is listening on {path}")
                path.unlink()  # stale: left by a process that died
                log.info("removed stale control socket %s", path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)  # the socket file is born 0600 (no window with wider permissions)
            try:
                sock.bind(str(path))
            except OSError as exc:
                sock.close()
                raise ControlError(f"cannot bind control socket {path}: {exc}") from exc
            finally:
                os.umask(old)
            os.chmod(path, 0o600)
            self._server = await asyncio.start_unix_server(
                self._on_connect, sock=sock, limit=MAX_REQUEST_BYTES
            )
        except BaseException:
            self._release_lock()
            raise

    def _take_lock(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ControlError(
                    f"another autotrader instance is running (control socket {self.path} is locked)"
                ) from None
            raise ControlError(f"cannot lock {self.lock_path}: {exc}") from exc
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    async def close(self, grace_s: float = 1.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self._conns:
            _, pending = await asyncio.wait(set(self._conns), timeout=grace_s)
            for t in pending:
                t.cancel()
            for t in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        await server.wait_closed()
        self._release_lock()

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- serving -----------------------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        try:
            if not self._peer_allowed(writer):
                writer.write(_encode({"ok": False, "error": "permission denied"}))
                await writer.drain()
                return
            response = await self._answer(reader)
            writer.write(_encode(response))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    def _peer_allowed(writer: asyncio.StreamWriter) -> bool:
        sock = writer.get_extra_info("socket")
        opt = getattr(socket, "SO_PEERCRED", None)
        if sock is None or opt is None:
            return True  # the 0600 socket file is the protection
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
        except OSError:
            return False
        _pid, uid, _gid = struct.unpack("3i", raw)
        return bool(uid == os.getuid() or uid == 0)

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=READ_TIMEOUT_S)
        except TimeoutError:
            return {"ok": False, "error": f"no request received within {READ_TIMEOUT_S:g} s"}
        except (asyncio.LimitOverrunError, ValueError):
            return {"ok": False, "error": f"request too large (max {MAX_REQUEST_BYTES} bytes)"}
        if not line.strip():
            return {"ok": False, "error": "empty request"}
        try:
            req = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return {"ok": False, "error": f"request is not JSON: {exc}"}
        if not isinstance(req, dict):
            return {"ok": False, "error": "request must be a JSON object {\"cmd\": ..., \"args\": {...}}"}
        cmd = req.get("cmd")
        args = req.get("args", {})
        if args is None:
            args = {}
        if not isinstance(cmd, str):
            return {"ok": False, "error": "request needs a string \"cmd\""}
        if not isinstance(args, dict):
            return {"ok": False, "error": "\"args\" must be a JSON object"}
        handler = self.handlers.get(cmd)
        if handler is None:
            known = ", ".join(sorted(self.handlers)) or "none"
            return {"ok": False, "error": f"unknown command {cmd!r} (known: {known})"}
        try:
            result = await handler(args)
        except Exception as exc:
            log.exception("control command %s failed", cmd)
            return {"ok": False, "error": f"{cmd} failed: {exc}" if str(exc) else f"{cmd} failed: {exc!r}"}
        return {"ok": True, "result": result}


async def request(path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    """Send one command to the daemon at ``path`` and return its ``result``.

    Raises :class:`ControlError` when no instance runs there or it does not answer in time, and
    :class:`RemoteError` when it answers ``ok: false``."""
    path = Path(path)
    try:
        async with asyncio.timeout(timeout):
            try:
                reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_REQUEST_BYTES * 16)
            except (FileNotFoundError, ConnectionRefusedError):
                raise NoInstance(f"no running autotrader at {path}") from None
            except PermissionError:
                raise ControlError(f"permission denied on {path} (started by another user?)") from None
            try:
                writer.write(_encode({"cmd": cmd, "args": args or {}}))
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except TimeoutError:
        raise ControlError(f"no answer from autotrader at {path} within {timeout:g} s") from None
    except ConnectionError as exc:
        raise ControlError(f"connection to autotrader at {path} failed: {exc}") from None
    if not line:
        raise ControlError(f"autotrader at {path} closed the connection without answering")
    try:
        resp = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ControlError(f"bad answer from autotrader at {path}: {exc}") from None
    if not isinstance(resp, dict) or "ok" not in resp:
        raise ControlError(f"bad answer from autotrader at {path}: {resp!r}")
    if not resp["ok"]:
        raise RemoteError(str(resp.get("error", "unknown error")))
    return resp.get("result")


def request_sync(path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    """:func:`request` for synchronous callers (the typer CLI)."""
    return asyncio.run(request(path, cmd, args, timeout))
