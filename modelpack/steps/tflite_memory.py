"""TFLite conversion within bounded memory (worker process only: imports TensorFlow).

Measured on a 407 MB Dense model, TensorFlow's converter peaks at 3.19 GB for float32 and 4.27 GB for INT8 (about
634 MB of it is TensorFlow itself). Two things drive it:
- After converting, the converter reads the whole flatbuffer back into Python objects twice (conversion metadata,
  then deduplication of identical buffers) and writes it out again each time. With its constant buffers written
  after the flatbuffer (the converter's buffer-offset form, which LiteRT loads like any other model) both passes
  are skipped: 2.65 GB for the same model, and about a third faster.
- For INT8 the converter keeps the float flatbuffer, the calibration model and the quantized model alive in one
  call. `quantize_int8` runs the same three phases the converter runs (float conversion, calibration,
  quantization) one after another from a file, freeing each before the next and handing the freed heap back to
  the system in between, so the peak is that of the largest phase rather than of all three.
Both use the converter's own calibrator and quantizer with the arguments it passes them, so the INT8 model
computes what the converter's would (same outputs on the samples checked); the file is not byte-identical, as it
lacks the converter's conversion-metadata entry.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelpack.steps.base import RESULT, StepJob


def reusable(job: StepJob, file: str) -> Path | None:
    """The float flatbuffer `file` of the variant this job reuses (Step.REUSES), when that variant converted the
    usual way; else None. A variant that took another route (a recurrent model's frozen batch-1 WHILE loop, which
    TFLite's calibrator cannot run) is not reused: the job converts for itself."""
    if not job.dep_dir or "inputs" not in job.options:
        return None
    try:
        result = json.loads((Path(job.dep_dir) / RESULT).read_text())
    except (OSError, ValueError):
        return None
    model = Path(job.dep_dir) / file
    plain = result.get("ok") and "route" not in (result.get("details") or {})
    return model if plain and model.is_file() else None


def use_buffer_offset(converter: Any) -> None:
    """Write constant buffers after the flatbuffer (skips the converter's whole-model Python passes)."""
    converter._experimental_use_buffer_offset = True


def return_freed_memory() -> None:
    """Hand the heap glibc keeps after a phase frees its buffers back to the system (no-op elsewhere)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def quantize_int8(float_model: Path, dest: Path, samples: Callable, io: str) -> None:
    """Full-integer INT8 of the float flatbuffer `float_model` into `dest`, calibrated on `samples` (a
    representative-dataset generator); `io` "int8" makes the model's inputs and outputs int8 too."""
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize
    from tensorflow.lite.python.optimize import calibrator

    model = calibrator.add_intermediate_tensors(float_model.read_bytes())
    calibrating = calibrator.Calibrator(model)
    del model
    calibrated = calibrating.calibrate(samples)
    del calibrating
    return_freed_memory()
    io_type = tf.int8 if io == "int8" else tf.float32
    quantized = mlir_quantize(calibrated, False, input_data_type=io_type, output_data_type=io_type)
    del calibrated
    dest.write_bytes(quantized)
