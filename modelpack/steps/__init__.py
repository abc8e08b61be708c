"""Steps: the converters and model readers that run inside the worker process (`worker.py`, started by the
build's jobs), file in, file out, so TensorFlow loads there and a crash takes down only its own variant. Each
module defines its Step classes (`base.Step`: NAME, options, run) and lists them in STEPS; a new step is a module
plus a line here. Worker-side failures a user can act on raise a `modelpack.errors.StepError`."""

from __future__ import annotations

from modelpack.registry import Registry
from modelpack.steps import inspect, int8_mixed, onnx, port, precision, prune, split, text, tflite
from modelpack.steps.base import Step, StepJob

STEPS: Registry[type[Step]] = Registry("step")
for _module in (inspect, text, port, precision, prune, tflite, onnx, int8_mixed, split):
    for _step in _module.STEPS:
        STEPS.register(_step)

__all__ = ["STEPS", "Step", "StepJob"]
