"""The `modelpack` command: parse arguments, call the library, map errors to exit codes.

Heavy modules are imported inside the commands, so `--help` and `validate` never load TensorFlow.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from modelpack import __version__
from modelpack.cache_cmd import cache_group
from modelpack.cli_common import Settings, handle_errors, settings
from modelpack.errors import EXIT_BUDGET, EXIT_OK, Terminated, UsageError
from modelpack.jsonio import dumps_strict
from modelpack.ui import COLOR_CHOICES


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "MODELPACK"})
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


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", is_flag=True, help="Print the result as one JSON object.")
@handle_errors
def validate(recipe: Path, json: bool) -> None:
    """Check RECIPE without building anything (fast, no TensorFlow)."""
    from modelpack import precheck
    from modelpack.recipe.loader import load_recipe

    r = load_recipe(recipe)
    # The same TensorFlow-free checks a build starts with, so validate passes only what build accepts.
    precheck.check_model(r, str(recipe))
    precheck.check_data(r, str(recipe), call_functions=False)
    if json:
        click.echo(dumps_strict({"ok": True, "recipe": str(recipe), "name": r.name, "variants": list(r.optimize.variants),
                                 "targets": [t.identity() for t in r.targets]}, sort_keys=True))
        return
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

    from modelpack.recipe.schema import schema_text

    dest, schema = directory / "recipe.yaml", directory / "recipe.schema.json"
    if dest.exists() and not force:
        raise UsageError(f"{dest} exists already; pass --force to overwrite it.")
    directory.mkdir(parents=True, exist_ok=True)
    # The schema beside the recipe matches this modelpack version; editors with the YAML language server
    # validate and complete the recipe from it (the first line names it).
    schema.write_text(schema_text())
    starter = (resources.files("modelpack.recipe") / "starter.yaml").read_text()
    dest.write_text(f"# yaml-language-server: $schema={schema.name}\n{starter}")
    click.echo(f"wrote {dest} and {schema.name}; edit model.path and data.path, then run `modelpack validate {dest}`")


def _reporter(quiet: bool = False):
    from modelpack.ui import Reporter, make_console

    opts = settings()
    return Reporter(make_console(opts.color), quiet=quiet or opts.quiet, verbose=opts.verbose)


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output directory [dist/<name>].")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Step cache [.modelpack-cache next to RECIPE, or $XDG_CACHE_HOME/modelpack/builds].")
@click.option("--cache-max-size", default="2GB", show_default=True,
              help="After the build, remove least recently used cache entries beyond this size.")
@click.option("--no-cache", is_flag=True, help="Rebuild every step; neither read nor write the cache.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the result line.")
@click.option("--images", is_flag=True, help="Build and smoke-test image targets through the container engine.")
@click.option("--json", is_flag=True, help="Print the result as one JSON object (progress stays on stderr).")
@click.option("--summary", is_flag=True, help="Append report.md to $GITHUB_STEP_SUMMARY (GitHub Actions).")
@handle_errors
def build(recipe: Path, out: Path | None, cache_dir: str | None, cache_max_size: str, no_cache: bool, quiet: bool,
          images: bool, json: bool, summary: bool) -> None:
    """Build RECIPE: convert, measure, check budgets, select, and write artifacts and reports."""
    from modelpack import cache_admin
    from modelpack.pipeline.entry import build as run_build

    cap = cache_admin.parse_size(cache_max_size)
    cache_root = Path(cache_dir) if cache_dir else cache_admin.default_cache_dir(recipe)
    reporter = _reporter(quiet)
    report = run_build(recipe, out=out, cache_dir=None if no_cache else cache_root, reporter=reporter, images=images)
    if not no_cache and (pruned := cache_admin.prune(cache_root, cap)).removed:
        reporter.info(f"cache over {cache_max_size}: removed {pruned.removed} least recently used entries "
                      f"({cache_admin.human(pruned.freed)})")
    out_dir = out or Path("dist") / report.name
    _github_actions(report, recipe, out_dir, summary)
    if json:
        click.echo(dumps_strict({"ok": report.passed, "out": str(out_dir), "report": str(out_dir / "report.json"),
                                 "passed": report.passed, "selected": report.selected,
                                 "selection_reason": report.selection_reason, "closest": report.closest,
                                 "failed_budgets": [b["name"] for b in report.budgets if not b["passed"]]},
                                sort_keys=True))
        sys.exit(EXIT_OK if report.passed else EXIT_BUDGET)
    if report.passed:
        click.echo(f"built {out_dir}: selected {report.selected} ({report.selection_reason})")
        _print_next_steps(report, out_dir, quiet)
        sys.exit(EXIT_OK)
    closest = f"; closest: {report.closest}" if report.closest else ""
    failed = ", ".join(b["name"] for b in report.budgets if not b["passed"]) or "no variant built"
    click.echo(f"built {out_dir}, but budgets failed ({failed}){closest}. See {out_dir}/report.md.", err=True)
    sys.exit(EXIT_BUDGET)


def _github_actions(report, recipe: Path, out_dir: Path, summary: bool) -> None:
    from modelpack import gha

    data = report.to_json()
    gha.write_outputs(gha.build_outputs(data, out_dir))
    gha.budget_errors(data, recipe)
    if summary and not gha.append_summary((out_dir / "report.md").read_text()):
        click.echo("note: --summary needs $GITHUB_STEP_SUMMARY (set by GitHub Actions); no summary written.", err=True)


def _print_next_steps(report, out_dir: Path, quiet: bool) -> None:
    from modelpack.nextsteps import next_steps_text

    text = "" if quiet else next_steps_text(report.to_json(), out_dir)
    if text:
        click.echo(text)


@cli.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With a model instead of a recipe: a .npz with arrays x (inputs) and y (labels).")
@click.option("--variants", help="With a model: comma-separated variants to build [all].")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Step cache [.modelpack-cache next to SOURCE, or $XDG_CACHE_HOME/modelpack/builds].")
@click.option("--json", is_flag=True, help="Print the measurements as JSON.")
@handle_errors
def bench(source: Path, data_path: Path | None, variants: str | None, cache_dir: str | None, json: bool) -> None:
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
        from modelpack.cache_admin import default_cache_dir

        report = run_bench(recipe, cache_dir=cache_dir or default_cache_dir(source), reporter=_reporter(json))
    if json:
        click.echo(dumps_strict({"variants": [v.to_json() for v in report.variants], "selected": report.selected,
                                 "selection_reason": report.selection_reason, "search": report.search},
                                indent=2, sort_keys=True))
        return
    from modelpack.tables import print_variants

    print_variants(report)


@cli.command("inspect")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--trust-code", is_flag=True, help="Allow Lambda layers and custom objects (their code runs).")
@click.option("--json", is_flag=True, help="Print the inspection as JSON.")
@handle_errors
def inspect_cmd(model: Path, trust_code: bool, json: bool) -> None:
    """Show MODEL's inputs and outputs and where it can be split (optimize.split).

    A cut is legal where exactly one tensor crosses from the layers before it to the layers after it;
    the table gives the parameter bytes on each side and the crossing tensor, which becomes the payload
    between parts.
    """
    from modelpack.inspect_model import HEADERS, inspect, rows

    result = inspect(model, trust_code)
    if json:
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
@click.option("--event", "events", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="JSON event file (Azure: the request body), or - for standard input (one JSON document, or "
                   "one event per line); repeat to send several in one process.")
@click.option("--target", "platform", type=click.Choice(["lambda", "azure", "lambda-split"]), default="lambda",
              show_default=True, help="Which built artifact to run.")
@click.option("--json", is_flag=True,
              help="One JSON object per event and line: event, status, ms, cold, response (http_status on Azure).")
@click.option("--logs", is_flag=True, help="Show the handler's log lines on stderr.")
@handle_errors
def invoke(dist: Path, events: tuple[str, ...], platform: str, json: bool, logs: bool) -> None:
    """Run DIST's artifacts as the platform would and send EVENT(s).

    lambda: the layer and function under the Lambda Runtime Interface Emulator with awslambdaric.
    azure: the function app in a clean interpreter, called through azure.functions.HttpRequest.
    lambda-split: a split model's chaining function, or its part functions driven by the state machine.
    Every response is printed; the exit code is 1 when the handler raised on any event. The first run
    downloads the emulator and runtime client once and says so.
    """
    from modelpack.errors import HandlerRaisedError
    from modelpack.invoke_cmd import failure_text, read_events, run

    payloads = read_events(events)
    quiet = settings().quiet
    failures = []
    for answer in run(dist, payloads, platform, announce=lambda m: None if quiet else click.echo(m, err=True)):
        if logs:
            for line in answer.logs:
                click.echo(f"log: {line}", err=True)
        if json:
            click.echo(dumps_strict(answer.to_json(), sort_keys=True))
        else:
            status = f"HTTP {answer.http_status}" if answer.http_status is not None else answer.status
            timing = "" if answer.ms is None else f", {answer.ms:.1f} ms"
            click.echo(f"# {answer.event}: {status}{timing}{' (cold)' if answer.cold else ''}")
            click.echo(dumps_strict(answer.response, indent=1))
        if answer.status == "raised":
            failures.append(failure_text(answer))
    if failures:
        raise HandlerRaisedError(f"the handler raised on {len(failures)} of {len(payloads)} event(s): "
                                 + "; ".join(failures))


cli.add_command(cache_group)


@cli.command()
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target", default="lambda", show_default=True, help="What to publish: lambda, lambda-image, azure-image.")
@click.option("--function-name", help="Lambda function name [the recipe's name].")
@click.option("--region", help="AWS region [AWS_REGION / AWS_DEFAULT_REGION].")
@click.option("--s3-bucket", help="Bucket for zips over Lambda's 50 MB direct-upload limit.")
@click.option("--role", help="Execution role ARN [created: <function>-modelpack].")
@click.option("--repository", help="Images: REGISTRY/REPOSITORY to push to [the target's push:].")
@click.option("--dry-run", is_flag=True, help="Print the API calls instead of making them.")
@handle_errors
def publish(dist: Path, target: str, function_name: str | None, region: str | None, s3_bucket: str | None,
            role: str | None, repository: str | None, dry_run: bool) -> None:
    """Publish DIST (a build's output folder) to the cloud and print its endpoint."""
    from modelpack.publish import PublishOptions
    from modelpack.publish import publish as run_publish
    from modelpack.publish.report import print_result

    options = PublishOptions(dist, function_name=function_name, region=region, s3_bucket=s3_bucket, role=role,
                             repository=repository, dry_run=dry_run)
    print_result(run_publish(target, options, click.echo), dry_run, click.echo)


@cli.command()
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target", type=click.Choice(["lambda", "azure"]), default="lambda", show_default=True,
              help="Which built package answers the requests (lambda: the function, or a split model's "
                   "chaining function when no lambda-function was built).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@handle_errors
def serve(dist: Path, target: str, host: str, port: int) -> None:
    """Serve DIST's built package over HTTP on this machine (TF Serving JSON, .npy/.npz, the Open Inference
    Protocol under /v2/), its handler running in a child process that sees only the package's files."""
    from modelpack.serve import serve as run

    run(dist, target, host, port, echo=click.echo)


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
