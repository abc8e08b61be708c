"""What every command shares: the group's settings and the mapping of errors to sentences and exit codes."""

from __future__ import annotations

import functools
import os
import select
import signal
import sys
import traceback
from dataclasses import dataclass

import click

from modelpack.errors import EXIT_INTERNAL, ModelpackError, Terminated
from modelpack.files.jsonio import dumps_strict


@dataclass
class Settings:
    """The group's options, which every command reads."""

    quiet: bool = False
    verbose: bool = False
    color: str = "auto"


def settings() -> Settings:
    return click.get_current_context().find_object(Settings) or Settings()


def _fail(message: str, code: int) -> None:
    from modelpack.console.github import inert

    click.echo(inert(message), err=True)
    sys.exit(code)


def output_closed() -> bool:
    """Whether the reader of stdout or stderr has gone (`modelpack ... | head`): poll() reports an error on the
    write end of a pipe nobody reads."""
    poller = select.poll()
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            poller.register(stream.fileno(), select.POLLOUT)
        except (AttributeError, OSError, ValueError):
            continue
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))


def quit_as_pipes_do() -> None:
    """End the way `git log | head` does when the reader has gone: no message, killed by SIGPIPE (exit status
    141 in a shell). The work was unwound first, as after any error; output is sent nowhere so that flushing
    it at exit raises nothing more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            os.dup2(devnull, stream.fileno())
        except (AttributeError, OSError, ValueError):
            pass
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)


def handle_errors(fn):
    """Known errors print their sentence; anything else is a bug report hint, traceback only with --debug."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except ModelpackError as exc:
            if debug:
                traceback.print_exc()
            from modelpack.console import github

            github.recipe_errors(exc.message, getattr(exc, "problems", []))
            hint = f"\nHint: {exc.hint}" if exc.hint else ""
            params = click.get_current_context().params
            if params.get("json"):
                click.echo(dumps_strict({"ok": False, "error": exc.message, "hint": exc.hint or None,
                                         "exit_code": exc.exit_code}, sort_keys=True))
            _fail(f"error: {exc.message}{hint}", exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted: stopped and cleaned up; no output was changed.", 130)
        except Terminated as exc:
            _fail("terminated (SIGTERM): stopped and cleaned up; no output was changed.", exc.exit_code)
        except Exception as exc:  # an internal fault: say so plainly
            if isinstance(exc, BrokenPipeError) and output_closed():
                quit_as_pipes_do()  # the reader went away (`| head`): the work is unwound, nothing to report
            if debug:
                traceback.print_exc()
            _fail(
                f"internal error: {type(exc).__name__}: {exc}\n"
                "Hint: this is a modelpack bug or a tool failure; run again with --debug for the traceback "
                "and include it in a bug report.",
                EXIT_INTERNAL,
            )

    return wrapper
