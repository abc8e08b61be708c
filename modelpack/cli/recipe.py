"""`modelpack validate`, `schema` and `init`: the commands that read or write a recipe and build nothing."""

from __future__ import annotations

from pathlib import Path

import click

from modelpack.cli.common import handle_errors
from modelpack.cli.help import examples
from modelpack.errors import UsageError
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


@click.command()
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
