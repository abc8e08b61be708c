"""Model families that used to break a build: recurrent layers to builtin TFLite, preprocessing layers to ONNX,
string inputs no handler can take refused at inspect, tf-keras models taken over by Keras 3 so they can be split, and a Keras 3 model
built from a dict of inputs of mixed dtypes.

Every model is tiny (a few hundred parameters), seeded and built here with Keras 3 or tf-keras.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import modelpack
from modelpack.cli.main import cli
from modelpack.host.interpreters import host_arch, host_python
from modelpack.local.lambda_emulator import LambdaEmulator
from modelpack.steps import StepJob
from modelpack.steps.worker import run_jobs
from modelpack.targets.handler_files import copy_code
from tests.helpers.serving import serving_module

pytestmark = pytest.mark.slow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TFLITE = ["tflite-fp32", "tflite-dynamic", "tflite-fp16", "tflite-int8"]


def _recipe(tmp: Path, name: str, model: Path, variants: list[str], **optimize) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "model": {"path": str(model)},
        "data": {"synthetic": True, "evaluation": 16, "calibration": 16},
        "optimize": {"variants": variants, **optimize},
        "measure": {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1}},
    }, sort_keys=False))
    return path


def _runtime():
    """The serving runtime the handlers ship (modelpack/serving/common/model_runtime.py)."""
    return serving_module("model_runtime")


def _batch_equals_one_at_a_time(path: Path, named: dict[str, np.ndarray]) -> np.ndarray:
    model = _runtime().load(str(path))
    batch = model.predict(named)[0]
    singles = np.concatenate([model.predict({k: v[i : i + 1] for k, v in named.items()})[0]
                              for i in range(len(next(iter(named.values()))))])
    assert batch.shape[0] == len(next(iter(named.values())))
    np.testing.assert_array_equal(batch, singles)
    return batch


def lstm_over_tokens(path: Path) -> Path:
    import keras

    keras.utils.set_random_seed(7)
    x = keras.Input((12,), dtype="int32", name="tokens")
    h = keras.layers.Embedding(30, 4)(x)
    h = keras.layers.LSTM(6)(h)
    keras.Model(x, keras.layers.Dense(3, activation="softmax")(h)).save(path)
    return path


def bidirectional_gru(path: Path) -> Path:
    import keras

    keras.utils.set_random_seed(8)
    x = keras.Input((10, 3), name="series")
    h = keras.layers.Bidirectional(keras.layers.GRU(4))(x)
    keras.Model(x, keras.layers.Dense(2)(h)).save(path)
    return path


def preprocessing_cnn(path: Path) -> Path:
    """Rescaling, an adapted Normalization and CenterCrop inside the model, as keras.applications models have."""
    import keras

    keras.utils.set_random_seed(9)
    x = keras.Input((8, 8, 3), name="image")
    h = keras.layers.Rescaling(1 / 255.0)(x)
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(0).random((20, 8, 8, 3)).astype("float32"))
    h = keras.layers.CenterCrop(6, 6)(norm(h))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(h))
    keras.Model(x, keras.layers.Dense(3, activation="softmax")(h)).save(path)
    return path


def string_input(path: Path) -> Path:
    """A string input read by two layers: no single vocabulary lookup a handler could run for it."""
    import keras

    keras.utils.set_random_seed(10)
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=5)
    vectorize.adapt(["a b c", "d e f g", "a c e"])
    lookup = keras.layers.StringLookup(vocabulary=["a b c", "d e f g"], output_mode="one_hot")
    x = keras.Input((1,), dtype="string", name="text")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(21, 3)(vectorize(x)))
    h = keras.layers.Concatenate()([h, lookup(x)])
    keras.Model(x, keras.layers.Dense(2)(h)).save(path)
    return path


def tf_keras_residual(path: Path) -> Path:
    import tf_keras

    tf_keras.utils.set_random_seed(11)
    x = tf_keras.Input((6,), name="features")
    h = tf_keras.layers.Dense(8, activation="relu", name="stem")(x)
    h = tf_keras.layers.Add(name="skip")([h, tf_keras.layers.Dense(8, name="branch")(h)])
    h = tf_keras.layers.Dense(8, activation="relu", name="body")(h)
    tf_keras.Model(x, tf_keras.layers.Dense(3, activation="softmax", name="head")(h)).save(path)
    return path


def dict_inputs(folder: Path) -> Path:
    """A Keras 3 model called with {"num": float32, "cat": int32}: Keras 3 refuses the flat list tf-keras takes."""
    import keras

    keras.utils.set_random_seed(9)
    num = keras.Input((4,), name="num")
    cat = keras.Input((1,), dtype="int32", name="cat")
    h = keras.layers.Concatenate()([num, keras.layers.Flatten()(keras.layers.Embedding(10, 3)(cat))])
    keras.Model({"num": num, "cat": cat}, keras.layers.Dense(3, activation="softmax")(h)).save(folder / "model.keras")
    rng = np.random.default_rng(9)
    np.savez(folder / "data.npz", num=rng.standard_normal((40, 4)).astype("float32"),
             cat=rng.integers(0, 10, (40, 1)).astype("int32"), y=rng.integers(0, 3, 40))
    return folder / "model.keras"


def conv1d_any_length(path: Path) -> Path:
    """A 'valid' Conv1D over sequences of any length: the converted default shape (length 1) cannot run."""
    import keras

    keras.utils.set_random_seed(12)
    x = keras.Input((None, 3), name="series")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(4, 3, activation="relu")(x))
    keras.Model(x, keras.layers.Dense(2, activation="softmax")(h)).save(path)
    return path


def grouped_conv(path: Path) -> Path:
    """ConvNeXt's block: a grouped Conv2D (Keras compiles it as a nested XLA function) and exact GELU (Erfc)."""
    import keras

    keras.utils.set_random_seed(13)
    x = keras.Input((8, 8, 8), name="image")
    h = keras.layers.Conv2D(8, 3, padding="same", groups=8)(x)
    h = keras.layers.Dense(8, activation="gelu")(h)
    keras.Model(x, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))).save(path)
    return path


