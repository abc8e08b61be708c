"""Free input dimensions and builds that make no variant: keras.applications.MobileNetV3Small(weights=None) takes images
of any size; with synthetic data it is refused before any conversion until the recipe gives the size it is served at
(data.shapes), then it builds at that size. A model every converter fails on ends with its own exit code and the
whole reason in report.md. The models are created here; MobileNetV3 builds one variant at 32x32."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.errors import EXIT_NO_VARIANT

pytestmark = pytest.mark.slow
MEASURE = {"latency": {"warmup": 1, "runs": 5}, "cold_start": {"runs": 1}}


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    import keras

    tmp = tmp_path_factory.mktemp("free")
    keras.backend.clear_session()  # layer names count from zero again: the input is `input_layer` in any test order
    model = keras.applications.MobileNetV3Small(weights=None)
    assert tuple(model.inputs[0].shape) == (None, None, None, 3)
    model.save(tmp / "model.keras")
    return tmp


def _recipe(folder, name: str, **data) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "model": {"path": str(folder / "model.keras")},
        "data": {"synthetic": True, "evaluation": 4, "calibration": 4, **data},
        "optimize": {"variants": ["tflite-fp32"]}, "measure": MEASURE}, sort_keys=False))
    return str(path)


def test_without_a_shape_validate_and_build_refuse_it_naming_the_fix(mobilenet):
    recipe = _recipe(mobilenet, "no-shape")
    checked = CliRunner().invoke(cli, ["validate", recipe])
    built = CliRunner().invoke(cli, ["build", recipe, "--out", str(mobilenet / "no-shape"), "--no-cache"])
    for result in (checked, built):
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert "input 'input_layer' [batch, any, any, 3] has free dimensions" in text
        assert "data.shapes: {input_layer: [224, 224, 3]}" in text and "Traceback" not in text
    assert not (mobilenet / "no-shape").exists()


def test_inspect_shows_the_free_dimensions(mobilenet):
    result = CliRunner().invoke(cli, ["inspect", str(mobilenet / "model.keras"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["free_dimensions"] == ["input_layer"]


def test_a_size_the_model_cannot_take_is_the_recipes_mistake(mobilenet):
    result = CliRunner().invoke(cli, ["build", _recipe(mobilenet, "tiny", shapes={"input_layer": [8, 8, 3]}),
                                      "--out", str(mobilenet / "tiny"), "--cache-dir", str(mobilenet / "c")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "cannot run the evaluation samples (per sample: input_layer [8, 8, 3])" in text
    assert "Negative dimension size" in text and "Fix data.shapes: it gives a size the model cannot take" in text


def test_with_a_recipe_shape_it_builds_and_serves_at_that_size(mobilenet):
    out = mobilenet / "out"
    recipe = _recipe(mobilenet, "shaped", shapes={"input_layer": [32, 32, 3]})
    result = CliRunner().invoke(cli, ["build", recipe, "--out", str(out), "--cache-dir", str(mobilenet / "c")])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["variants"][1]["status"] == "ok"
    assert report["model"]["inputs"][0]["shape"] == [None, 32, 32, 3]  # converted and measured at 32x32
    from tests.helpers.serving import serving_module

    runtime = serving_module("model_runtime").load(str(out / report["variants"][1]["path"]))
    image = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype("float32")
    assert runtime.predict({"input_layer": image})[0].shape == (1, 1000)


def test_when_every_variant_fails_the_exit_code_says_so_and_the_report_has_the_whole_reason(tmp_path):
    """A model whose one op no TFLite builtin covers, built as tflite-fp32 only: nothing to select."""
    import keras

    x = keras.Input((3, 3), name="matrix")
    det = keras.layers.Lambda(lambda m: __import__("tensorflow").linalg.det(m), output_shape=())(x)
    keras.Model(x, keras.layers.Dense(2)(keras.layers.Reshape((1,))(det))).save(tmp_path / "model.keras")
    np.savez(tmp_path / "data.npz", x=np.random.default_rng(0).standard_normal((20, 3, 3)).astype("float32"),
             y=np.zeros(20, "int64"))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "det", "model": {"path": str(tmp_path / "model.keras"), "trust_code": True}, "task": "classification",
        "data": {"path": str(tmp_path / "data.npz"), "evaluation": 8, "calibration": 4},
        "optimize": {"variants": ["tflite-fp32"]}, "measure": MEASURE}, sort_keys=False))
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp_path / "out"), "--no-cache"])
    assert result.exit_code == EXIT_NO_VARIANT == 4, result.output
    assert "no variant was built: all 1 failed" in " ".join(result.output.split())
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    error = report["variants"][1]["error"]
    assert report["variants"][1]["status"] == "failed" and "MatrixDeterminant" in error
    md = (tmp_path / "out" / "report.md").read_text()
    assert "### Failures" in md and f"- `tflite-fp32`: {error}" in md and error.endswith(")")
