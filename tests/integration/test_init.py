"""`modelpack init` on a user's own model: it inspects the model and the data, infers the task and says why, and
the recipe it writes builds unchanged (a classifier; a regressor with two inputs), then runs under invoke.
The models are made here, small and untrained, as a user's would be before the real weights arrive."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[str, Path]:
    """Folders as users keep them: a model file and a .npz of samples, with the users' own array names."""
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("init")
    out = {}

    folder = out["classifier"] = root / "Image Classifier"  # a space in the name: the recipe's name has none
    folder.mkdir()
    inp = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="probs")(x)).save(folder / "model.keras")
    np.savez(folder / "samples.npz", x=rng.random((120, 8, 8, 1), dtype=np.float32), y=rng.integers(0, 4, 120))

    folder = out["regressor"] = root / "price-model"
    folder.mkdir()
    a, b = keras.Input((6,), name="numbers"), keras.Input((3,), name="flags")
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([a, b]))
    keras.Model([a, b], keras.layers.Dense(1, name="price")(h)).save(folder / "model.keras")
    np.savez(folder / "train.npz", extra=rng.random((100, 3), dtype=np.float32),
             features=rng.random((100, 6), dtype=np.float32), price=rng.normal(50, 10, 100).astype(np.float32))

    folder = out["one-hot"] = root / "one-hot"
    folder.mkdir()
    shutil.copyfile(out["classifier"] / "model.keras", folder / "model.keras")
    np.savez(folder / "data.npz", x=rng.random((30, 8, 8, 1), dtype=np.float32),
             y=np.eye(4, dtype=np.float32)[rng.integers(0, 4, 30)])
    return out


@pytest.fixture
def in_folder(monkeypatch, tmp_path):
    """Run commands from a folder, with the step cache of this module's builds (shared: one runtime layer)."""
    monkeypatch.setenv("MODELPACK_CACHE_DIR", str(tmp_path.parent / "init-cache"))

    def cd(folder: Path) -> Path:
        monkeypatch.chdir(folder)
        return folder

    return cd


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_classifier_recipe_builds_unchanged_and_runs(projects, in_folder):
    folder = in_folder(projects["classifier"])
    (folder / ".gitignore").write_text("*.pyc\n")
    result = run("init")
    assert result.exit_code == 0, result.output
    assert re.search(r"task: classification, because labels 'y' are whole numbers 0–3 and output '\w+' has 4 units",
                     result.output), result.output
    assert "data: samples.npz: x → the model's inputs; labels: y (120 samples)" in result.output.replace(
        str(folder) + "/", "")
    assert ".gitignore: added dist/ at its end" in result.output
    assert (folder / ".gitignore").read_text().startswith("*.pyc\n") and "\ndist/\n" in (folder / ".gitignore").read_text()
    recipe = yaml.safe_load((folder / "recipe.yaml").read_text())
    assert recipe["name"] == "Image-Classifier" and recipe["task"] == "classification"
    assert recipe["data"] == {"path": "samples.npz", "inputs": "x", "labels": "y"}
    assert [t["kind"] for t in recipe["targets"]] == ["lambda-layer", "lambda-function"]

    built = run("build", "recipe.yaml")
    assert built.exit_code == 0, built.output
    report = json.loads((folder / "dist" / "Image-Classifier" / "report.json").read_text())
    assert report["passed"] and {a["target"] for a in report["artifacts"]} >= {"lambda-layer", "lambda-function"}
    assert "cache: " + os.environ["MODELPACK_CACHE_DIR"] in built.stderr
    answered = run("invoke", "dist/Image-Classifier")  # the package's own sample request
    assert answered.exit_code == 0 and "# predict.json: HTTP 200" in answered.output, answered.output

    again = run("init")
    assert again.exit_code == 2 and "exists already; pass --force" in again.output


def test_two_input_regressor_recipe_builds_unchanged(projects, in_folder):
    folder = in_folder(projects["regressor"])
    result = run("init")
    assert result.exit_code == 0, result.output
    assert "task: regression, because labels 'price' hold fractional values" in result.output
    recipe = yaml.safe_load((folder / "recipe.yaml").read_text())
    assert recipe["data"]["inputs"] == ["features", "extra"] and recipe["data"]["labels"] == "price"
    assert "budgets" not in recipe  # an accuracy budget would be in the labels' units; left to the user
    assert (folder / ".gitignore").read_text().endswith("dist/\n")
    built = run("build", "recipe.yaml")
    assert built.exit_code == 0, built.output
    report = json.loads((folder / "dist" / "price-model" / "report.json").read_text())
    keras_row = next(v for v in report["variants"] if v["name"] == "keras")
    assert keras_row["regression"]["mae"] > 0 and report["passed"]


def test_labels_that_fit_no_task_are_refused_with_the_fix(projects, in_folder, tmp_path):
    in_folder(projects["one-hot"])
    result = run("init")
    assert result.exit_code == 2, result.output
    assert "labels 'y' are one-hot rows (4 columns)" in result.output and "y.argmax(axis=1)" in result.output
    assert not (projects["one-hot"] / "recipe.yaml").exists()
    elsewhere = run("init", str(tmp_path / "new"), "--model", str(projects["classifier"] / "model.keras"),
                    "--data", str(projects["classifier"] / "samples.npz"))
    assert elsewhere.exit_code == 0, elsewhere.output
    recipe = yaml.safe_load((tmp_path / "new" / "recipe.yaml").read_text())
    assert recipe["name"] == "new"
    assert (tmp_path / "new" / recipe["model"]["path"]).resolve() == (projects["classifier"] / "model.keras").resolve()
    assert run("validate", str(tmp_path / "new" / "recipe.yaml")).exit_code == 0
