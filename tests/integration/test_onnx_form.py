"""The form an ONNX model ships in: written by the runtime that will open it, timed in fresh processes, the
fastest kept only with a clear margin, and every form answering exactly as the converted model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from modelpack.targets import onnx_form
from tests.helpers.handlers import onnx_model
from tests.helpers.serving import serving_module

pytestmark = pytest.mark.slow
SITE = Path(np.__file__).resolve().parents[1]  # this interpreter's site-packages: numpy and onnxruntime


def test_forms_are_written_timed_and_the_choice_recorded(tmp_path):
    source = onnx_model(tmp_path / "src" / "model.onnx")
    dest = tmp_path / "form"
    dest.mkdir()
    x = np.array([[0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]], dtype=np.float32)
    record = onnx_form._choose(source, dest, SITE, sys.executable, {"x": x})
    assert set(record["load_ms_median"]) == {"onnx", "optimized", "ort"} and record["runs"] == onnx_form.RUNS
    assert all(v > 0 for v in record["load_ms_median"].values())
    best = record["form"]
    kept = sorted(p.name for p in dest.iterdir())
    assert kept == [onnx_form.FORMS[best]]  # the sample and the other forms are gone
    # Kept only with the margin: otherwise the converted file stays.
    medians = record["load_ms_median"]
    assert best == "onnx" or medians[best] <= (1 - onnx_form.LOAD_GAIN) * medians["onnx"]
    json.dumps(record, allow_nan=False)


def test_every_form_answers_as_the_converted_model(tmp_path):
    """Each form, written by onnxruntime and opened by the shipped loader (.ort from its bytes, in place)."""
    source = onnx_model(tmp_path / "model.onnx")
    x = np.array([[0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]], dtype=np.float32)
    import subprocess

    forms = {name: tmp_path / file for name, file in onnx_form.FORMS.items() if name != "onnx"}
    subprocess.run([sys.executable, "-c", onnx_form._CONVERT, str(source), str(forms["optimized"]),
                    str(forms["ort"])], check=True)
    runtime = serving_module("model_runtime")
    expected = runtime.load(str(source)).predict({"x": x})[0]
    for name, path in forms.items():
        model = runtime.load(str(path))
        assert np.array_equal(model.predict({"x": x})[0], expected), name
    assert forms["ort"].read_bytes()[4:8] == b"ORTM"  # ONNX Runtime's own format, not a renamed graph


def test_an_ort_model_with_large_weights_answers_after_the_memory_it_was_read_from_is_reused(tmp_path):
    """16 MB of weights: the session must own them, not point into the bytes it was created from (the Python
    binding frees its copy of those once the session exists, and a large freed block goes back to the system)."""
    import subprocess

    from onnx import TensorProto, helper

    from tests.helpers.handlers import save_graph

    w = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    source = save_graph(tmp_path / "model.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])],
                        [("x", TensorProto.FLOAT, [1, 2048])], [("y", TensorProto.FLOAT, [1, 2048])], {"w": w})
    ort_file = tmp_path / "model.ort"
    subprocess.run([sys.executable, "-c", onnx_form._CONVERT, str(source), str(tmp_path / "model.opt.onnx"),
                    str(ort_file)], check=True)
    runtime = serving_module("model_runtime")
    x = np.linspace(-1, 1, 2048, dtype=np.float32)[None]
    model = runtime.load(str(ort_file))
    reused = [bytearray(8 << 20) for _ in range(4)]  # allocations that take over any freed block
    assert np.array_equal(model.predict({"x": x})[0], runtime.load(str(source)).predict({"x": x})[0])
    del reused
