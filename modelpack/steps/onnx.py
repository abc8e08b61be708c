"""ONNX variants: tf2onnx conversion, then ONNX Runtime dynamic or static (QDQ) quantization."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from modelpack.steps.base import Step, StepJob


class OnnxFP32(Step):
    NAME = "onnx-fp32"
    PURPOSE = "Convert the serving function to ONNX with tf2onnx."
    FORMAT = "onnx"
    FILE = "model.onnx"

    def options(self, recipe: Any) -> dict:
        return {"opset": recipe.optimize.opset}

    def run(self, job: StepJob, ctx: Any) -> dict:
        import onnx
        import tensorflow as tf
        import tf2onnx

        loaded = ctx.model(job)
        specs = [tf.TensorSpec(t["shape"], t["dtype"], name=t["name"]) for t in loaded.inputs]
        proto, _ = tf2onnx.convert.from_function(loaded.serve, input_signature=specs, opset=job.options["opset"])
        onnx.save(proto, str(job.out / self.FILE))
        return {"opset": job.options["opset"]}


class OnnxDynamic(Step):
    NAME = "onnx-dynamic"
    PURPOSE = "ONNX Runtime dynamic quantization: int8 weights, activations quantized at run time."
    FORMAT = "onnx"
    QUANTIZATION = "dynamic"
    FILE = "model.onnx"
    REQUIRES = "onnx-fp32"

    def run(self, job: StepJob, ctx: Any) -> dict:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(Path(job.dep_dir) / self.FILE, job.out / self.FILE, weight_type=QuantType.QInt8)
        return {}


class OnnxInt8(Step):
    NAME = "onnx-int8"
    PURPOSE = "ONNX Runtime static QDQ quantization calibrated on the recipe's samples."
    FORMAT = "onnx"
    QUANTIZATION = "int8"
    FILE = "model.onnx"
    REQUIRES = "onnx-fp32"
    USES_CALIBRATION = True

    def options(self, recipe: Any) -> dict:
        q = recipe.optimize.int8
        return {"method": q.calibration_method, "per_channel": q.per_channel}

    def run(self, job: StepJob, ctx: Any) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            pre, names = preprocessed(Path(job.dep_dir) / self.FILE, Path(tmp))
            quantize_qdq(pre, job.out / self.FILE, job.data["calibration"], names,
                         job.options["method"], job.options["per_channel"])
        return dict(job.options)


def preprocessed(source: Path, tmp: Path) -> tuple[Path, list[str]]:
    """ONNX Runtime's pre-processing (shape inference, graph fusions) and the graph's input names."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = tmp / "pre.onnx"
    quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
    graph = onnx.load(str(pre)).graph
    weights = {i.name for i in graph.initializer}
    return pre, [i.name for i in graph.input if i.name not in weights]


def quantize_qdq(pre: Path, dest: Path, calibration_npz: str, names: list[str], method: str, per_channel: bool,
                 exclude: list[str] | tuple[str, ...] = ()) -> None:
    """Static QDQ INT8 of a pre-processed model; nodes in `exclude` stay float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    quantize_static(
        str(pre),
        str(dest),
        CalibrationReader(calibration_npz, names),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=methods[method],
        nodes_to_exclude=list(exclude),
    )


class CalibrationReader:
    """CalibrationDataReader over the calibration split, one sample per call."""

    def __init__(self, path: str, names: list[str], limit: int | None = None):
        with np.load(path) as npz:
            self._xs = [npz[f"in_{i}"][:limit] for i in range(len(names))]
        self._names = names
        self._i = 0

    def get_next(self) -> dict | None:
        if self._i >= len(self._xs[0]):
            return None
        feed = {n: x[self._i : self._i + 1] for n, x in zip(self._names, self._xs)}
        self._i += 1
        return feed

    def __iter__(self):
        while (feed := self.get_next()) is not None:
            yield feed

    def rewind(self) -> None:
        self._i = 0


STEPS = (OnnxFP32, OnnxDynamic, OnnxInt8)
