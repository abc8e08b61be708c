"""Every supported model format converts, and float32 variants match Keras within 1e-4."""

from __future__ import annotations

import os

import pytest
import yaml

import modelpack

pytestmark = pytest.mark.slow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def keras3_functional(path):
    import keras

    keras.utils.set_random_seed(1)
    x = keras.Input((12, 12, 3), name="pixels")
    h = keras.layers.Conv2D(8, 3, padding="same")(x)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.DepthwiseConv2D(3, padding="same")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(4, activation="softmax")(h)
    model = keras.Model(x, out)
    # Non-trivial batch-norm statistics, so folding them is actually exercised.
    bn = model.layers[2]
    bn.moving_mean.assign(keras.random.uniform((8,), seed=2))
    bn.moving_variance.assign(keras.random.uniform((8,), 0.5, 2.0, seed=3))
    model.save(path)
    return path


def keras3_sequential(path):
    import keras

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    model.save(path)
    return path


def keras3_multi_input(path):
    import keras

    keras.utils.set_random_seed(3)
    a = keras.Input((6,), name="features")
    b = keras.Input((4,), name="tokens", dtype="int32")
    e = keras.layers.Flatten()(keras.layers.Embedding(10, 2)(b))
    h = keras.layers.Concatenate()([a, e])
    out1 = keras.layers.Dense(3, activation="softmax", name="cls")(h)
    out2 = keras.layers.Dense(1, name="score")(h)
    keras.Model([a, b], [out1, out2]).save(path)
    return path


def tf_keras_model(path):
    import tf_keras

    tf_keras.utils.set_random_seed(4)
    model = tf_keras.Sequential([
        tf_keras.layers.InputLayer((8, 8, 1)),
        tf_keras.layers.Conv2D(4, 3, activation="relu"),
        tf_keras.layers.Flatten(),
        tf_keras.layers.Dense(5, activation="softmax"),
    ])
    model.save(path)
    return path


def savedmodel(path):
    import keras

    keras.utils.set_random_seed(5)
    x = keras.Input((7,), name="row")
    model = keras.Model(x, keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8, activation="tanh")(x)))
    model.export(str(path))
    return path


CASES = {
    "keras3-functional-bn-depthwise": (keras3_functional, "m.keras", "keras3"),
    "keras3-sequential": (keras3_sequential, "m.keras", "keras3"),
    "keras3-multi-input": (keras3_multi_input, "m.keras", "keras3"),
    "tf-keras-keras": (tf_keras_model, "m.keras", "tf-keras"),
    "tf-keras-h5": (tf_keras_model, "m.h5", "tf-keras-h5"),
    "savedmodel": (savedmodel, "saved", "savedmodel"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_format_converts_and_matches(case, tmp_path):
    make, filename, fmt = CASES[case]
    model_path = make(tmp_path / filename)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": case,
        "model": {"path": str(model_path)},
        "data": {"synthetic": True, "evaluation": 32, "calibration": 16},
        "optimize": {"variants": ["tflite-fp32", "onnx-fp32", "tflite-int8"]},
        "measure": {"latency": {"warmup": 1, "runs": 5}, "cold_start": {"runs": 1}},
    }))
    report = modelpack.bench(recipe, cache_dir=None)
    assert report.model["format"] == fmt
    by = {v["name"]: v for v in report.variants}
    for name in ("keras", "tflite-fp32", "onnx-fp32"):
        assert by[name]["status"] == "ok", by[name]["error"]
    for name in ("tflite-fp32", "onnx-fp32"):
        assert by[name]["fidelity"]["max_abs_err"] < 1e-4
    assert by["tflite-int8"]["status"] == "ok", by["tflite-int8"]["error"]
    if case == "keras3-multi-input":
        assert [i["name"] for i in report.model["inputs"]] == ["features", "tokens"]
        assert [i["dtype"] for i in report.model["inputs"]] == ["float32", "int32"]
        assert len(report.model["outputs"]) == 2
    assert report.data["synthetic"] is True and by["keras"]["accuracy"] is None
