"""TFLite converter variants: float32, dynamic-range, float16 and full-integer INT8."""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

from modelpack.steps.base import Step, StepJob


class _TFLiteStep(Step):
    FORMAT = "tflite"
    FILE = "model.tflite"

    def configure(self, converter: Any, job: StepJob, names: list[str]) -> None:
        """Set the converter options of this variant."""

    def run(self, job: StepJob, ctx: Any) -> dict:
        import tensorflow as tf

        loaded = ctx.model(job)
        # Through a SavedModel so every source format gets the same `serving_default` signature
        # (from_concrete_functions drops it for tf-keras models); the handlers call that signature.
        with tempfile.TemporaryDirectory() as tmp:
            tf.saved_model.save(loaded.obj, tmp, signatures={"serving_default": loaded.serve.get_concrete_function()})
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            self.configure(converter, job, [t["name"] for t in loaded.inputs])
            (job.out / self.FILE).write_bytes(converter.convert())
        return {}


class TFLiteFP32(_TFLiteStep):
    NAME = "tflite-fp32"
    PURPOSE = "Convert to TFLite, float32 weights and math."


class TFLiteDynamic(_TFLiteStep):
    NAME = "tflite-dynamic"
    PURPOSE = "TFLite with int8 weights and float activations (dynamic-range quantization)."
    QUANTIZATION = "dynamic"

    def configure(self, converter: Any, job: StepJob, names: list[str]) -> None:
        import tensorflow as tf

        converter.optimizations = [tf.lite.Optimize.DEFAULT]


class TFLiteFP16(_TFLiteStep):
    NAME = "tflite-fp16"
    PURPOSE = "TFLite with float16 weights."
    QUANTIZATION = "float16"

    def configure(self, converter: Any, job: StepJob, names: list[str]) -> None:
        import tensorflow as tf

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]


class TFLiteInt8(_TFLiteStep):
    NAME = "tflite-int8"
    PURPOSE = "TFLite full-integer quantization calibrated on the recipe's samples."
    QUANTIZATION = "int8"
    USES_CALIBRATION = True

    def options(self, recipe: Any) -> dict:
        return {"io": recipe.optimize.int8.io}

    def configure(self, converter: Any, job: StepJob, names: list[str]) -> None:
        import tensorflow as tf

        with np.load(job.data["calibration"]) as npz:
            xs = [npz[f"in_{i}"] for i in range(len(npz.files))]

        def representative():
            # Keyed by signature input name: the converter's own tensor order may differ from the model's.
            for i in range(len(xs[0])):
                yield {name: x[i : i + 1] for name, x in zip(names, xs)}

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if job.options.get("io") == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8


STEPS = (TFLiteFP32, TFLiteDynamic, TFLiteFP16, TFLiteInt8)
