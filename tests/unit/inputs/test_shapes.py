"""Free input dimensions: read from a saved architecture without TensorFlow, fixed by data.shapes, refused with
synthetic data when nothing fixes them."""

from __future__ import annotations

import pytest

from modelpack.errors import InputError
from modelpack.inputs import shapes
from modelpack.recipe.models import Recipe

IMAGE = {"name": "input_layer", "shape": [None, None, None, 3], "dtype": "float32"}
FIXED = {"name": "meta", "shape": [None, 4], "dtype": "float32"}


def recipe(**data) -> Recipe:
    return Recipe.model_validate({"name": "m", "model": {"path": "m.keras"}, "data": data},
                                 context={"check_files": False})


def test_data_shapes_fill_the_free_dimensions_and_must_agree_with_the_fixed_ones():
    assert shapes.apply([IMAGE, FIXED], {"input_layer": [32, 32, 3]}, "r.yaml") == [
        {**IMAGE, "shape": [None, 32, 32, 3]}, FIXED]
    with pytest.raises(InputError, match=r"per-sample shape \[32, 32, 1\], but the model declares "
                                         r"\[batch, any, any, 3\]"):
        shapes.apply([IMAGE], {"input_layer": [32, 32, 1]}, "r.yaml")
    with pytest.raises(InputError, match="names input 'image', but the model's inputs are input_layer"):
        shapes.apply([IMAGE], {"image": [32, 32, 3]}, "r.yaml")


def test_synthetic_data_needs_every_free_dimension_fixed():
    with pytest.raises(InputError, match=r"input 'input_layer' \[batch, any, any, 3\] has free dimensions.*"
                                         r"data.shapes: \{input_layer: \[224, 224, 3\]\}"):
        shapes.check_synthetic(recipe(synthetic=True), [IMAGE, FIXED], "r.yaml")
    shapes.check_synthetic(recipe(synthetic=True), [{**IMAGE, "shape": [None, 32, 32, 3]}], "r.yaml")
    shapes.check_synthetic(recipe(path="d.npz"), [IMAGE], "r.yaml")  # the samples give the size


def test_declared_inputs_are_read_from_the_keras_config():
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"name": "input_layer", "batch_shape": [None, None, None, 3],
                                                 "dtype": {"class_name": "DTypePolicy", "config": {"name": "float32"}}}},
        {"class_name": "Conv2D", "config": {"name": "conv"}}]}}
    assert shapes.declared_inputs(config) == [IMAGE]
    assert shapes.declared_inputs({"class_name": "Custom", "config": {}}) is None
    assert shapes.declared_inputs(None) is None
