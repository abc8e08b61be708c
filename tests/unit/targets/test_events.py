"""The sample requests a build writes under events/: deterministic bytes, each format carrying the same samples."""

from __future__ import annotations

import base64
import io
import json
import sys

import numpy as np
import pytest

from modelpack.targets import events
from modelpack.targets.handler_files import template_dir

INPUTS = [{"name": "x", "shape": [None, 4, 4, 3], "dtype": "float32"}]
X = np.linspace(-1, 1, 2 * 4 * 4 * 3).reshape(2, 4, 4, 3)


def test_every_format_carries_the_same_samples_byte_for_byte():
    first, again = events.requests(INPUTS, "m", {"x": X}), events.requests(INPUTS, "m", {"x": X.copy()})
    assert first == again
    assert sorted(first) == ["function-url-npy.json", "oip.json", "predict.json", "predict.npy"]
    want = X.astype(np.float32)
    np.testing.assert_array_equal(np.load(io.BytesIO(first["predict.npy"]), allow_pickle=False), want)
    np.testing.assert_array_equal(np.array(json.loads(first["predict.json"])["instances"], np.float32), want)
    oip = json.loads(first["oip.json"])["inputs"][0]
    assert oip["shape"] == [2, 4, 4, 3] and oip["datatype"] == "FP32"
    event = json.loads(first["function-url-npy.json"])
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == first["predict.npy"]


def test_several_inputs_travel_as_npz():
    inputs = [{"name": "a", "shape": [None, 2], "dtype": "float32"}, {"name": "b", "shape": [None, 1], "dtype": "int32"}]
    files = events.requests(inputs, "m", {"a": np.ones((2, 2)), "b": np.array([[1], [2]])})
    with np.load(io.BytesIO(files["predict.npz"]), allow_pickle=False) as archive:
        assert archive["b"].dtype == np.int32 and archive["a"].shape == (2, 2)
    assert json.loads(files["predict.json"])["instances"][1] == {"a": [1.0, 1.0], "b": [2]}


@pytest.mark.parametrize("scale", ["raw", "unit", "tf", "torch", "caffe"])
def test_the_sample_image_decodes_back_to_the_sample(scale, monkeypatch):
    monkeypatch.syspath_prepend(str(template_dir("common")))
    for name in ("images", "payload"):
        sys.modules.pop(name, None)
    import images

    image = {"size": [4, 4], "resize": "bilinear", "channels": "rgb", "scale": scale, "max_pixels": 100}
    pixels = (np.arange(48).reshape(4, 4, 3) * 5).astype(np.float32)
    sample = images.scale(pixels, image)
    png = events.unscaled_png(sample, image)
    np.testing.assert_allclose(images.decode(png, image, "x"), sample, rtol=1e-5, atol=1e-4)
