"""Recipe validation: the bad-recipe corpus, valid fixtures, the schema and every shipped example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.recipe.loader import load_recipe
from modelpack.recipe.schema import schema_text
from tests.helpers.paths import FIXTURES, ROOT

BAD = sorted((FIXTURES / "recipes").glob("bad-*.yaml"))
VALID = sorted((FIXTURES / "recipes").glob("valid-*.yaml"))


def test_corpus_is_large_enough():
    assert len(BAD) >= 15


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_recipe_exit_2_with_message(path: Path):
    expect = path.read_text().splitlines()[0].removeprefix("# expect: ") if path.stat().st_size else None
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert str(path) in result.output  # the message names the file
    if path.name == "bad-empty.yaml":
        expect = "is empty"
    assert expect in result.output


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_fixture(path: Path):
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid recipe" in result.output


def test_every_problem_reported_at_once(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("name: x\nmodel: {path: nope.keras}\nselect: cheapest\nbudgets: {max_p50_ms: -1}\n")
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "(3 problems)" in result.output
    assert f"{bad}:2 model.path" in result.output
    assert f"{bad}:3 select" in result.output
    assert f"{bad}:4 budgets.max_p50_ms" in result.output


def test_relative_paths_resolve_against_recipe_dir():
    recipe = load_recipe(ROOT / "recipes" / "digits" / "recipe.yaml")
    assert Path(recipe.model.path) == ROOT / "recipes" / "digits" / "model.keras"
    assert recipe.optimize.prune is None  # off unless asked for


def test_defaults_for_minimal_recipe():
    recipe = load_recipe(FIXTURES / "recipes" / "valid-minimal.yaml")
    assert recipe.targets == []
    assert recipe.data.synthetic is True
    assert all(v is None for v in recipe.budgets.model_dump().values())


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*/recipe.yaml")), ids=lambda p: p.parent.name)
def test_shipped_examples_validate(path: Path):
    load_recipe(path)


def test_committed_schema_is_current():
    committed = (ROOT / "recipes" / "recipe.schema.json").read_text()
    assert committed == schema_text(), "run: modelpack schema > recipes/recipe.schema.json"


def test_schema_has_descriptions_and_forbids_extra():
    schema = json.loads(schema_text())
    budgets = schema["$defs"]["Budgets"]
    assert budgets["additionalProperties"] is False
    assert all("description" in p for p in budgets["properties"].values())


def test_init_without_a_model_names_the_file_to_save(tmp_path):
    runner = CliRunner()
    folder = tmp_path / "my model"
    result = runner.invoke(cli, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    assert "model: none found" in result.output and ".gitignore: written (dist/)" in result.output
    text = (folder / "recipe.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=recipe.schema.json\n# modelpack recipe")
    assert "targets: []" not in text and "\n# targets:" not in text and "memory_mb: auto" not in text.split("#")[0]
    schema = json.loads((folder / "recipe.schema.json").read_text())
    assert schema["$id"] == "urn:modelpack:recipe" and "targets" in schema["properties"]
    # Validation then names the one missing file, nothing else.
    result = runner.invoke(cli, ["validate", str(folder / "recipe.yaml")])
    assert result.exit_code == 2
    assert "model.path: file not found" in result.output and "(1 problem)" in result.output
    again = runner.invoke(cli, ["init", str(folder)])
    assert again.exit_code == 2 and "exists already" in again.output


def test_readme_recipe_reference_is_current():
    from modelpack.recipe.schema import reference_markdown

    readme = (ROOT / "docs" / "recipe.md").read_text()
    block = readme.split("<!-- recipe-reference:start -->\n")[1].split("<!-- recipe-reference:end -->")[0]
    assert block == reference_markdown(), "regenerate with: modelpack schema --markdown"


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "modelpack build recipes/digits/recipe.yaml" in readme
    assert "    .venv/bin/python -m pytest\n" in readme and ".venv/bin/python -m pytest" in ci


def test_init_example_targets_validate_when_uncommented(tmp_path):
    """Every commented example target in the recipe init writes is a valid target as written."""
    from tests.helpers.paths import DIGITS

    assert CliRunner().invoke(cli, ["init", str(tmp_path)]).exit_code == 0
    text = (tmp_path / "recipe.yaml").read_text()
    commented = [line for line in text.splitlines() if line.startswith("  # - {kind:")]
    assert len(commented) >= 3
    for line in commented:
        text = text.replace(line, "  " + line[4:])
    (tmp_path / "recipe.yaml").write_text(text.replace("path: model.keras", f"path: {DIGITS / 'model.keras'}"))
    result = CliRunner().invoke(cli, ["validate", "--json", str(tmp_path / "recipe.yaml")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert len(out["targets"]) == 2 + len(commented)
    assert out["task"] is None and out["notes"] == []  # synthetic data and no task: nothing to infer or say


def test_misspelled_enum_value_gets_a_suggestion(digits_recipe):
    result = CliRunner().invoke(cli, ["validate", str(digits_recipe(select="fastests"))])
    assert result.exit_code == 2
    assert "select: 'fastests' is not one of smallest, fastest, coldest-start or most-accurate " \
        "(did you mean 'fastest'?)" in result.output


def test_unquoted_python_versions_are_read_as_written(tmp_path):
    """YAML reads `3.10` as the float 3.1; a recipe means the Python 3.10 and gets it, quoted or not."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"name: v\nmodel: {{path: {ROOT / 'recipes/digits/model.keras'}}}\ndata: {{synthetic: true}}\n"
                      "targets:\n  - {kind: lambda-layer, python: 3.10, versions: {numpy: 1.26}}\n"
                      "  - kind: azure-functions\n    python: 3.12\n")
    result = CliRunner().invoke(cli, ["validate", "--json", str(recipe)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["targets"] == ["lambda-layer(3.10, x86_64)", "azure-functions(3.12)"]
    assert load_recipe(recipe).targets[0].versions == {"numpy": "1.26"}
    recipe.write_text(recipe.read_text().replace("python: 3.12", "python: 3.9"))
    refused = CliRunner().invoke(cli, ["validate", str(recipe)])
    assert refused.exit_code == 2 and "'3.9' is not one of" in refused.output


def test_16x8_variant_is_accepted_calibrated_and_asked_for_by_name(digits_recipe):
    from modelpack.recipe.models import CALIBRATED, DEFAULT_VARIANTS, Recipe

    recipe = load_recipe(digits_recipe(optimize={"variants": ["tflite-16x8"]}))
    assert recipe.optimize.variants == ["tflite-16x8"]
    assert "tflite-16x8" in CALIBRATED and recipe.optimize.calibrates  # reads the calibration split
    # Not built unless named: its int16 kernels are slower than int8's; the search tries its setting by default.
    default = Recipe(name="x", model={"path": str(ROOT / "recipes" / "digits" / "model.keras")})
    assert default.optimize.variants == list(DEFAULT_VARIANTS) and "tflite-16x8" not in DEFAULT_VARIANTS
    assert default.optimize.search.try_16x8 is True


def test_misspelled_16x8_variant_is_refused_with_the_valid_names(digits_recipe):
    result = CliRunner().invoke(cli, ["validate", str(digits_recipe(optimize={"variants": ["tflite-int16"]}))])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "optimize.variants" in result.output and "tflite-16x8" in result.output
