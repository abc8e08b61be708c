"""A CNN built under the mixed_float16 policy (as trained on a GPU) gives every variant: the build detects the
policy, converts a float32 copy with the same weights, judges fidelity against the model in its own float16
computation, and says so. The model is tiny and created here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.recipe.models import DEFAULT_VARIANTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    import keras

    tmp = tmp_path_factory.mktemp("mixed")
    keras.utils.set_random_seed(31)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x = keras.Input((8, 8, 1), name="image")
        h = keras.layers.Conv2D(6, 3, activation="relu")(x)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.GlobalAveragePooling2D()(h)
        h = keras.layers.Dense(3)(h)
        model = keras.Model(x, keras.layers.Activation("softmax", dtype="float32")(h))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.save(tmp / "model.keras")
    rng = np.random.default_rng(31)
    np.savez(tmp / "data.npz", x=rng.standard_normal((60, 8, 8, 1)).astype("float32"), y=rng.integers(0, 3, 60))
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "mixed", "model": {"path": str(tmp / "model.keras")},
        "data": {"path": str(tmp / "data.npz"), "evaluation": 32, "calibration": 16},
        "measure": {"latency": {"warmup": 1, "runs": 5}, "cold_start": {"runs": 1}},
    }, sort_keys=False))
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp / "out"), "--cache-dir", str(tmp / "c")])
    assert result.exit_code == 0, result.output
    return {"report": json.loads((tmp / "out" / "report.json").read_text()), "model": tmp / "model.keras",
            "out": tmp / "out", "data": tmp / "data.npz"}


def test_every_variant_converts_from_the_float32_copy(built):
    report = built["report"]
    by = {v["name"]: v for v in report["variants"]}
    assert set(by) == {"keras", *DEFAULT_VARIANTS}
    for name, v in by.items():
        assert v["status"] == "ok", (name, v["error"])
    precision = report["model"]["precision"]
    assert precision["policy"] == "mixed_float16" and precision["layers"] >= 4
    assert 0 < precision["max_rel_err"] <= precision["tolerance"]  # float16 arithmetic, not a wrong copy
    note = next(n for n in report["notes"] if n.startswith("mixed_float16 model"))
    assert "float32 copy with the same weights" in note and "in half precision" in note


def test_fidelity_is_judged_against_the_model_in_float16(built):
    """The float32 variants differ from the float16 model by what float16 rounds, not by 1e-4: their reference
    is the model as it computes, and they are accepted (the float32 conversion is checked against the copy)."""
    import keras

    by = {v["name"]: v for v in built["report"]["variants"]}
    with np.load(built["data"]) as npz:
        x = npz["x"][:8]
    model = keras.saving.load_model(built["model"])
    assert "mixed_float16" in {layer.dtype_policy.name for layer in model.layers}  # the user's file is untouched
    half = np.asarray(model(x))
    from tests.helpers.serving import serving_module

    runtime = serving_module("model_runtime").load(str(built["out"] / by["tflite-fp32"]["path"]))
    converted = np.concatenate([runtime.predict({"image": x[i : i + 1]})[0] for i in range(len(x))])
    assert 1e-6 < np.max(np.abs(converted - half)) <= 0.05
    assert by["tflite-fp32"]["fidelity"]["max_abs_err"] == pytest.approx(built["report"]["model"]["precision"]
                                                                         ["max_abs_err"], rel=0.5, abs=1e-4)
    assert all(v["fidelity"]["agreement"] >= 0.9 for v in by.values())