def test_lstm_over_tokens_builds_every_tflite_variant(tmp_path):
    model = lstm_over_tokens(tmp_path / "lstm.keras")
    out = tmp_path / "dist"
    report = modelpack.build(_recipe(tmp_path, "lstm", model, [*TFLITE, "tflite-16x8"]), out=out, cache_dir=None)
    by = {v["name"]: v for v in report.variants}
    for name in TFLITE:
        assert by[name]["status"] == "ok", by[name]["error"]
    # 16x8 cannot calibrate the token ids: refused with the reason and the way out, and the build goes on.
    refused = by["tflite-16x8"]
    assert refused["status"] != "ok" and refused["error"].startswith("Int16Error: ")
    assert "serving_default_tokens" in refused["error"] and "use tflite-int8" in refused["error"]
    assert "Traceback" not in refused["error"] and not (out / "variants" / "tflite-16x8.tflite").exists()
    assert "- `tflite-16x8`: Int16Error: " in (out / "report.md").read_text()  # the report's Failures list
    assert by["tflite-fp32"]["fidelity"]["max_abs_err"] <= 1e-4
    for name in ("tflite-fp32", "tflite-dynamic", "tflite-fp16"):
        assert by[name]["details"]["route"] == "frozen-while" and by[name]["details"]["static_batch"] == 1
    assert by["tflite-int8"]["details"]["route"] == "unrolled"

    import keras

    tokens = np.random.default_rng(3).integers(0, 30, (3, 12)).astype("int32")
    expected = np.asarray(keras.saving.load_model(model)(tokens))
    for name in ("tflite-fp32", "tflite-int8"):  # a fixed batch of 1 (looped) and a free batch
        batch = _batch_equals_one_at_a_time(out / "variants" / f"{name}.tflite", {"tokens": tokens})
        assert np.max(np.abs(batch - expected)) <= (1e-4 if name == "tflite-fp32" else 0.05)


