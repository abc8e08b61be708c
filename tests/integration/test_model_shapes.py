"""Models beyond one fixed-shape input and one output: a Conv1D over a variable-length time axis and a model
with a class head and a regression head, each built with Lambda targets and served through the generated
handler under the Lambda emulator with real samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.host.interpreters import host_arch, host_python
from modelpack.local.lambda_emulator import LambdaEmulator

pytestmark = pytest.mark.slow

MEASURE = {"latency": {"warmup": 1, "runs": 5}, "cold_start": {"runs": 1}}


def _recipe(folder: Path, name: str, variant: str, **extra) -> Path:
    data = {
        "name": name, "model": {"path": str(folder / "model.keras")},
        "data": {"path": str(folder / "data.npz"), "evaluation": 16, "calibration": 16},
        "optimize": {"variants": [variant]}, "measure": MEASURE,
        "targets": [{"kind": "lambda-layer", "python": host_python(), "arch": host_arch()},
                    {"kind": "lambda-function", "top_k": 2, "max_batch": 8}],
        **extra,
    }
    path = folder / f"recipe-{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _build(recipe: Path, out: Path, cache: Path):
    return CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--cache-dir", str(cache)])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Both models, saved with Keras 3 (seeded), with labelled data."""
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("shapes")
    conv = root / "conv1d"
    conv.mkdir()
    inp = keras.Input((None, 3), name="series")
    # padding="valid" with kernel 3: a time axis of length 1 (a synthetic guess) cannot be convolved.
    x = keras.layers.Conv1D(8, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling1D()(x)
    keras.Model(inp, keras.layers.Dense(4, activation="softmax")(x)).save(conv / "model.keras")
    np.savez(conv / "data.npz", x=rng.standard_normal((40, 12, 3)).astype("float32"), y=rng.integers(0, 4, 40))
    two = root / "two"
    two.mkdir()
    inp = keras.Input((6,), name="features")
    h = keras.layers.Dense(16, activation="relu")(inp)
    heads = [keras.layers.Dense(3, activation="softmax", name="cls")(h), keras.layers.Dense(1, name="reg")(h)]
    keras.Model(inp, heads).save(two / "model.keras")
    np.savez(two / "data.npz", x=rng.standard_normal((40, 6)).astype("float32"), y=rng.integers(0, 3, 40))
    return {"conv1d": conv, "two": two, "cache": root / "cache"}


@pytest.fixture(scope="module")
def conv_dist(models):
    folder = models["conv1d"]
    result = _build(_recipe(folder, "conv1d", "onnx-fp32"), folder / "out", models["cache"])
    assert result.exit_code == 0, result.output
    return folder / "out"


@pytest.fixture(scope="module")
def two_dist(models):
    folder = models["two"]
    result = _build(_recipe(folder, "two", "tflite-fp32"), folder / "out", models["cache"])
    assert result.exit_code == 0, result.output
    return folder / "out"


def _runtime(dist: Path):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "modelpack" / "serving" / "common" / "model_runtime.py"
    spec = importlib.util.spec_from_file_location("_shapes_runtime", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = json.loads((dist / "report.json").read_text())
    return module.load(str(dist / next(v["path"] for v in report["variants"] if v["name"] == report["selected"])))


def test_variable_length_conv1d_is_checked_and_served_with_real_samples(conv_dist, tmp_path):
    report = json.loads((conv_dist / "report.json").read_text())
    details = {a["target"]: a.get("details", {}) for a in report["artifacts"] if a["path"].endswith(".zip")}
    assert details["lambda-layer"]["verified"] is True
    assert details["lambda-layer"]["served_shapes"] == {"series": [1, 12, 3]}
    assert details["lambda-function"]["handler_check"]["served_shapes"] == {"series": [1, 12, 3]}
    assert details["lambda-function"]["handler_check"]["max_abs_err_vs_variant"] <= 1e-5
    model = _runtime(conv_dist)
    rng = np.random.default_rng(1)
    short, long = rng.standard_normal((2, 5, 3)).astype("float32"), rng.standard_normal((1, 30, 3)).astype("float32")
    with LambdaEmulator(conv_dist, tmp_path) as emu:
        one, _ = emu.invoke({"instances": short[:1].tolist()})
        two, _ = emu.invoke({"instances": short.tolist()})
        other, _ = emu.invoke({"inputs": long.tolist()})
    for body, x in ((one, short[:1]), (two, short), (other, long)):
        assert np.max(np.abs(np.asarray(body["predictions"]) - model.predict({"series": x})[0])) <= 1e-5
        assert [len(row) for row in body["top_k"]] == [2] * len(x)
    assert np.asarray(two["predictions"]).shape == (2, 4)


def test_two_outputs_report_and_serve_every_output(two_dist, tmp_path):
    report = json.loads((two_dist / "report.json").read_text())
    names = [o["name"] for o in report["model"]["outputs"]]
    assert len(names) == 2
    for variant in report["variants"]:
        per = variant["fidelity"]["outputs"]
        assert [p["name"] for p in per] == names and [p["scored"] for p in per] == [True, False]
        assert per[0]["agreement"] == variant["fidelity"]["agreement"] == 1.0 and per[1]["agreement"] is None
        assert all(p["max_abs_err"] <= 1e-5 for p in per)
    function = next(a for a in report["artifacts"] if a["path"] == "lambda/function.zip")
    assert function["details"]["handler_check"]["max_abs_err_vs_variant"] <= 1e-5
    x = np.random.default_rng(2).standard_normal((2, 6)).astype("float32")
    expected = _runtime(two_dist).predict({"features": x})
    with LambdaEmulator(two_dist, tmp_path) as emu:
        one, _ = emu.invoke({"instances": x[:1].tolist()})
        rows, _ = emu.invoke({"instances": x.tolist()})
        columns, _ = emu.invoke({"inputs": {"features": x.tolist()}})
    assert len(one["predictions"]) == 1 and set(one["predictions"][0]) == set(names)
    assert len(rows["predictions"]) == 2
    for i, name in enumerate(names):  # row format: one {output: value} object per row
        got = np.asarray([row[name] for row in rows["predictions"]])
        assert np.max(np.abs(got - expected[i])) <= 1e-5
        assert np.max(np.abs(np.asarray(columns["outputs"][name]) - expected[i])) <= 1e-5  # columnar: outputs
    assert "predictions" not in columns
    # top_k ranks the class head only: three classes, two kept, scores from that head.
    top = rows["top_k"]
    assert [[t["class"] for t in row] for row in top] == [list(np.argsort(-p)[:2]) for p in expected[0]]
    assert all(abs(t["score"] - expected[0][r][t["class"]]) <= 1e-5 for r, row in enumerate(top) for t in row)


def test_task_output_scores_the_named_head_and_bad_names_are_refused(models, two_dist, tmp_path):
    folder = models["two"]
    names = [o["name"] for o in json.loads((two_dist / "report.json").read_text())["model"]["outputs"]]
    bad = _build(_recipe(folder, "two-bad", "tflite-fp32", task_output="nope"), tmp_path / "bad", models["cache"])
    assert bad.exit_code == 2, bad.output
    assert "task_output is 'nope'" in bad.output and all(n in bad.output for n in names)
    split = _build(_recipe(folder, "two-split", "tflite-fp32", optimize={"variants": ["tflite-fp32"],
                                                                        "split": {"parts": 2}}),
                   tmp_path / "split", models["cache"])
    assert split.exit_code == 2 and "optimize.split" in split.output and "2 outputs" in split.output
    reg = _recipe(folder, "two-reg", "tflite-fp32", task="regression", task_output=names[1],
                  data={"path": str(folder / "data-reg.npz"), "evaluation": 16, "calibration": 16, "labels": "r"})
    with np.load(folder / "data.npz") as npz:
        arrays = dict(npz)
    np.savez(folder / "data-reg.npz", **arrays, r=np.zeros((40, 1), "float32"))
    result = _build(reg, tmp_path / "reg", models["cache"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "reg" / "report.json").read_text())
    keras_row = report["variants"][0]
    assert [p["scored"] for p in keras_row["fidelity"]["outputs"]] == [False, True]
    expected = _runtime(tmp_path / "reg").predict({"features": arrays["x"]})[1]
    # The regression score is the negative MAE of the named head against zero labels, over the evaluation split.
    assert keras_row["accuracy"] < 0 and keras_row["regression"]["mae"] == pytest.approx(-keras_row["accuracy"])
    assert keras_row["regression"]["mae"] <= float(np.max(np.abs(expected))) + 1e-6


def test_a_model_the_runtime_cannot_run_is_not_blamed_on_slimming(conv_dist, tmp_path):
    """A length-1 time axis (the old synthetic guess) fails in onnxruntime itself: the error says so, with the
    runtime's own message, because the same check fails against an unslimmed install too."""
    from modelpack import limits
    from modelpack.errors import TargetError
    from modelpack.host.interpreters import find
    from modelpack.targets import sitepackages
    from modelpack.targets.runtimes import RUNTIMES

    python = host_python()
    os_name, glibc = limits.LAMBDA_RUNTIMES[python]
    with pytest.raises(TargetError) as err:
        sitepackages.prepare(tmp_path / "tree", RUNTIMES["onnxruntime"], python, host_arch(), glibc, os_name, {},
                             find(python), conv_dist / "variants" / "onnx-fp32.onnx",
                             {"series": np.zeros((1, 1, 3), "float32")})
    message = str(err.value)
    assert "series [1, 1, 3]" in message and "Invalid input shape" in message
    assert "unslimmed runtime fails the same way" in message and "slimming rule" not in message
