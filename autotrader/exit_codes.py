"""The exit-code contract of every ``autotrader`` command (the table in the README), and the entry
point that enforces it: usage errors are one message and code 2, a closed stdout (``| head``) ends
the command quietly, Ctrl-C is 130, and an unexpected exception — a bug, never a user error — is
one line and code 70 (the traceback only with ``AUTOTRADER_TRACEBACK=1``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, Final

import typer
import typer.core
import typer.main

OK: Final = 0  # done
ERROR: Final = 1  # the command ran and failed: I/O, network, RPC, nothing recorded, no instance
USAGE: Final = 2  # usage or refused: bad arguments or config, unwritable path, cluster mismatch
UNSAFE: Final = 3  # unsafe or stale: the guard report blocks entries
INTERNAL: Final = 70  # a bug (EX_SOFTWARE): please report it
INTERRUPTED: Final = 130  # Ctrl-C

DOCUMENTED: Final = frozenset({OK, ERROR, USAGE, UNSAFE, INTERNAL, INTERRUPTED})


class PipeClosed(Exception):
    """stdout's reader went away (``| head``): not an OSError, so typer does not turn it into exit 1."""


class QuietPipeGroup(typer.core.TyperGroup):
    """The root command group: a BrokenPipeError from any command becomes :class:`PipeClosed`."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise PipeClosed from None


def _quiet_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (tests capture stdout)
        pass


_COMMANDS: dict[int, Any] = {}  # the click command built from the app (typer builds it per call)


def run_app(app: typer.Typer, argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises, never prints a traceback)."""
    try:  # typer >= 0.16 vendors click
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover
        from click.exceptions import ClickException  # type: ignore[no-redef]

    from autotrader.logs import redact

    command = _COMMANDS.get(id(app))
    if command is None:
        command = _COMMANDS[id(app)] = typer.main.get_command(app)
    try:
        rv = command.main(args=list(argv) if argv is not None else None, standalone_mode=False,
                          prog_name="autotrader")
    except ClickException as exc:  # usage errors: unknown option, bad value...
        from typer import rich_utils

        try:
            rich_utils.rich_format_error(exc)
        except Exception:
            exc.show()
        return exc.exit_code
    except typer.Abort:  # EOF on a prompt
        print("autotrader: aborted (no answer)", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print("autotrader: interrupted", file=sys.stderr)
        return INTERRUPTED
    except (BrokenPipeError, PipeClosed):
        _quiet_stdout()
        return OK
    except Exception as exc:
        return _internal(exc, redact)
    if isinstance(rv, bool) or not isinstance(rv, int):
        return OK
    return rv


def _internal(exc: BaseException, redact: object) -> int:
    import traceback

    assert callable(redact)
    text = f"{type(exc).__name__}: {exc}"
    print(f"autotrader: internal error (a bug, please report it): {redact(text)}", file=sys.stderr)
    if os.environ.get("AUTOTRADER_TRACEBACK") == "1":
        print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)
    else:
        print("autotrader: run with AUTOTRADER_TRACEBACK=1 to see where", file=sys.stderr)
    return INTERNAL
