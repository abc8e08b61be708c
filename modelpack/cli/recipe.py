"""`modelpack validate` and `schema`: the commands that read a recipe or describe it, and build nothing."""

from __future__ import annotations

from pathlib import Path

import click

from modelpack.cli.common import handle_errors
from modelpack.cli.help import examples
from modelpack.files.jsonio import dumps_strict


@click.command(epilog=examples(
    "modelpack validate recipe.yaml",
    "modelpack validate recipe.yaml --json | jq .targets"))
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", is_flag=True, help="Print the result as one JSON object.")
@handle_errors
def validate(recipe: Path, json: bool) -> None:
    """Check RECIPE without building anything (fast, no TensorFlow)."""
    from modelpack.inputs import precheck
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


@click.command(epilog=examples(
    "modelpack schema > recipe.schema.json",
    "modelpack schema --markdown"))
@click.option("--markdown", is_flag=True, help="Print the field reference table used in docs/recipe.md instead.")
def schema(markdown: bool) -> None:
    """Print the recipe JSON Schema."""
    from modelpack.recipe.schema import reference_markdown, schema_text

    click.echo(reference_markdown() if markdown else schema_text(), nl=False)
