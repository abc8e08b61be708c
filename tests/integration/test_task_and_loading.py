"""The build refuses numbers that would mean nothing and a model that does not load as the recipe says, with models
created here: a regression model built as classification, labels beyond the model's classes, counts that would
calibrate on evaluation samples, dict inputs fed in the wrong order, and a custom layer the recipe cannot load
(cache or not). One regression build (task inferred, overlap allowed) checks that its report names its metrics."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli

pytestmark = pytest.mark.slow
MEASURE = {"latency": {"warmup": 1, "runs": 5}, "cold_start": {"runs": 1}}


def _write(folder, name: str, **fields) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "measure": MEASURE, **fields}, sort_keys=False))
    return str(path)


def _run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result, " ".join(result.output.split())


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    """A linear model of a disease-progression-like number (whole values such as 151.0), and its data; its
    weights are the ones the data was made with, so it predicts well without training."""
    import keras

    tmp = tmp_path_factory.mktemp("regression")
    rng = np.random.default_rng(41)
    x = rng.standard_normal((220, 6)).astype("float32")
    y = np.round(150 + 40 * x[:, 0] - 25 * x[:, 1] + 5 * rng.standard_normal(220)).astype("float64")
    inp = keras.Input((6,), name="features")
    dense = keras.layers.Dense(1)
    model = keras.Model(inp, dense(inp))
    dense.set_weights([np.array([[40.0], [-25.0], [0.0], [0.0], [0.0], [0.0]], "float32"), np.array([150.0], "float32")])
    model.save(tmp / "model.keras")
    np.savez(tmp / "data.npz", x=x, y=y)
    return tmp


def test_regression_labels_under_classification_are_refused_at_validate(regression):
    recipe = _write(regression, "as-classes", model={"path": str(regression / "model.keras")}, task="classification",
                    data={"path": str(regression / "data.npz"), "evaluation": 100, "calibration": 50})
    result, text = _run("validate", recipe)
    assert result.exit_code == 2, result.output
    assert "task is classification, but data.labels 'y' looks like a measured quantity" in text
    assert "set `task: regression`" in text


def test_counts_that_overlap_are_refused_at_validate_with_the_counts(regression):
    recipe = _write(regression, "overlap", model={"path": str(regression / "model.keras")},
                    data={"path": str(regression / "data.npz"), "evaluation": 200, "calibration": 100})
    result, text = _run("validate", recipe)
    assert result.exit_code == 2, result.output
    assert "has 220 samples, but data.evaluation asks for 200 and data.calibration for 100 (300 in all)" in text


@pytest.fixture(scope="module")
def regression_build(regression):
    recipe = _write(regression, "progression", model={"path": str(regression / "model.keras")},
                    data={"path": str(regression / "data.npz"), "evaluation": 200, "calibration": 40,
                          "allow_overlap": True},
                    optimize={"variants": ["tflite-fp32", "tflite-int8"]},
                    budgets={"max_mae_increase": 5.0})
    result, text = _run("build", recipe, "--out", regression / "out", "--cache-dir", regression / "c")
    assert result.exit_code == 0, result.output
    return {"text": text, "report": json.loads((regression / "out" / "report.json").read_text()),
            "md": (regression / "out" / "report.md").read_text(), "recipe": recipe}


def test_an_inferred_regression_names_its_metrics_and_budgets_in_their_unit(regression_build):
    report, text = regression_build["report"], regression_build["text"]
    assert report["task"]["name"] == "regression" and report["task"]["inferred"] is True
    assert "Task: regression (inferred, set `task` to override): labels 'y' are whole numbers" in text
    keras_row = report["variants"][0]
    reg = keras_row["regression"]
    assert set(reg) == {"mae", "rmse", "r2", "mae_increase"} and reg["mae_increase"] == 0.0
    assert 0.5 < reg["r2"] <= 1 and keras_row["accuracy"] == pytest.approx(-reg["mae"])
    int8 = next(v for v in report["variants"] if v["name"] == "tflite-int8")
    row = next(b for b in int8["budgets"] if b["name"] == "max_mae_increase")
    assert row["value"] == pytest.approx(int8["regression"]["mae"] - reg["mae"])
    header = next(line for line in regression_build["md"].splitlines() if line.startswith("| variant |"))
    assert "| MAE | Δ MAE | RMSE | R² | max err vs Keras |" in header and "accuracy" not in header


def test_allowed_overlap_is_said_loudly(regression_build):
    report, text = regression_build["report"], regression_build["text"]
    assert report["data"]["overlap"] == 20  # 200 + 40 of 220 samples
    assert "warning: 20 of the 40 calibration samples are evaluation samples too" in text
    assert any(n.startswith("Data: 20 of the 40 calibration samples") for n in report["notes"])
    assert "20 of them also evaluation samples" in report["data"]["description"]


def test_bench_prints_the_regression_columns(regression_build):
    result, text = _run("bench", regression_build["recipe"])
    assert result.exit_code == 0, result.output
    assert "MAE" in text and "RMSE" in text and "R²" in text and "Task: regression" in text


def test_labels_beyond_the_models_classes_are_refused_before_conversion(tmp_path):
    import keras

    inp = keras.Input((4,), name="x")
    keras.Model(inp, keras.layers.Dense(3, activation="softmax")(inp)).save(tmp_path / "model.keras")
    np.savez(tmp_path / "data.npz", x=np.zeros((30, 4), "float32"), y=np.arange(30) % 6)
    recipe = _write(tmp_path, "classes", model={"path": str(tmp_path / "model.keras")},
                    data={"path": str(tmp_path / "data.npz"), "evaluation": 20, "calibration": 10})
    result, text = _run("build", recipe, "--out", tmp_path / "out", "--no-cache")
    assert result.exit_code == 2, result.output
    assert "classification with 3 classes in output 'output_0', but data.labels 'y' go up to 5" in text
    assert "[5/11]" not in text  # nothing was converted


def test_two_same_shape_dict_inputs_in_the_wrong_order_do_not_pass(tmp_path):
    """Keras orders a dict of inputs by key: {"price": ..., "area": ...} takes area first."""
    import keras

    area, price = keras.Input((4,), name="area"), keras.Input((4,), name="price")
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Concatenate()([price, area]))
    keras.Model({"price": price, "area": area}, out).save(tmp_path / "model.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", price=rng.standard_normal((30, 4)).astype("float32"),
             area=rng.standard_normal((30, 4)).astype("float32"), y=rng.integers(0, 2, 30))
    recipe = _write(tmp_path, "dict", model={"path": str(tmp_path / "model.keras")},
                    data={"path": str(tmp_path / "data.npz"), "inputs": ["price", "area"], "evaluation": 20,
                          "calibration": 10})
    result, text = _run("build", recipe, "--out", tmp_path / "out", "--no-cache")
    assert result.exit_code == 2, result.output
    assert "data.inputs lists price, area, so array 'price' feeds input 1 ('area')" in text
    assert "area [batch, 4] float32, price [batch, 4] float32 (a model built from a dict of inputs takes them " \
           "sorted by key)" in text


CUSTOM = '''
import keras


@keras.saving.register_keras_serializable(package="demo")
class ScaledTanh(keras.layers.Layer):
    def call(self, x):
        return keras.ops.tanh(x) * 2.0


CUSTOM_OBJECTS = {"demo>ScaledTanh": ScaledTanh, "ScaledTanh": ScaledTanh}
'''


def test_a_warm_cache_does_not_hide_a_recipe_that_cannot_load(tmp_path, monkeypatch):
    """Built once with custom_objects (the cache is then warm), then without: the model cannot load as the recipe
    now says, and the build says which class is missing and how to name it, cache or not."""
    (tmp_path / "demo_layers.py").write_text(textwrap.dedent(CUSTOM))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{__import__('os').environ.get('PYTHONPATH', '')}")
    import demo_layers
    import keras

    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(demo_layers.ScaledTanh()(inp)))
    model.save(tmp_path / "model.keras")
    sys.modules.pop("demo_layers", None)
    np.savez(tmp_path / "data.npz", x=np.zeros((30, 4), "float32"), y=np.arange(30) % 3)
    data = {"path": str(tmp_path / "data.npz"), "evaluation": 20, "calibration": 10}
    cache = tmp_path / "cache"
    with_module = _write(tmp_path, "custom", data=data, optimize={"variants": ["tflite-fp32"]},
                         model={"path": str(tmp_path / "model.keras"), "trust_code": True,
                                "custom_objects": "demo_layers"})
    first, text = _run("build", with_module, "--out", tmp_path / "out", "--cache-dir", cache)
    assert first.exit_code == 0, first.output
    without = _write(tmp_path, "custom-bare", data=data, optimize={"variants": ["tflite-fp32"]},
                     model={"path": str(tmp_path / "model.keras"), "trust_code": True})
    second, text = _run("build", without, "--out", tmp_path / "out2", "--cache-dir", cache)
    assert second.exit_code == 2, second.output
    assert "the model uses 'ScaledTanh', a custom class or function this build cannot find" in text
    assert "model.custom_objects: your.module" in text and "trust its code" not in text
    (tmp_path / "demo_layers.py").write_text("CUSTOM_OBJECTS = {}\n")
    third, text = _run("build", with_module, "--out", tmp_path / "out3", "--cache-dir", cache)
    assert third.exit_code == 2, third.output
    assert "model.custom_objects (demo_layers) does not define it: its CUSTOM_OBJECTS has nothing" in text
