"""Steps: the converters and model readers that run inside the worker process (`worker.py`, started by the
build's jobs), file in, file out, so TensorFlow loads there and a crash takes down only its own variant. Each
module defines its Step classes (`base.Step`: NAME, options, run) and lists them in STEPS; a new step is a module
plus a line here. Worker-side failures a user can act on raise a `modelpack.errors.StepError`."""

from __future__ import annotations

from modelpack.registry import Registry
from modelpack.steps import distill, inspect, int8_mixed, onnx, port, precision, prune, split, text, tflite
from modelpack.steps.base import Step, StepJob

STEPS: Registry[type[Step]] = Registry("step")
for _module in (inspect, text, port, precision, prune, distill, tflite, onnx, int8_mixed, split):
    for _step in _module.STEPS:
        STEPS.register(_step)

# A variant built from the distilled student is named by this prefix and the variant it repeats
# (distilled-tflite-int8): the same step, another source model. The functions below are the one place that knows.
DISTILLED = "distilled-"


def distilled(variant: str) -> str:
    """The name of `variant` built from the distilled student."""
    return DISTILLED + variant


def is_distilled(variant: str) -> bool:
    """Whether `variant` is built from the distilled student."""
    return variant.startswith(DISTILLED)


def variant_step(variant: str) -> type[Step]:
    """The step that converts `variant` (a distilled variant's is its plain twin's)."""
    return STEPS.get(variant.removeprefix(DISTILLED))


__all__ = ["DISTILLED", "STEPS", "Step", "StepJob", "distilled", "is_distilled", "variant_step"]
