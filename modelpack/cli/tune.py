"""`modelpack tune`: recommend a deployed function's settings from what it really did."""

from __future__ import annotations

from pathlib import Path

import click

from modelpack.cli.common import handle_errors
from modelpack.errors import UsageError
from modelpack.files.jsonio import dumps_strict


@click.command()
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