def test_bidirectional_gru_converts_to_every_tflite_variant(tmp_path):
    """The converters alone (no measurement): each variant runs in the serving runtime and matches Keras."""
    import keras

    model = bidirectional_gru(tmp_path / "gru.keras")
    rng = np.random.default_rng(4)
    calibration = tmp_path / "calibration.npz"
    np.savez(calibration, in_0=rng.standard_normal((16, 10, 3)).astype("float32"))
    jobs = [StepJob(name, str(model), "keras3", str(tmp_path / name), data={"calibration": str(calibration)})
            for name in [*TFLITE, "tflite-16x8"]]
    results = run_jobs(jobs, tmp_path / "worker.log")
    series = rng.standard_normal((3, 10, 3)).astype("float32")
    expected = np.asarray(keras.saving.load_model(model)(series))
    for job in jobs:
        res = results[job.out_dir]
        assert res["ok"], res.get("error")
        batch = _batch_equals_one_at_a_time(job.out / "model.tflite", {"series": series})
        err = float(np.max(np.abs(batch - expected)))
        assert err <= {"tflite-fp32": 1e-4, "tflite-dynamic": 1e-4, "tflite-fp16": 1e-2, "tflite-int8": 0.5,
                       "tflite-16x8": 0.05}[job.step]
    assert results[jobs[0].out_dir]["details"]["static_batch"] == 1
    # 16x8 unrolls the loop as INT8 does, and was run in the handlers' interpreter at build.
    int16 = results[jobs[-1].out_dir]["details"]
    assert int16["route"] == "unrolled" and "LiteRT" in int16["runtime_check"]


def test_16x8_refuses_an_op_without_an_int16_form_naming_it(tmp_path):
    """LayerNormalization lowers to NEG, which the converter has no 16x8 form of: the variant fails as a
    StepError naming the op and the way out, not a converter dump."""
    import keras

    keras.utils.set_random_seed(14)
    x = keras.Input((6,), name="features")
    path = tmp_path / "norm.keras"
    keras.Model(x, keras.layers.Dense(3)(keras.layers.LayerNormalization()(keras.layers.Dense(8)(x)))).save(path)
    calibration = tmp_path / "calibration.npz"
    np.savez(calibration, in_0=np.random.default_rng(5).standard_normal((16, 6)).astype("float32"))
    job = StepJob("tflite-16x8", str(path), "keras3", str(tmp_path / "out"), data={"calibration": str(calibration)})
    res = run_jobs([job], tmp_path / "worker.log")[job.out_dir]
    assert not res["ok"] and res["error_type"] == "Int16Error"
    assert res["message"] == ("the TFLite converter has no 16x8 (int16 activation) form of op NEG; use tflite-int8 "
                              "(its accuracy search keeps such ops in float) or tflite-fp16 for this model")


def test_preprocessing_layers_convert_to_onnx_with_frozen_constants(tmp_path):
    import onnx

    model = preprocessing_cnn(tmp_path / "prep.keras")
    out = tmp_path / "dist"
    report = modelpack.build(_recipe(tmp_path, "prep", model, ["onnx-fp32", "onnx-int8"]), out=out, cache_dir=None)
    by = {v["name"]: v for v in report.variants}
    for name in ("onnx-fp32", "onnx-int8"):
        assert by[name]["status"] == "ok", by[name]["error"]
        graph = onnx.load(str(out / "variants" / f"{name}.onnx")).graph
        weights = {w.name for w in graph.initializer}
        assert [i.name for i in graph.input if i.name not in weights] == ["image"]
    assert by["onnx-fp32"]["fidelity"]["max_abs_err"] <= 1e-4


