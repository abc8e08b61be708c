"""The `modelpack` group: its global options, its commands (one module per family, registered
below) and the signal handling that lets a stopped build clean up."""

from __future__ import annotations

import signal
import sys

import click

from modelpack import __version__
from modelpack.cli.build import bench, build
from modelpack.cli.cache import cache_group
from modelpack.cli.common import Settings, output_closed, quit_as_pipes_do
from modelpack.cli.help import Commands, examples
from modelpack.cli.init import init
from modelpack.cli.inspect import inspect_cmd
from modelpack.cli.invoke import invoke
from modelpack.cli.publish import publish
from modelpack.cli.recipe import schema, validate
from modelpack.cli.serve import serve
from modelpack.cli.tune import tune
from modelpack.console.progress import COLOR_CHOICES
from modelpack.errors import Terminated


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "MODELPACK"},
             epilog=examples("modelpack init my-model --model my-model/model.keras --data my-model/data.npz",
                             "modelpack build my-model/recipe.yaml",
                             "modelpack serve dist/my-model",
                             "modelpack build --help                    # a command's options and examples"))
@click.version_option(__version__, prog_name="modelpack")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-q", "--quiet", is_flag=True, help="Print only results and errors (no progress).")
@click.option("-v", "--verbose", is_flag=True, help="Print every stage and step as a timestamped line, also on a terminal.")
@click.option("--color", type=click.Choice(COLOR_CHOICES), default="auto", show_default=True,
              help="Colour in progress output; auto: on a terminal unless NO_COLOR is set.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, verbose: bool, color: str) -> None:
    """Turn a trained Keras model into small, fast-starting, verified serverless artifacts.

    Exit codes: 0 built and every budget passed; 1 built but a budget failed (invoke: the handler raised);
    2 bad recipe or usage; 3 internal or tool failure; 130 / 143 stopped by SIGINT / SIGTERM (cleaned up,
    output untouched).

    Every option can also be set in the environment as MODELPACK_<OPTION> for the group's options
    (MODELPACK_COLOR=never, MODELPACK_QUIET=1) and MODELPACK_<COMMAND>_<OPTION> for a command's
    (MODELPACK_BUILD_CACHE_DIR=/tmp/cache).
    """
    if quiet and verbose:
        raise click.UsageError("-q and -v contradict each other; pass one.")
    ctx.obj = Settings(quiet=quiet, verbose=verbose, color=color)
    ctx.color = {"always": True, "never": False}.get(color)


for _command in (validate, schema, init, build, bench, inspect_cmd, invoke, cache_group, publish, serve, tune):
    cli.add_command(_command)


def _stop(signum: int, frame) -> None:
    """SIGTERM and SIGINT raise, so the build unwinds through its cleanups (staging and temporary folders,
    child processes); further signals are ignored until that is done."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        cli(prog_name="modelpack")
    except SystemExit:
        # click answers a write to a closed pipe with exit 1 after wrapping stdout in PacifyFlushWrapper; a reader
        # that went away is no failure of ours: end as `git log | head` does.
        if type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper" and output_closed():
            quit_as_pipes_do()
        raise
    finally:
        try:
            sys.stdout.flush()  # what is still buffered goes now, not at exit where an error is only printed
        except BrokenPipeError:
            quit_as_pipes_do()


if __name__ == "__main__":
    main()
