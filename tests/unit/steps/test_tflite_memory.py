"""Which float flatbuffer a large model's INT8 step may start from (no TensorFlow needed)."""

from __future__ import annotations

import json

from modelpack.steps.base import RESULT, StepJob
from modelpack.steps.tflite_memory import reusable


def _job(tmp_path, result: dict | None, *, inputs: bool = True, model: bool = True) -> StepJob:
    dep = tmp_path / "tflite-fp32"
    dep.mkdir(parents=True)
    if result is not None:
        (dep / RESULT).write_text(json.dumps(result))
    if model:
        (dep / "model.tflite").write_bytes(b"TFL3")
    options = {"io": "float", **({"inputs": ["features"]} if inputs else {})}
    return StepJob("tflite-int8", "model.keras", "keras3", str(tmp_path / "out"), options, dep_dir=str(dep))


def test_a_plainly_converted_float_model_is_reused(tmp_path):
    job = _job(tmp_path, {"ok": True, "details": {}})
    assert reusable(job, "model.tflite") == tmp_path / "tflite-fp32" / "model.tflite"


def test_a_recurrent_models_frozen_loop_is_not_reused(tmp_path):
    # tflite-fp32 of a recurrent model is a batch-1 WHILE loop, which TFLite's calibrator cannot run
    job = _job(tmp_path, {"ok": True, "details": {"route": "frozen-while", "static_batch": 1}})
    assert reusable(job, "model.tflite") is None


def test_nothing_is_reused_from_a_failed_missing_or_unplanned_variant(tmp_path):
    assert reusable(_job(tmp_path / "a", {"ok": False, "error": "boom"}), "model.tflite") is None
    assert reusable(_job(tmp_path / "b", None), "model.tflite") is None
    assert reusable(_job(tmp_path / "c", {"ok": True, "details": {}}, model=False), "model.tflite") is None
    assert reusable(_job(tmp_path / "d", {"ok": True, "details": {}}, inputs=False), "model.tflite") is None