def test_string_input_is_refused_at_inspect_naming_input_and_layer(tmp_path):
    model = string_input(tmp_path / "text.keras")
    recipe = _recipe(tmp_path, "text", model, ["tflite-fp32"])
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp_path / "dist"), "--no-cache"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "'text' is a string tensor" in text and "TextVectorization" in text and "StringLookup" in text
    assert "Read it with one TextVectorization or StringLookup layer" in text and "token ids" in text
    assert "Traceback" not in text
    assert not (tmp_path / "dist").exists()


def test_tf_keras_residual_model_is_split_through_its_keras3_copy(tmp_path):
    model = tf_keras_residual(tmp_path / "residual.keras")
    recipe = _recipe(tmp_path, "residual", model, ["tflite-fp32"], split={"parts": 2})
    report = modelpack.build(recipe, out=tmp_path / "dist", cache_dir=None)
    assert report.model["format"] == "tf-keras"
    assert any("Keras 3 copy" in note for note in report.notes), report.notes
    split = report.split
    assert split["status"] == "ok", split
    assert split["at"] and split["at"][0] != "branch"  # never inside the skip connection
    assert split["keras_chain_ok"] and split["vs_unsplit"]["max_abs_err"] <= 1e-5
    assert [p["part"] for p in split["parts"]] == [1, 2]
    assert json.loads((tmp_path / "dist" / "report.json").read_text())["split"]["status"] == "ok"


def test_inspect_lists_the_cut_points_of_a_tf_keras_h5_model(tmp_path):
    model = tf_keras_residual(tmp_path / "residual.h5")
    result = CliRunner().invoke(cli, ["inspect", str(model), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["format"] == "tf-keras-h5" and out["cuts_error"] is None
    cuts = {c["after"]: c for c in out["cuts"]}
    assert not cuts["branch"]["legal"] and cuts["branch"]["crossing_tensors"] == 2  # inside the skip connection
    assert cuts["stem"]["legal"] and cuts["skip"]["legal"] and cuts["body"]["legal"]


def test_dict_input_model_builds_and_serves_named_instances(tmp_path):
    import keras

    model = dict_inputs(tmp_path)
    recipe = tmp_path / "dict.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "dict-inputs", "model": {"path": str(model)},
        "data": {"path": str(tmp_path / "data.npz"), "inputs": ["cat", "num"], "evaluation": 16, "calibration": 16},
        "optimize": {"variants": ["tflite-fp32"]},
        "measure": {"latency": {"warmup": 1, "runs": 5}, "cold_start": {"runs": 1}},
        "targets": [{"kind": "lambda-layer", "python": host_python(), "arch": host_arch()},
                    {"kind": "lambda-function", "max_batch": 8}],
    }, sort_keys=False))
    dist = tmp_path / "dist"
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(dist), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    report = json.loads((dist / "report.json").read_text())
    assert [(t["name"], t["dtype"]) for t in report["model"]["inputs"]] == [("cat", "int32"), ("num", "float32")]
    assert all(v["fidelity"]["agreement"] == 1.0 for v in report["variants"])
    sample = {"num": [0.5, -1.0, 2.0, 0.25], "cat": [7]}
    expected = keras.saving.load_model(model)({"num": np.asarray([sample["num"]], "float32"),
                                                "cat": np.asarray([sample["cat"]], "int32")})
    with LambdaEmulator(dist, tmp_path / "emu") as emu:
        body, _ = emu.invoke({"instances": [sample]})
        # `cat` feeds Embedding(10, 3): the build records its vocabulary, the handler refuses ids outside it.
        config = json.loads((emu.task / "modelpack.json").read_text())
        refused, _ = emu.invoke({"instances": [{**sample, "cat": [12]}]})
    assert np.max(np.abs(np.asarray(body["predictions"]) - np.asarray(expected))) <= 1e-5
    assert {i["name"]: i.get("vocabulary") for i in config["inputs"]} == {"cat": 10, "num": None}
    assert refused["statusCode"] == 400 and "'cat'" in refused["error"] and "0 to 9" in refused["error"], refused


