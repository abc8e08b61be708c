"""TFLite converter variants: float32, dynamic-range, float16, full-integer INT8 and 16x8 (int16 activations,
int8 weights)."""

from __future__ import annotations

import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from modelpack.errors import Int16Error
from modelpack.steps import recurrent, tflite_memory
from modelpack.steps.base import Step, StepJob


class _TFLiteStep(Step):
    FORMAT = "tflite"
    FILE = "model.tflite"
    # A large model's converter writes buffers after the flatbuffer (modelpack.steps.tflite_memory); not for the
    # calibrated variants (INT8, 16x8), whose converter calibrates its own float flatbuffer in Python.
    BUFFER_OFFSET = True

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
            if self.BUFFER_OFFSET and job.large:
                tflite_memory.use_buffer_offset(converter)
            (job.out / self.FILE).write_bytes(self.convert(converter))

    def convert(self, converter: Any) -> bytes:
        return converter.convert()

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
        if job is not None and job.large:
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
    BUFFER_OFFSET = False
    IN_PHASES = True  # a large model converts, calibrates and quantizes one phase at a time
    REUSES = "tflite-fp32"

    def options(self, recipe: Any) -> dict:
        return {"io": recipe.optimize.int8.io}

    def run(self, job: StepJob, ctx: Any) -> dict:
        if not (self.IN_PHASES and job.large):
            return super().run(job, ctx)
        # every TFLite variant's file is _TFLiteStep.FILE, the reused one's too
        float_model = tflite_memory.reusable(job, _TFLiteStep.FILE) if self.REUSES else None
        if float_model is not None:
            tflite_memory.quantize_int8(float_model, job.out / self.FILE,
                                        representative(job.data["calibration"], job.options["inputs"]),
                                        job.options.get("io", "float"))
            return {"route": "in-phases", "float_model": self.REUSES,
                    "why": f"a large model: calibrated and quantized from the {self.REUSES} variant's flatbuffer, "
                           "one phase at a time"}
        try:
            return self._in_phases(exported(ctx, job), job)
        except Exception as exc:
            if not recurrent.is_tensor_list_failure(exc):
                raise
        return self.recurrent(ctx.model(job), job)

    def _in_phases(self, route: Any, job: StepJob) -> dict:
        """The converter's own three phases with only one alive at a time (modelpack.steps.tflite_memory)."""
        with route as (make_converter, names), tempfile.TemporaryDirectory() as tmp:
            converter = make_converter()
            tflite_memory.use_buffer_offset(converter)
            float_model = Path(tmp) / "float.tflite"
            float_model.write_bytes(converter.convert())
            del converter
            tflite_memory.return_freed_memory()
            tflite_memory.quantize_int8(float_model, job.out / self.FILE,
                                        representative(job.data["calibration"], names), job.options.get("io", "float"))
        return {"route": "in-phases",
                "why": "a large model: float conversion, calibration and quantization run one after another, each "
                       "freeing its memory before the next"}

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


def configure_16x8(converter: Any, calibration_npz: str, names: list[str], *, per_channel: bool = True) -> None:
    """int16 activations and int8 weights, calibrated like INT8; float input and output. Only the 16x8 op set is
    allowed: an op without a 16x8 form makes the converter refuse (no silent float fallback)."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calibration_npz, names)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if not per_channel:
        converter._experimental_disable_per_channel = True


INT16_ADVICE = "use tflite-int8 (its accuracy search keeps such ops in float) or tflite-fp16 for this model"
# The converter's refusal, and LiteRT's words for an op it cannot load, prepare or run.
_CONVERTER_REFUSAL = re.compile(r"Quantization to 16x8-bit not yet supported for op: '(\w+)'")
_UNCALIBRATED = re.compile(r"Max and min for dynamic tensors should be recorded during calibration: "
                           r"Failed for tensor (\S+)")
_RUNTIME_OP = re.compile(r"builtin opcode '(\w+)'|Node number \d+ \((\w+)\) failed to (?:prepare|invoke)")


def convert_16x8(converter: Any) -> bytes:
    """Run a converter configured by `configure_16x8`; its refusal of an op without a 16x8 form is an Int16Error
    naming the op."""
    try:
        return converter.convert()
    except Exception as exc:
        text = str(exc)
        if found := _CONVERTER_REFUSAL.search(text):
            raise Int16Error(f"the TFLite converter has no 16x8 (int16 activation) form of op {found.group(1)}; "
                             f"{INT16_ADVICE}") from None
        if found := _UNCALIBRATED.search(text):
            raise Int16Error(f"TFLite's 16x8 quantizer recorded no range for tensor {found.group(1)} (an integer "
                             f"input, such as token ids fed to an Embedding, gets none in 16x8 mode); {INT16_ADVICE}") from None
        raise


def check_int16_runs(path: Path, calibration_npz: str, names: list[str]) -> dict:
    """Load the 16x8 model in the runtime the handlers ship (LiteRT's interpreter) and run one calibration
    sample; a model it cannot load or run (an op without an int16 kernel) raises Int16Error naming the op and
    quoting the interpreter. Returns what was checked."""
    from modelpack.measure.runner import handler_runtime

    runtime = handler_runtime()
    with np.load(calibration_npz) as npz:
        sample = {name: npz[f"in_{i}"][:1] for i, name in enumerate(names)}
    try:
        outputs = runtime.load(str(path), 1).predict(sample)
    except (RuntimeError, ValueError) as exc:
        text = " ".join(str(exc).split())
        found = _RUNTIME_OP.search(text)
        op = next((g for g in found.groups() if g), None) if found else None
        where = f" at op {op}" if op else ""
        raise Int16Error(f"LiteRT's interpreter, which the handlers ship, cannot run the 16x8 model{where} "
                         f"({text[:300]}); {INT16_ADVICE}") from None
    bad = [i for i, o in enumerate(outputs) if not np.all(np.isfinite(np.asarray(o, dtype=np.float64)))]
    if bad:
        raise Int16Error(f"the 16x8 model gives non-finite values at output {bad[0]} on a calibration sample in "
                         f"LiteRT's interpreter; {INT16_ADVICE}")
    return {"runtime_check": "ran one calibration sample in the handlers' LiteRT interpreter"}


class TFLite16x8(TFLiteInt8):
    """TFLite with int16 activations and int8 weights, calibrated on the recipe's samples (float I/O): for models
    whose activations do not survive int8. Checked at build in the handlers' runtime, which must have an int16
    kernel for every op; recurrent layers are unrolled as for INT8."""

    NAME = "tflite-16x8"
    QUANTIZATION = "int16x8"
    IN_PHASES = False
    REUSES = None

    def options(self, recipe: Any) -> dict:
        return {}

    def configure(self, converter: Any, job: StepJob, names: list[str]) -> None:
        configure_16x8(converter, job.data["calibration"], names)

    def convert(self, converter: Any) -> bytes:
        return convert_16x8(converter)

    def run(self, job: StepJob, ctx: Any) -> dict:
        names = [t["name"] for t in ctx.model(job).inputs]  # before a large model's copy is released
        details = super().run(job, ctx)
        return {**details, **check_int16_runs(job.out / self.FILE, job.data["calibration"], names)}


STEPS = (TFLiteFP32, TFLiteDynamic, TFLiteFP16, TFLiteInt8, TFLite16x8)
