"""Pipeline steps, registered by name: a new step is a module plus a registry line."""

from __future__ import annotations

from modelpack.registry import Registry
from modelpack.steps import inspect, int8_mixed, onnx, port, precision, prune, split, text, tflite
from modelpack.steps.base import Step, StepJob

STEPS: Registry[type[Step]] = Registry("step")
for _module in (inspect, text, port, precision, prune, tflite, onnx, int8_mixed, split):
    for _step in _module.STEPS:
        STEPS.register(_step)

__all__ = ["STEPS", "Step", "StepJob"]
