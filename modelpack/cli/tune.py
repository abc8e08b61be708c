"""`modelpack tune`: recommend a deployed function's settings from what it really did."""

from __future__ import annotations

from pathlib import Path

import click

from modelpack.cli.common import handle_errors
from modelpack.cli.help import examples
from modelpack.errors import UsageError
from modelpack.files.jsonio import dumps_strict


@click.command(epilog=examples(
    "modelpack tune dist/digits --since 7d --region eu-west-1   # the function publish created (publish.json)",
    "modelpack tune dist/digits --function digits-ModelFunction-1A2B3C --region eu-west-1",
    "modelpack tune dist/digits --from-logs export.jsonl --json    # exported events, or REPORT lines copied",
    "modelpack tune dist/digits --from-logs export.jsonl --write --recipe recipe.yaml"))
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--function", "function",
              help="Name of the deployed Lambda function [the log group in --from-logs, DIST/publish.json, or the "
                   "build's name].")
@click.option("--since", default="7d", show_default=True,
              help="How far back to read CloudWatch, or the log file back from its last event (90m, 12h, 7d).")
@click.option("--region", help="AWS region [AWS_REGION / AWS_DEFAULT_REGION].")
@click.option("--from-logs", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read exported CloudWatch Logs events (JSON lines or filter-log-events JSON) or REPORT lines "
                   "copied from a console, instead of CloudWatch.")
@click.option("--json", "as_json", is_flag=True, help="Print the recommendations as JSON.")
@click.option("--write", is_flag=True, help="Write the recommended settings into the recipe (--recipe).")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The recipe DIST was built from (for --write).")
@handle_errors
def tune(dist: Path, function: str | None, since: str, region: str | None, from_logs: Path | None, as_json: bool,
         write: bool, recipe: Path | None) -> None:
    """Recommend memory, provisioned concurrency, timeout and warmer for a deployed function of DIST.

    Reads the function's CloudWatch metrics and log lines (or --from-logs FILE) and the build's measured
    memory curve; prints each recommendation with its evidence. A change is recommended only when it gains
    at least 5 % of the cost or the duration.
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
        click.echo(f"{recipe}: " + (", ".join(_change(k, v) for k, v in todo.items()) if todo else "nothing to change"),
                   err=as_json)


def _change(key: str, change) -> str:
    if key == "memory_mb" and change.was == "auto":
        return (f"memory_mb = {change.value} (replaces auto, the size the build picked from its measurements: the "
                "recipe now pins what production asks for)")
    return f"{key} = {change.value}"
