"""Local control endpoint: a UNIX socket (owner-only) so CLI commands reach a ``--no-ui`` daemon.

Protocol: per connection, one JSON request line ``{"cmd": "kill"|"status"|"guards"|"intent",
"args": {...}}`` and one JSON response line ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``; then the server closes the connection.

Safety: the socket file is mode 0600, its parent directory is created 0700, the server refuses
peers of another uid (``SO_PEERCRED`` where available), and one instance per socket path is
enforced with an ``flock`` on ``<socket>.lock`` held for the server's lifetime (plus a connect
probe: a socket file nobody listens on is stale and is replaced; a regular file is never removed).

Streams (``autotrader ui``): a command registered as a *stream* answers ``{"ok": true, "result":
<first>}`` and then keeps the connection open, writing one ``{"stream": <item>}`` line per item
until the client goes away (or the server closes); a client that stops reading for
``SEND_TIMEOUT_S`` is dropped (it reconnects and starts again from a fresh first answer).

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
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import platformdirs

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
#: a stream: its first item is the answer, every later one a ``{"stream": item}`` line
StreamHandler = Callable[[dict[str, Any]], AsyncGenerator[Any, None]]

MAX_REQUEST_BYTES = 1 << 20
READ_TIMEOUT_S = 10.0
SEND_TIMEOUT_S = 10.0  # a stream client that reads nothing for this long is dropped
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
    def __init__(self, path: Path, handlers: Mapping[str, Handler],
                 streams: Mapping[str, StreamHandler] | None = None) -> None:
        self.path = Path(path)
        self.handlers: dict[str, Handler] = dict(handlers)
        self.streams: dict[str, StreamHandler] = dict(streams or {})
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._server: asyncio.Server | None = None
        self._lock_fd: int | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._streaming: set[asyncio.Task[None]] = set()

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
        for t in list(self._streaming):  # streams never end by themselves
            t.cancel()
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
            req = await self._read(reader)
            stream = self.streams.get(req[0]) if isinstance(req, tuple) else None
            if stream is not None and isinstance(req, tuple) and task is not None:
                self._streaming.add(task)
                await self._stream(stream, req[1], writer)
                return
            response = req if isinstance(req, dict) else await self._call(*req)
            writer.write(_encode(response))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            if task is not None:
                self._conns.discard(task)
                self._streaming.discard(task)
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

    async def _stream(self, handler: StreamHandler, args: dict[str, Any],
                      writer: asyncio.StreamWriter) -> None:
        items = handler(args)
        try:
            try:
                first = await anext(items)
            except Exception as exc:
                log.exception("control stream failed")
                writer.write(_encode({"ok": False, "error": f"stream failed: {exc}"}))
                await writer.drain()
                return
            writer.write(_encode({"ok": True, "result": first}))
            await asyncio.wait_for(writer.drain(), SEND_TIMEOUT_S)
            async for item in items:
                writer.write(_encode({"stream": item}))
                await asyncio.wait_for(writer.drain(), SEND_TIMEOUT_S)  # a stuck reader is dropped
        finally:
            await items.aclose()

    async def _read(self, reader: asyncio.StreamReader) -> dict[str, Any] | tuple[str, dict[str, Any]]:
        """The request as ``(cmd, args)``, or the error answer for a bad one."""
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
        return cmd, args

    async def _call(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = self.handlers.get(cmd)
        if handler is None:
            known = ", ".join(sorted([*self.handlers, *self.streams])) or "none"
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


class StreamConnection:
    """An open stream (:func:`open_stream`): :attr:`first` is the answer; :meth:`next` the items."""

    def __init__(self, path: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: Any,
                 idle_timeout_s: float) -> None:
        self.path = path
        self.first = first
        self._reader = reader
        self._writer = writer
        self._idle = idle_timeout_s

    async def next(self) -> Any:
        """The next item; ControlError when the instance went away or said nothing for too long."""
        try:
            line = await asyncio.wait_for(self._reader.readline(), self._idle)
        except TimeoutError:
            raise ControlError(f"autotrader at {self.path} sent nothing for {self._idle:g} s") from None
        except (ConnectionError, ValueError, asyncio.LimitOverrunError) as exc:
            raise ControlError(f"connection to autotrader at {self.path} failed: {exc}") from None
        if not line:
            raise ControlError(f"autotrader at {self.path} closed the connection")
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ControlError(f"bad message from autotrader at {self.path}: {exc}") from None
        if not isinstance(msg, dict) or "stream" not in msg:
            raise ControlError(f"bad message from autotrader at {self.path}: {str(msg)[:80]}")
        return msg["stream"]

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


async def open_stream(path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 10.0,
                      idle_timeout_s: float = 10.0) -> StreamConnection:
    """Open a stream command (see the module docstring); ControlError/RemoteError as :func:`request`."""
    path = Path(path)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(path), limit=MAX_REQUEST_BYTES * 64), timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError(f"no running autotrader at {path}") from None
    except PermissionError:
        raise ControlError(f"permission denied on {path} (started by another user?)") from None
    except (TimeoutError, OSError) as exc:
        raise ControlError(f"cannot connect to autotrader at {path}: {exc or 'timeout'}") from None
    try:
        writer.write(_encode({"cmd": cmd, "args": args or {}}))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ControlError(f"autotrader at {path} closed the connection without answering")
        resp = orjson.loads(line)
        if not isinstance(resp, dict) or "ok" not in resp:
            raise ControlError(f"bad answer from autotrader at {path}")
        if not resp["ok"]:
            raise RemoteError(str(resp.get("error", "unknown error")))
    except BaseException as exc:
        writer.close()
        if isinstance(exc, TimeoutError):
            raise ControlError(f"no answer from autotrader at {path} within {timeout:g} s") from None
        if isinstance(exc, ConnectionError | ValueError | orjson.JSONDecodeError):
            raise ControlError(f"connection to autotrader at {path} failed: {exc}") from None
        raise
    return StreamConnection(path, reader, writer, resp.get("result"), idle_timeout_s)
