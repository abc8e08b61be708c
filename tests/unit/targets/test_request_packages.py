"""What the function targets add beside the handler for the request formats a recipe asks for."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from modelpack.recipe.serving import ServingSpec
from modelpack.targets.serving_options import FAST_DECODERS, request_packages


def ctx(serving: dict, *shapes: list) -> SimpleNamespace:
    inputs = [{"name": f"in{i}", "shape": shape, "dtype": "float32"} for i, shape in enumerate(shapes)]
    return SimpleNamespace(recipe=SimpleNamespace(serving=ServingSpec(**serving)), info={"inputs": inputs})


@pytest.mark.parametrize("serving, shapes, want", [
    ({}, [[None, 8, 8, 1]], ()),  # digits: 64 numbers, JSON parses in microseconds
    ({}, [[None, 64, 64, 1]], FAST_DECODERS),  # 4,096 numbers per sample
    ({}, [[None, 10], [None, 64, 64]], FAST_DECODERS),  # any big input
    ({}, [[None, None, 3]], FAST_DECODERS),  # open-ended: a request may be as big as the payload limit
    ({"image": {"size": [8, 8]}}, [[None, 8, 8, 3]], ("pillow", *FAST_DECODERS)),  # base64 images
    ({"image": {"size": [8, 8]}, "fast_decoders": False}, [[None, 8, 8, 3]], ("pillow",)),
    ({"fast_decoders": True}, [[None, 4]], FAST_DECODERS),
    ({"fast_decoders": False}, [[None, 224, 224, 3]], ()),
])
def test_fast_decoders_follow_the_model_unless_the_recipe_says(serving, shapes, want):
    assert request_packages(ctx(serving, *shapes)) == want


def test_fast_decoders_are_pinned():
    """The same recipe gives the same package: every fast decoder is an exact version."""
    assert all("==" in p for p in FAST_DECODERS)