def test_conv1d_over_any_length_is_served_at_every_valid_length(tmp_path, import_fresh):
    """The runtime allocates at the first request's shape, not the default length 1 the convolution cannot take;
    a too-short sequence is a clear error and leaves the model serving."""
    import keras

    model = conv1d_any_length(tmp_path / "conv1d.keras")
    job = StepJob("tflite-fp32", str(model), "keras3", str(tmp_path / "tflite-fp32"))
    res = run_jobs([job], tmp_path / "worker.log")[job.out_dir]
    assert res["ok"], res.get("error")
    served = _runtime().load(str(job.out / "model.tflite"))
    keras_model = keras.saving.load_model(model)
    rng = np.random.default_rng(5)
    for shape in ((1, 5, 3), (1, 30, 3), (2, 30, 3), (2, 5, 3)):
        series = rng.standard_normal(shape).astype("float32")
        got = served.predict({"series": series})[0]
        assert got.shape == (shape[0], 2)
        assert np.max(np.abs(got - np.asarray(keras_model(series)))) <= 1e-4
    with pytest.raises(ValueError, match=r"series \(1, 2, 3\)"):
        served.predict({"series": np.zeros((1, 2, 3), "float32")})
    series = rng.standard_normal((1, 5, 3)).astype("float32")
    assert np.max(np.abs(served.predict({"series": series})[0] - np.asarray(keras_model(series)))) <= 1e-4
    # Through the shipped handler, a too-short sequence is the request's fault: a 400 naming the shape.
    fn = tmp_path / "fn"
    copy_code(fn, ("lambda", "handler.py"))
    (fn / "model").mkdir()
    shutil.copyfile(job.out / "model.tflite", fn / "model" / "model.tflite")
    (fn / "modelpack.json").write_text(json.dumps({
        "name": "conv1d", "variant": "tflite-fp32", "task": "classification", "threads": 1, "max_batch": 4,
        "load": "lazy", "model": {"path": "model/model.tflite", "sha256": hashlib.sha256(
            (fn / "model" / "model.tflite").read_bytes()).hexdigest(), "in_layer": False},
        "inputs": [{"name": "series", "shape": [None, None, 3], "dtype": "float32"}],
        "outputs": [{"name": "output_0", "shape": [None, 2], "dtype": "float32"}]}))
    handler = import_fresh(fn, "handler")
    short = handler.handler({"instances": [[[0.0, 0.0, 0.0]] * 2]}, None)
    assert short["statusCode"] == 400 and "(1, 2, 3)" in short["error"]
    ok = handler.handler({"instances": series.tolist()}, None)
    assert np.max(np.abs(np.asarray(ok["predictions"]) - np.asarray(keras_model(series)))) <= 1e-4


def test_convnext_block_converts_to_onnx_without_nested_calls_or_erfc(tmp_path):
    import keras
    import onnx

    model = grouped_conv(tmp_path / "grouped.keras")
    job = StepJob("onnx-fp32", str(model), "keras3", str(tmp_path / "onnx-fp32"), options={"opset": 17})
    res = run_jobs([job], tmp_path / "worker.log")[job.out_dir]
    assert res["ok"], res.get("error")
    ops = {n.op_type for n in onnx.load(str(job.out / "model.onnx")).graph.node}
    assert "Conv" in ops and "Erf" in ops and not ops & {"StatefulPartitionedCall", "PartitionedCall", "Erfc"}
    image = np.random.default_rng(6).standard_normal((2, 8, 8, 8)).astype("float32")
    got = _runtime().load(str(job.out / "model.onnx")).predict({"image": image})[0]
    assert np.max(np.abs(got - np.asarray(keras.saving.load_model(model)(image)))) <= 1e-4
