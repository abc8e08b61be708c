"""The `modelpack` command: parse arguments, call the library, map errors to exit codes.

Heavy modules are imported inside the commands, so `--help` and `validate` never load TensorFlow.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import traceback
from pathlib import Path

import click

from modelpack import __version__
from modelpack.errors import EXIT_BUDGET, EXIT_INTERNAL, EXIT_OK, ModelpackError, Terminated, UsageError
from modelpack.jsonio import dumps_strict


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


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
            hint = f"\nHint: {exc.hint}" if exc.hint else ""
            _fail(f"error: {exc.message}{hint}", exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted: stopped and cleaned up; no output was changed.", 130)
        except Terminated as exc:
            _fail("terminated (SIGTERM): stopped and cleaned up; no output was changed.", exc.exit_code)
        except Exception as exc:  # an internal fault: say so plainly
            if debug:
                traceback.print_exc()
            _fail(
                f"internal error: {type(exc).__name__}: {exc}\n"
                "Hint: this is a modelpack bug or a tool failure; run again with --debug for the traceback "
                "and include it in a bug report.",
                EXIT_INTERNAL,
            )

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelpack")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def cli(debug: bool) -> None:
    """Turn a trained Keras model into small, fast-starting, verified serverless artifacts.

    Exit codes: 0 built and every budget passed; 1 built but a budget failed (invoke: the handler raised);
    2 bad recipe or usage; 3 internal or tool failure; 130 / 143 stopped by SIGINT / SIGTERM (cleaned up,
    output untouched).
    """


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def validate(recipe: Path) -> None:
    """Check RECIPE without building anything (fast, no TensorFlow)."""
    from modelpack import precheck
    from modelpack.recipe.loader import load_recipe

    r = load_recipe(recipe)
    # The same TensorFlow-free checks a build starts with, so validate passes only what build accepts.
    precheck.check_model(r, str(recipe))
    precheck.check_data(r, str(recipe), call_functions=False)
    click.echo(f"{recipe}: valid recipe '{r.name}' ({len(r.optimize.variants)} variants, {len(r.targets)} targets)")


@cli.command()
@click.option("--markdown", is_flag=True, help="Print the field reference table used in README.md instead.")
def schema(markdown: bool) -> None:
    """Print the recipe JSON Schema."""
    from modelpack.recipe.schema import reference_markdown, schema_text

    click.echo(reference_markdown() if markdown else schema_text(), nl=False)


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing recipe.yaml.")
@handle_errors
def init(directory: Path, force: bool) -> None:
    """Write a commented starter recipe.yaml into DIRECTORY."""
    from importlib import resources

    dest = directory / "recipe.yaml"
    if dest.exists() and not force:
        raise UsageError(f"{dest} exists already; pass --force to overwrite it.")
    directory.mkdir(parents=True, exist_ok=True)
    dest.write_text((resources.files("modelpack.recipe") / "starter.yaml").read_text())
    click.echo(f"wrote {dest}; edit model.path and data.path, then run `modelpack validate {dest}`")


def _reporter(quiet: bool):
    from modelpack.ui import Reporter

    return Reporter(quiet=quiet)


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output directory [dist/<name>].")
@click.option("--cache-dir", default=".modelpack-cache", show_default=True, type=click.Path(file_okay=False))
@click.option("--no-cache", is_flag=True, help="Rebuild every step; neither read nor write the cache.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the result line.")
@click.option("--images", is_flag=True, help="Build and smoke-test image targets through the container engine.")
@handle_errors
def build(recipe: Path, out: Path | None, cache_dir: str, no_cache: bool, quiet: bool, images: bool) -> None:
    """Build RECIPE: convert, measure, check budgets, select, and write artifacts and reports."""
    from modelpack.pipeline.entry import build as run_build

    report = run_build(recipe, out=out, cache_dir=None if no_cache else cache_dir, reporter=_reporter(quiet),
                       images=images)
    out_dir = out or Path("dist") / report.name
    if report.passed:
        click.echo(f"built {out_dir}: selected {report.selected} ({report.selection_reason})")
        sys.exit(EXIT_OK)
    closest = f"; closest: {report.closest}" if report.closest else ""
    failed = ", ".join(b["name"] for b in report.budgets if not b["passed"]) or "no variant built"
    click.echo(f"built {out_dir}, but budgets failed ({failed}){closest}. See {out_dir}/report.md.", err=True)
    sys.exit(EXIT_BUDGET)


@cli.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With a model instead of a recipe: a .npz with arrays x (inputs) and y (labels).")
@click.option("--variants", help="With a model: comma-separated variants to build [all].")
@click.option("--cache-dir", default=".modelpack-cache", show_default=True, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
@handle_errors
def bench(source: Path, data_path: Path | None, variants: str | None, cache_dir: str, as_json: bool) -> None:
    """Convert and measure the variants of SOURCE (a recipe, or a model file) and print a comparison table.

    Writes nothing but the cache. `modelpack bench model.keras --data data.npz` needs no recipe.
    """
    import tempfile

    from modelpack.pipeline.entry import bench as run_bench
    from modelpack.recipe.adhoc import recipe_for_model

    with tempfile.TemporaryDirectory(prefix="modelpack-bench-") as tmp:
        if source.suffix in (".yaml", ".yml"):
            if data_path or variants:
                raise UsageError("--data and --variants go with a model file; a recipe names its own.")
            recipe = source
        else:
            recipe = recipe_for_model(source, data_path, variants, Path(tmp))
        report = run_bench(recipe, cache_dir=cache_dir, reporter=_reporter(as_json))
    if as_json:
        click.echo(dumps_strict({"variants": report.variants, "selected": report.selected,
                                 "selection_reason": report.selection_reason, "search": report.search},
                                indent=2, sort_keys=True))
        return
    from modelpack.tables import print_variants

    print_variants(report)


@cli.command("inspect")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--trust-code", is_flag=True, help="Allow Lambda layers and custom objects (their code runs).")
@click.option("--json", "as_json", is_flag=True, help="Print the inspection as JSON.")
@handle_errors
def inspect_cmd(model: Path, trust_code: bool, as_json: bool) -> None:
    """Show MODEL's inputs and outputs and where it can be split (optimize.split).

    A cut is legal where exactly one tensor crosses from the layers before it to the layers after it;
    the table gives the parameter bytes on each side and the crossing tensor, which becomes the payload
    between parts.
    """
    from modelpack.inspect_model import HEADERS, inspect, rows

    result = inspect(model, trust_code)
    if as_json:
        click.echo(dumps_strict(result, indent=2, sort_keys=True))
        return
    info = result["model"]
    click.echo(f"{model} ({result['format']}, {info['params']:,} parameters)")
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            click.echo(f"  {kind[:-1]} {t['name']}: {t['dtype']} {t['shape']}")
    if result["cuts"] is None:
        click.echo(f"cut points: none ({result['cuts_error']})")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"cut points ({sum(c['legal'] for c in result['cuts'])} legal)")
    for h in HEADERS:
        table.add_column(h)
    for row in rows(result["cuts"]):
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@cli.command()
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--event", "events", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON event file (Azure: the request body); repeat to send several in one process.")
@click.option("--target", "platform", type=click.Choice(["lambda", "azure", "lambda-split"]), default="lambda",
              show_default=True, help="Which built artifact to run.")
@handle_errors
def invoke(dist: Path, events: tuple[Path, ...], platform: str) -> None:
    """Run DIST's artifacts as the platform would and send EVENT(s).

    lambda: the layer and function under the Lambda Runtime Interface Emulator with awslambdaric.
    azure: the function app in a clean interpreter, called through azure.functions.HttpRequest.
    lambda-split: a split model's chaining function, or its part functions driven by the state machine.
    Every response is printed; the exit code is 1 when the handler raised on any event.
    """
    import tempfile

    from modelpack.errors import HandlerRaisedError
    from modelpack.invoke import LambdaEmulator, raised

    payloads = []
    for path in events:
        try:
            payloads.append(json.loads(path.read_text()))
        except ValueError as exc:
            raise UsageError(f"{path}: not valid JSON ({exc}).") from None
    failures = []
    if platform == "azure":
        from modelpack.azure_invoke import AzureApp

        with tempfile.TemporaryDirectory(prefix="modelpack-invoke-") as tmp:
            out = AzureApp(dist, Path(tmp)).call([{"route": "predict", "body": p} for p in payloads])
        for path, result in zip(events, out["results"]):
            click.echo(f"# {path.name}: HTTP {result['status']}")
            click.echo(json.dumps(result["body"], indent=1))
            if result.get("raised"):
                failures.append(f"{path.name}: {result['body']['errorType']}: {result['body']['errorMessage']}")
    else:
        from modelpack.invoke import SplitChain

        runner = SplitChain if platform == "lambda-split" else LambdaEmulator
        with tempfile.TemporaryDirectory(prefix="modelpack-invoke-") as tmp, runner(dist, Path(tmp)) as emu:
            for path, event in zip(events, payloads):
                response, ms = emu.invoke(event)
                click.echo(f"# {path.name}: {ms:.1f} ms")
                click.echo(json.dumps(response, indent=1))
                if error := raised(response):
                    failures.append(f"{path.name}: {error}")
    if failures:
        raise HandlerRaisedError(f"the handler raised on {len(failures)} of {len(events)} event(s): "
                                 + "; ".join(f[:300] for f in failures))


@cli.command()
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--function", "function", required=True, help="Name of the deployed Lambda function.")
@click.option("--since", default="7d", show_default=True, help="How far back to read CloudWatch (90m, 12h, 7d).")
@click.option("--region", help="AWS region [AWS_REGION / AWS_DEFAULT_REGION].")
@click.option("--from-logs", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read exported CloudWatch Logs events (JSON lines) instead of CloudWatch.")
@click.option("--json", "as_json", is_flag=True, help="Print the recommendations as JSON.")
@click.option("--write", is_flag=True, help="Write the recommended settings into the recipe (--recipe).")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The recipe DIST was built from (for --write).")
@handle_errors
def tune(dist: Path, function: str, since: str, region: str | None, from_logs: Path | None, as_json: bool,
         write: bool, recipe: Path | None) -> None:
    """Recommend memory, provisioned concurrency, timeout and warmer for a deployed function of DIST.

    Reads the function's CloudWatch metrics and log lines (or --from-logs FILE) and the build's measured
    memory curve; prints each recommendation with its evidence.
    """
    from modelpack.tune import changes
    from modelpack.tune import tune as run_tune

    if write and recipe is None:
        raise UsageError("--write needs --recipe RECIPE: the recipe DIST was built from.")
    result = run_tune(dist, function, since, region, from_logs)
    if as_json:
        click.echo(dumps_strict(result.to_json(), indent=2, sort_keys=True))
    else:
        from modelpack.tune.render import show

        show(result)
    if write:
        from modelpack.tune.dist import read_build
        from modelpack.tune.write import write_recipe

        todo = write_recipe(recipe, changes(result), read_build(dist).name)
        click.echo(f"{recipe}: " + (", ".join(f"{k} = {v}" for k, v in todo.items()) if todo else "nothing to change"),
                   err=as_json)


def _stop(signum: int, frame) -> None:
    """SIGTERM and SIGINT raise, so the build unwinds through its cleanups (staging and temporary folders,
    child processes); further signals are ignored until that is done."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    cli(prog_name="modelpack")


if __name__ == "__main__":
    main()
