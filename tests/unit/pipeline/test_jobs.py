"""How the job runner shares worker processes: one for a small model's jobs, a fresh one per job for a large
model, so what each converter keeps is returned before the next starts."""

from __future__ import annotations

from modelpack.pipeline.jobs import worker_batches


def test_small_models_share_a_worker_large_ones_get_one_each():
    pending = [("tflite-fp32", "k1", None), ("onnx-fp32", "k2", None), ("onnx-int8", "k3", None)]
    assert worker_batches(pending, large=False) == [pending]
    assert worker_batches(pending, large=True) == [[p] for p in pending]
