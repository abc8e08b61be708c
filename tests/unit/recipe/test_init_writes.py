"""What `modelpack init` writes: names YAML would read as something else (yes, on, 1e3, 1_000, a date, `a: b`)
are quoted so the recipe reads back as written, and no file init did not write is overwritten without --force.
Folders without a model: no TensorFlow, fast."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.recipe.starter import Draft, render

TRICKY = ["yes", "on", "Off", "1e3", "1_000", "0x1F", "2024-01-01", ".inf", "null", "~", "a: b", "x #y", "[z]",
          "-", "12:30"]


def test_every_name_reads_back_as_written():
    for i, word in enumerate(TRICKY):
        other = TRICKY[(i + 1) % len(TRICKY)]
        draft = Draft(word, f"{word}.keras", "3.12", "x86_64", data_path=f"{word}/d.npz", inputs=(word, other),
                      input_names=("in1", "in2"), labels=other, samples=5, task_output=word,
                      model_lines=(f"input  {word}\nname: broken",), notes=(f"array {word}\nkey: value",))
        recipe = yaml.safe_load(render(draft))
        assert recipe["name"] == word and recipe["model"]["path"] == f"{word}.keras", (word, render(draft))
        assert recipe["data"] == {"path": f"{word}/d.npz", "inputs": [word, other], "labels": other}, word
        assert recipe["task_output"] == word and "key" not in recipe


@pytest.mark.parametrize("folder", ["yes", "1e3", "on", "2024-01-01", "1_000"])
def test_init_names_the_recipe_after_any_folder(tmp_path, folder):
    result = CliRunner().invoke(cli, ["init", str(tmp_path / folder)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((tmp_path / folder / "recipe.yaml").read_text())["name"] == folder


def test_init_never_overwrites_a_schema_file_it_did_not_write(tmp_path):
    mine = tmp_path / "recipe.schema.json"
    mine.write_text('{"my": "own schema"}')
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 2 and "modelpack did not write it" in " ".join(result.output.split())
    assert "--force" in result.output and mine.read_text() == '{"my": "own schema"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.schema.json"]  # nothing else written either
    assert CliRunner().invoke(cli, ["init", str(tmp_path), "--force"]).exit_code == 0
    assert json.loads(mine.read_text())["title"] == "modelpack recipe"
    (tmp_path / "recipe.yaml").unlink()
    again = CliRunner().invoke(cli, ["init", str(tmp_path)])  # its own schema from the last init: written again
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", "recipe.schema.json", "recipe.yaml"]
