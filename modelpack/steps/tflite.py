"""TFLite converter variants: float32, dynamic-range, float16 and full-integer INT8."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from modelpack import limits
from modelpack.files.output import tree_bytes
from modelpack.steps import recurrent
from modelpack.steps.base import Step, StepJob


class _TFLiteStep(Step):
    FORMAT = "tflite"
    FILE = "model.tflite"

    def configure(self, converter: Any, job: StepJob, names: list[str]) -> None:
        """Set the converter options of this variant."""

    def run(self, job: StepJob, ctx: Any) -> dict:
        try:
            self._convert(exported(ctx, job), job)
            return {}
        except Exception as exc:
            if not recurrent.is_tensor_list_failure(exc):
                raise
        return self.recurrent(ctx.model(job), job)

    def _convert(self, route: Any, job: StepJob) -> None:
        with route as (make_converter, names):
            converter = make_converter()
            self.configure(converter, job, names)
            (job.out / self.FILE).write_bytes(converter.convert())

    def recurrent(self, loaded: Any, job: StepJob) -> dict:
        """The converter left a recurrent loop as TensorList ops: freeze a batch-1 trace into a WHILE loop."""
        self._convert(recurrent.frozen_static(loaded), job)
        return {"route": "frozen-while", "static_batch": 1,
                "why": "recurrent layers: a free batch dimension leaves their loop as TensorList ops"}


@contextmanager
def exported(source: Any, job: StepJob | None = None):
    """Yield (a factory of fresh converters, the signature input names) over a temporary SavedModel of `source`:
    a loaded model, or the worker state whose model for `job` it exports.

    Through a SavedModel so every source format gets the same `serving_default` signature
    (from_concrete_functions drops it for tf-keras models); the handlers call that signature. For a model of
    limits.LARGE_MODEL_BYTES or more the worker's copy is released once exported: the converter reads the
    SavedModel, and the memory the Keras model held serves the conversion instead.
    """
    import tensorflow as tf

    loaded = source.model(job) if job is not None else source
    names = [t["name"] for t in loaded.inputs]
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(loaded.obj, tmp, signatures={"serving_default": loaded.serve.get_concrete_function()})
        if job is not None and tree_bytes(Path(job.model_path)) >= limits.LARGE_MODEL_BYTES:
            del loaded
            source.release(job)
        yield (lambda: tf.lite.TFLiteConverter.from_saved_model(tmp)), names


def representative(calibration_npz: str, names: list[str]):
    """A representative-dataset generator over the calibration split, keyed by signature input name
    (the converter's own tensor order may differ from the model's)."""
    with np.load(calibration_npz) as npz:
        xs = [npz[f"in_{i}"] for i in range(len(names))]

    def samples():
        for i in range(len(xs[0])):
            yield {name: x[i : i + 1] for name, x in zip(names, xs)}

    return samples


def configure_int8(converter: Any, calibration_npz: str, names: list[str], io: str, *, allow_float: bool = False,
                   per_channel: bool = True) -> None:
    """Full-integer settings; `allow_float` lets ops kept in float (selective quantization) stay float."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calibration_npz, names)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.target_spec.supported_ops = [*ops, tf.lite.OpsSet.TFLITE_BUILTINS] if allow_float else ops
    if not per_channel:
        converter._experimental_disable_per_channel = True
    if io == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8


class TFLiteFP32(_TFLiteStep):
    """Convert to TFLite, float32 weights and math."""

    NAME = "tflite-fp32"


class TFLiteDynamic(_TFLiteStep):
    """TFLite with int8 weights and float activations (dynamic-range quantization)."""

    NAME = "tflite-dynamic"
    QUANTIZATION = "dynamic"

    def configure(self, converter: Any, job: StepJob, names: list[str]) -> None:
        import tensorflow as tf

        converter.optimizations = [tf.lite.Optimize.DEFAULT]


class TFLiteFP16(_TFLiteStep):
    """TFLite with float16 weights."""

    NAME = "tflite-fp16"
    QUANTIZATION = "float16"

    def configure(self, converter: Any, job: StepJob, names: list[str]) -> None:
        import tensorflow as tf

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]


class TFLiteInt8(_TFLiteStep):
    """TFLite full-integer quantization calibrated on the recipe's samples."""

    NAME = "tflite-int8"
    QUANTIZATION = "int8"
    USES_CALIBRATION = True

    def options(self, recipe: Any) -> dict:
        return {"io": recipe.optimize.int8.io}

    def configure(self, converter: Any, job: StepJob, names: list[str]) -> None:
        configure_int8(converter, job.data["calibration"], names, job.options.get("io", "float"))

    def recurrent(self, loaded: Any, job: StepJob) -> dict:
        """TFLite's calibrator cannot run a WHILE loop (it crashes), so INT8 unrolls the recurrent layers instead,
        after checking the unrolled copy computes what the model computes."""
        from modelpack.inputs import keras_io

        copy = keras_io.from_keras(recurrent.unrolled(loaded))
        with np.load(job.data["calibration"]) as npz:
            xs = [npz[f"in_{i}"][:UNROLL_CHECK_SAMPLES] for i in range(len(loaded.inputs))]
        worst = max(float(np.max(np.abs(a - b))) for a, b in zip(copy.predict(xs), loaded.predict(xs)))
        if not worst <= UNROLL_TOLERANCE:
            raise ValueError(f"the unrolled recurrent layers differ from the model by {worst:.2e}; "
                             "use tflite-dynamic or tflite-fp16 for this model")
        self._convert(exported(copy), job)
        return {"route": "unrolled", "unrolled_max_abs_err": worst,
                "why": "recurrent layers: TFLite's INT8 calibrator cannot run their loop, so it is unrolled"}


UNROLL_CHECK_SAMPLES = 16
UNROLL_TOLERANCE = 1e-5


STEPS = (TFLiteFP32, TFLiteDynamic, TFLiteFP16, TFLiteInt8)
