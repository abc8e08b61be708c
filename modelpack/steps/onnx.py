"""ONNX variants: tf2onnx conversion, then ONNX Runtime dynamic or static (QDQ) quantization."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelpack import limits
from modelpack.report.records import Int8Setting
from modelpack.steps.base import Step, StepJob
from modelpack.steps.onnx_memory import CALLS, bounded_optimizers, convert_large


class OnnxFP32(Step):
    """Convert the serving function to ONNX with tf2onnx."""

    NAME = "onnx-fp32"
    FORMAT = "onnx"
    FILE = "model.onnx"

    def options(self, recipe: Any) -> dict:
        return {"opset": recipe.optimize.opset}

    def run(self, job: StepJob, ctx: Any) -> dict:
        import onnx

        large = job.large
        proto = to_onnx(lambda: ctx.model(job), job.options["opset"], large,
                        release=(lambda: ctx.release(job)) if large else None)
        onnx.save(proto, str(job.out / self.FILE))
        return {"opset": job.options["opset"]}


def to_onnx(model: Callable[[], Any], opset: int, large: bool = False,
            release: Callable[[], None] | None = None) -> Any:
    """The serving function of `model()` (the loaded model, loaded again after a `release`) as ONNX, with every
    captured constant frozen into the graph.

    `large` (a model of limits.LARGE_MODEL_BYTES or more) freezes and converts it without the copies of the
    usual route (modelpack.steps.onnx_memory); `release` lets go of the model once it is frozen, so its weights
    are not held twice while tf2onnx converts. A preprocessing layer (Normalization's mean and variance, for one)
    computes constants when it is built; the
    traced function captures them as extra placeholders after its arguments. tf2onnx's from_function names every
    non-resource placeholder an input, so those constants would become graph inputs that no caller feeds. Only
    the function's own arguments are named here; freezing turns the captures into constants.
    """
    import tensorflow as tf
    import tf2onnx
    from tf2onnx import tf_loader

    loaded = model()
    func = loaded.serve.get_concrete_function()
    real = [t.name for t in func.inputs[: len(loaded.inputs)]]
    outputs = [t.name for t in func.outputs if t.dtype != tf.dtypes.resource]
    rename = dict(zip(real, [t["name"] for t in loaded.inputs]))
    del loaded, func  # the large route must be able to free the model: only `model` keeps it
    with tf.device("/cpu:0"):
        with bounded_optimizers(collect=False):  # it keeps no copies to roll back to: nothing to collect
            proto = convert_large(model, real, outputs, opset, rename, release) if large else None
        if proto is None:
            func = model().serve.get_concrete_function()
            graph_def = inline_calls(tf_loader.from_function(func, real, outputs), real, outputs)
            with bounded_optimizers(collect=large):
                proto, _ = tf2onnx.convert.from_graph_def(graph_def, name=func.name, input_names=real, output_names=outputs,
                                                           opset=opset, tensors_to_rename=rename)
    erfc_as_erf(proto)
    unknown = sorted({f"{n.op_type} (layer {n.name.rsplit('/', 1)[0]})" for n in proto.graph.node
                      if n.domain in ("", "ai.onnx") and not onnx_defs_has(n.op_type)})
    if unknown:
        raise ValueError(f"tf2onnx left operations ONNX does not define: {', '.join(unknown)}; "
                         "use the TFLite variants for this model")
    fed = [i.name for i in proto.graph.input if i.name not in {w.name for w in proto.graph.initializer}]
    extra = [n for n in fed if n not in rename.values()]
    if extra:
        raise ValueError(f"the ONNX graph asks for inputs the model does not have ({', '.join(extra)}); "
                         "a layer's constants were not frozen. Use the TFLite variants for this model")
    return proto


# Attributes that keep grappler from inlining a function: Keras marks ops it compiles with XLA (its grouped
# and depthwise-as-grouped convolutions, as in ConvNeXt) `jit_compile=True`. ONNX has no function calls.
NO_INLINE = ("_XlaMustCompile", "_noinline")


def inline_calls(graph_def: Any, inputs: list[str], outputs: list[str]) -> Any:
    """The frozen graph with every call of a library function inlined, so tf2onnx sees plain ops.

    Raises:
        ValueError: a call is still there after inlining; names the layer it belongs to.
    """
    import tensorflow as tf
    from tf2onnx import tf_loader

    if not any(n.op in CALLS for n in graph_def.node):
        return graph_def
    for holder in [*graph_def.node, *graph_def.library.function]:
        for attr in NO_INLINE:
            if attr in holder.attr:
                del holder.attr[attr]
    with tf.Graph().as_default():
        graph_def = tf_loader.tf_optimize(inputs, outputs, graph_def)
    left = sorted({n.name.rsplit("/", 1)[0] for n in graph_def.node if n.op in CALLS})
    if left:
        raise ValueError(f"layer(s) {', '.join(left)} keep a nested TensorFlow function call that tf2onnx cannot "
                         "convert (a tf.function inside the layer's call); use the TFLite variants for this model")
    return graph_def


def onnx_defs_has(op_type: str) -> bool:
    import onnx

    return onnx.defs.has(op_type)


def erfc_as_erf(proto: Any) -> None:
    """Rewrite TensorFlow's Erfc (exact GELU is 0.5·x·erfc(-x/√2)), which tf2onnx passes through as an op ONNX
    does not have, as 1 - Erf(x) in place."""
    from onnx import TensorProto, helper

    nodes = list(proto.graph.node)
    if not any(n.op_type == "Erfc" and n.domain in ("", "ai.onnx") for n in nodes):
        return
    one = "modelpack_erfc_one"
    proto.graph.initializer.append(helper.make_tensor(one, TensorProto.FLOAT, [], [1.0]))
    rewritten = []
    for n in nodes:
        if n.op_type != "Erfc" or n.domain not in ("", "ai.onnx"):
            rewritten.append(n)
            continue
        erf = f"{n.output[0]}_erf"
        rewritten.append(helper.make_node("Erf", [n.input[0]], [erf], name=f"{n.name}_erf"))
        rewritten.append(helper.make_node("Sub", [one, erf], list(n.output), name=n.name))
    del proto.graph.node[:]
    proto.graph.node.extend(rewritten)


class OnnxDynamic(Step):
    """ONNX Runtime dynamic quantization: int8 weights, activations quantized at run time."""

    NAME = "onnx-dynamic"
    FORMAT = "onnx"
    QUANTIZATION = "dynamic"
    FILE = "model.onnx"
    REQUIRES = "onnx-fp32"

    def run(self, job: StepJob, ctx: Any) -> dict:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(Path(job.dep_dir) / self.FILE, job.out / self.FILE, weight_type=QuantType.QInt8)
        return {}


class OnnxInt8(Step):
    """ONNX Runtime static QDQ quantization calibrated on the recipe's samples."""

    NAME = "onnx-int8"
    FORMAT = "onnx"
    QUANTIZATION = "int8"
    FILE = "model.onnx"
    REQUIRES = "onnx-fp32"
    USES_CALIBRATION = True

    def options(self, recipe: Any) -> dict:
        return Int8Setting.from_recipe(recipe.optimize.int8).to_options()

    def run(self, job: StepJob, ctx: Any) -> dict:
        inputs = [t["name"] for t in ctx.model(job).inputs]
        if job.large:
            ctx.release(job)  # only its input names were needed: quantization works on the ONNX file
        with tempfile.TemporaryDirectory() as tmp:
            pre, names = preprocessed(Path(job.dep_dir) / self.FILE, Path(tmp), inputs)
            phases = quantize_qdq(pre, job.out / self.FILE, job.data["calibration"], names,
                                  Int8Setting.from_options(job.options))
        return {**job.options, **({"route": "in-phases"} if phases else {})}


def preprocessed(source: Path, tmp: Path, inputs: list[str]) -> tuple[Path, list[str]]:
    """ONNX Runtime's pre-processing (shape inference, graph fusions) and the input names calibration feeds.

    `inputs` are the model's inputs in order (the calibration file's in_0, in_1, ...); the graph must ask for
    exactly those, whatever order it lists them in.
    """
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = tmp / "pre.onnx"
    # By the ONNX file's size: it is what this holds in memory.
    if not (source.stat().st_size >= limits.LARGE_MODEL_BYTES and pre_process_from_files(source, pre)):
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
    graph = onnx.load(str(pre)).graph
    weights = {i.name for i in graph.initializer}
    fed = {i.name for i in graph.input if i.name not in weights}
    if fed != set(inputs):
        raise ValueError(f"the ONNX graph's inputs ({', '.join(sorted(fed))}) are not the model's inputs "
                         f"({', '.join(inputs)}); rebuild onnx-fp32 with this version of modelpack")
    return pre, list(inputs)


def pre_process_from_files(source: Path, pre: Path) -> bool:
    """What quant_pre_process(skip_symbolic_shape=True) does for an opset 13+ model (ONNX Runtime's basic graph
    optimisations, then ONNX shape inference, then its metadata mark), from file to file: quant_pre_process keeps
    a Python copy of the model alive while ONNX Runtime optimises another, one copy more than a large model needs.
    False when ONNX Runtime's optimiser or the shape inference fails: quant_pre_process then does it its own way
    (it carries on without the step that failed)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization.quant_utils import add_pre_process_metadata

    optimized = pre.with_name("optimized.onnx")
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(optimized)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])  # writes `optimized`
        onnx.shape_inference.infer_shapes_path(str(optimized), str(pre))
    except Exception:  # noqa: BLE001 - any failure: the library's own pre-processing decides what to skip
        return False
    finally:
        optimized.unlink(missing_ok=True)
    model = onnx.load(str(pre))
    add_pre_process_metadata(model)
    onnx.save(model, str(pre))
    return True


def quantize_qdq(pre: Path, dest: Path, calibration_npz: str, names: list[str], setting: Int8Setting,
                 exclude: list[str] | tuple[str, ...] = ()) -> bool:
    """Static QDQ INT8 of a pre-processed model; nodes in `exclude` stay float. True when a large model was
    calibrated apart from quantizing (calibrate_alone)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    with tempfile.TemporaryDirectory() as tmp:
        cache = {}
        if pre.stat().st_size >= limits.LARGE_MODEL_BYTES and calibration_cache_supported():
            cache["calibration_cache_path"] = str(Path(tmp) / "ranges.json")
            calibrate_alone(pre, Path(cache["calibration_cache_path"]), CalibrationReader(calibration_npz, names),
                            methods[setting.calibration_method])
        quantize_static(
            str(pre),
            str(dest),
            CalibrationReader(calibration_npz, names),
            quant_format=QuantFormat.QDQ,
            per_channel=setting.per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[setting.calibration_method],
            nodes_to_exclude=list(exclude),
            **cache,
        )
    return bool(cache)


def calibration_cache_supported() -> bool:
    """Whether this onnxruntime's quantize_static takes ranges computed beforehand (calibration_cache_path)."""
    import inspect

    from onnxruntime.quantization import calibrate, quantize_static

    return hasattr(calibrate, "save_tensors_data") and \
        "calibration_cache_path" in inspect.signature(quantize_static).parameters


def calibrate_alone(pre: Path, ranges: Path, reader: Any, method: Any) -> None:
    """The activation ranges quantize_static would compute, written to `ranges` (its calibration cache), so that
    calibrating (the model, an augmented copy and a session over it) and quantizing (the model and its quantized
    weights) are not alive at once: quantize_static keeps its own copy of a model while it calibrates."""
    import gc

    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(pre, list(set(QLinearOpsRegistry) | set(QDQRegistry)),
                                       augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=method)
        calibrator.collect_data(reader)
        save_tensors_data(calibrator.compute_data(), ranges)
        del calibrator
        gc.collect()


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
