"""optimize.distill's recipe checks and the derivation of a student's config from the model's (no TensorFlow): the
sized layers shrink by the width except those that give an output, and a layer a width means nothing for is refused
by name."""

from __future__ import annotations

import json
import zipfile

import pytest
from pydantic import ValidationError

from modelpack.errors import DistillError
from modelpack.recipe.models import DistillSpec, OptimizeSpec
from modelpack.steps import distilled, is_distilled, variant_step
from modelpack.steps.distill import class_labels, output_kind
from modelpack.steps.student import derive_config
from tests.helpers.paths import DIGITS


def digits_config() -> dict:
    with zipfile.ZipFile(DIGITS / "model.keras") as zf:
        return json.loads(zf.read("config.json"))["config"]


def sizes(config: dict) -> dict[str, int]:
    return {lay["config"]["name"]: lay["config"].get("units") or lay["config"].get("filters")
            for lay in config["layers"] if lay["class_name"] in ("Dense", "Conv2D")}


def test_width_shrinks_every_sized_layer_but_the_output():
    config = digits_config()
    student, kept = derive_config(config, "Functional", 0.5)
    assert sizes(config) == {"conv2d": 16, "conv2d_1": 32, "dense": 64, "probs": 10}
    assert sizes(student) == {"conv2d": 8, "conv2d_1": 16, "dense": 32, "probs": 10}
    assert kept == ["probs"]
    assert all("build_config" not in lay for lay in student["layers"])  # rebuilt at the new sizes
    assert sizes(config)["dense"] == 64  # the model's own config is left as it was


def test_output_reached_through_size_following_layers_keeps_its_units():
    config = digits_config()
    tail = {"module": "keras.layers", "class_name": "Activation", "name": "act", "registered_name": None,
            "config": {"name": "act", "activation": "softmax"},
            "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__",
                                         "config": {"keras_history": ["probs", 0, 0]}}], "kwargs": {}}]}
    config = {**config, "layers": [*config["layers"], tail], "output_layers": [["act", 0, 0]]}
    student, kept = derive_config(config, "Functional", 0.25)
    assert kept == ["probs"] and sizes(student)["probs"] == 10 and sizes(student)["dense"] == 16


def test_a_layer_without_a_known_width_is_refused_by_name():
    config = digits_config()
    config["layers"][5] = {**config["layers"][5], "class_name": "LSTM"}
    with pytest.raises(DistillError, match=r"layer 'conv2d_1' \(LSTM\).*optimize\.distill\.student"):
        derive_config(config, "Functional", 0.5)


def test_a_subclassed_model_is_refused():
    with pytest.raises(DistillError, match="subclassed MyNet.*optimize.distill.student"):
        derive_config({"layers": []}, "MyNet", 0.5)


def test_recipe_takes_one_student_and_a_width_below_one():
    assert DistillSpec(width=0.5).temperature > 1
    for bad in ({}, {"width": 0.5, "student": "x.keras"}, {"width": 1.0}, {"width": 0}, {"width": 0.5, "alpha": 2}):
        with pytest.raises(ValidationError):
            DistillSpec(**bad)
    with pytest.raises(ValidationError, match="exclude each other"):
        OptimizeSpec(distill={"width": 0.5}, prune={"final_sparsity": 0.5})


def test_distilled_variant_names_map_to_their_plain_step():
    assert distilled("tflite-int8") == "distilled-tflite-int8" and is_distilled("distilled-onnx-fp32")
    assert not is_distilled("tflite-int8")
    assert variant_step("distilled-onnx-int8") is variant_step("onnx-int8")
    assert variant_step("distilled-onnx-int8").REQUIRES == "onnx-fp32"


def test_output_kinds_and_labels():
    import numpy as np

    probs = np.array([[0.2, 0.8], [0.5, 0.5]], dtype=np.float32)
    assert output_kind(probs, "classification") == "probabilities"
    assert output_kind(probs * 3 - 1, "classification") == "logits"
    assert output_kind(probs[:, :1], "classification") == "sigmoid"
    assert output_kind(probs, "regression") == "values"
    assert class_labels(np.eye(3)[[2, 0]], 3).tolist() == [2, 0]
    assert class_labels(np.array([[1], [0]]), 3).tolist() == [1, 0]
