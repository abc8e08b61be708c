"""The accuracy-aware INT8 steps, onnx-int8-mixed and tflite-int8-mixed: the search (modelpack.steps.int8_search)
driven through each runtime's quantizer, keeping the operations the search chose in float."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from modelpack.errors import Int16Error
from modelpack.report.records import Int8Setting
from modelpack.steps.base import Step, StepJob
from modelpack.steps.int8_search import (
    NOMINAL_INT8_DB,
    SENSITIVITY_SAMPLES,
    Backend,
    Judge,
    Search,
    channel_sqnr_db,
)


class _SearchStep(Step):
    """Shared driver; subclasses provide a backend (calibration settings, quantize, sensitivity)."""

    QUANTIZATION = "int8-mixed"
    USES_CALIBRATION = True
    USES_EVALUATION = True
    USES_BASELINE = True
    BASE: str = ""

    def options(self, recipe: Any) -> dict:
        s, b = recipe.optimize.search, recipe.budgets
        return {
            "task": recipe.task, "max_accuracy_drop": b.max_accuracy_drop, "min_agreement": b.min_agreement,
            **({"max_mae_increase": b.max_mae_increase} if b.max_mae_increase is not None else {}),
            "max_trials": s.max_trials, "max_minutes": s.max_minutes, "per_channel": list(s.per_channel),
            "methods": list(s.calibration_methods), "base": self.base_options(recipe),
        }

    def base_options(self, recipe: Any) -> dict:
        return {}

    def backend(self, job: StepJob, ctx: Any, tmp: Path) -> Backend:
        raise NotImplementedError

    def run(self, job: StepJob, ctx: Any) -> dict:
        judge = Judge(job)
        with tempfile.TemporaryDirectory() as tmp_s:
            tmp = Path(tmp_s)
            backend = self.backend(job, ctx, tmp)
            search = Search(backend, judge, job.options["max_trials"], job.options["max_minutes"], tmp)
            result = search.run()
            shutil.copyfile(result.pop("file"), job.out / self.FILE)
        return {"base_variant": self.BASE, **result}


# --- ONNX Runtime --------------------------------------------------------------------------------------------


class OnnxBackend(Backend):
    suffix = ".onnx"

    def __init__(self, job: StepJob, tmp: Path):
        from modelpack.steps.onnx import preprocessed

        self.job = job
        self.pre, self.names = preprocessed(Path(job.dep_dir) / "model.onnx", tmp, job.options["inputs"])
        self.tmp = tmp

    def settings(self) -> list[dict]:
        first = Int8Setting.from_options(self.job.options["base"]).to_trial()
        rest = [Int8Setting(m, pc).to_trial() for m in self.job.options["methods"]
                for pc in self.job.options["per_channel"]]
        return [first] + [s for s in rest if s != first]

    def quantize(self, setting: dict, keep_float: list[str], dest: Path) -> None:
        from modelpack.steps.onnx import quantize_qdq

        quantize_qdq(self.pre, dest, self.job.data["calibration"], self.names, Int8Setting.from_trial(setting),
                     exclude=keep_float)

    def sensitivity(self, setting: dict) -> list[dict]:
        """Float-model activations against the quantized model's dequantized ones, per activation."""
        import onnx
        from onnxruntime.quantization import qdq_loss_debug as dbg

        from modelpack.steps.onnx import CalibrationReader

        quantized = self.tmp / "sensitivity-q.onnx"
        self.quantize(setting, [], quantized)
        acts = {}
        for label, path in (("float", self.pre), ("qdq", quantized)):
            augmented = self.tmp / f"sensitivity-{label}-aug.onnx"
            dbg.modify_model_output_intermediate_tensors(str(path), str(augmented))
            acts[label] = dbg.collect_activations(
                str(augmented), CalibrationReader(self.job.data["calibration"], self.names, SENSITIVITY_SAMPLES))
        matched = dbg.create_activation_matching(acts["qdq"], acts["float"])
        scores = {name: channel_sqnr_db(np.concatenate(m["float"]), np.concatenate(m["post_qdq"]))
                  for name, m in matched.items() if m.get("float")}
        graph = onnx.load(str(self.pre)).graph
        producer = {out: node for node in graph.node for out in node.output}
        consumers: dict[str, list[str]] = {}
        for node in graph.node:
            for i in node.input:
                consumers.setdefault(i, []).append(node.name)
        units = []
        for tensor, score in scores.items():
            node = producer.get(tensor)
            upstream = _upstream_score(tensor, producer, scores)
            nodes = ([node.name] if node is not None else []) + consumers.get(tensor, [])
            if nodes:
                units.append({"tensor": tensor, "nodes": nodes, "score_db": score,
                              "damage_db": round(max(0.0, upstream - score), 3)})
        return sorted(units, key=lambda u: (-u["damage_db"], u["score_db"], u["tensor"]))


def _upstream_score(tensor: str, producer: dict, scores: dict[str, float]) -> float:
    """The worst score among the nearest scored activations feeding `tensor`'s producer (cap if none)."""
    node = producer.get(tensor)
    if node is None:
        return NOMINAL_INT8_DB
    found, stack, seen = [], list(node.input), set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in scores:
            found.append(scores[name])
        elif name in producer:
            stack.extend(producer[name].input)
    return min(found) if found else NOMINAL_INT8_DB


class OnnxInt8Mixed(_SearchStep):
    """onnx-int8 with the calibration and float operations an accuracy-aware search chose."""

    NAME = "onnx-int8-mixed"
    FORMAT = "onnx"
    FILE = "model.onnx"
    REQUIRES = "onnx-fp32"
    BASE = "onnx-int8"

    def base_options(self, recipe: Any) -> dict:
        return Int8Setting.from_recipe(recipe.optimize.int8).to_options()

    def backend(self, job: StepJob, ctx: Any, tmp: Path) -> Backend:
        return OnnxBackend(job, tmp)


# --- TFLite --------------------------------------------------------------------------------------------------


class TFLiteBackend(Backend):
    """Selective quantization through the TFLite quantization debugger's denylist."""

    suffix = ".tflite"
    refusals = (Int16Error,)

    def __init__(self, job: StepJob, make_converter, names: list[str]):
        self.job, self.make_converter, self.names = job, make_converter, names

    def settings(self) -> list[dict]:
        order = [True] + [pc for pc in self.job.options["per_channel"] if pc is not True]
        int16 = [Int8Setting(None, True, "int16")] if self.job.options.get("try_16x8") else []
        return [s.to_trial() for s in [*(Int8Setting(None, pc) for pc in order), *int16]]

    def keeps_float(self, setting: dict) -> bool:
        return Int8Setting.from_trial(setting).activations == "int8"

    def _converter(self, setting: dict, allow_float: bool):
        from modelpack.steps.tflite import configure_int8

        converter = self.make_converter()
        configure_int8(converter, self.job.data["calibration"], self.names, self.job.options["base"]["io"],
                       allow_float=allow_float,
                       per_channel=Int8Setting.from_trial(setting).per_channel)
        return converter

    def _debugger(self, setting: dict, options: Any, allow_float: bool):
        import tensorflow as tf

        from modelpack.steps.tflite import representative

        converter = self._converter(setting, allow_float)
        converter.experimental_new_quantizer = True
        samples = representative(self.job.data["calibration"], self.names)
        made: list[Any] = []

        def debug_dataset():
            # The debugger feeds lists in its interpreter's input order, which it only knows once built.
            details = made[0]._quant_interpreter.get_input_details()
            order = [_signature_name(d["name"], self.names, i) for i, d in enumerate(details)]
            for sample in samples():
                yield [sample[n] for n in order]

        made.append(tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=debug_dataset, debug_options=options))
        return made[0]

    def quantize(self, setting: dict, keep_float: list[str], dest: Path) -> None:
        import tensorflow as tf

        if Int8Setting.from_trial(setting).activations == "int16":
            self._quantize_16x8(setting, dest)
            return
        if not keep_float:
            dest.write_bytes(self._converter(setting, allow_float=False).convert())
            return
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=keep_float)
        dest.write_bytes(self._debugger(setting, options, allow_float=True).get_nondebug_quantized_model())

    def _quantize_16x8(self, setting: dict, dest: Path) -> None:
        """tflite-16x8's conversion and runtime check: an Int16Error refuses the trial, naming the op."""
        from modelpack.steps.tflite import check_int16_runs, configure_16x8, convert_16x8

        converter = self.make_converter()
        configure_16x8(converter, self.job.data["calibration"], self.names,
                       per_channel=Int8Setting.from_trial(setting).per_channel)
        dest.write_bytes(convert_16x8(converter))
        check_int16_runs(dest, self.job.data["calibration"], self.names)

    def sensitivity(self, setting: dict) -> list[dict]:
        """Per quantized op output: the float op's result against its dequantized INT8 result."""
        import tensorflow as tf

        def metric(float_values, quant_values, scale, zero_point):
            # Called once per sample with the raw integer tensor; the debugger averages over samples.
            dequantized = (np.asarray(quant_values, dtype=np.float64) - zero_point) * scale
            return channel_sqnr_db(float_values, dequantized)

        options = tf.lite.experimental.QuantizationDebugOptions(layer_direct_compare_metrics={"sqnr_db": metric})
        debugger = self._debugger(setting, options, allow_float=False)
        debugger.run()
        units = []
        for verify_name, stats in debugger.layer_statistics.items():
            score = float(stats["sqnr_db"])
            if math.isnan(score):
                continue
            tensor = debugger._get_operand_name_and_index(verify_name)[0]
            units.append({"tensor": tensor, "nodes": [tensor], "score_db": round(score, 3),
                          "damage_db": round(max(0.0, NOMINAL_INT8_DB - score), 3)})
        return sorted(units, key=lambda u: (u["score_db"], u["tensor"]))


def _signature_name(tensor_name: str, names: list[str], position: int) -> str:
    """The signature input behind an interpreter input tensor ("serving_default_x:0" -> "x")."""
    bare = tensor_name.split(":")[0].removeprefix("serving_default_")
    return bare if bare in names else names[position]


class TFLiteInt8Mixed(_SearchStep):
    """tflite-int8 with the operations an accuracy-aware search chose kept in float."""

    NAME = "tflite-int8-mixed"
    FORMAT = "tflite"
    FILE = "model.tflite"
    BASE = "tflite-int8"

    def base_options(self, recipe: Any) -> dict:
        return {"io": recipe.optimize.int8.io}

    def options(self, recipe: Any) -> dict:
        return {**super().options(recipe), "try_16x8": recipe.optimize.search.try_16x8}

    def run(self, job: StepJob, ctx: Any) -> dict:
        from modelpack.inputs import keras_io
        from modelpack.steps import recurrent
        from modelpack.steps.tflite import exported

        loaded = ctx.model(job)
        if recurrent.has_recurrent_layers(loaded):  # as tflite-int8 does: the calibrator cannot run their loop
            loaded = keras_io.from_keras(recurrent.unrolled(loaded))
        with exported(loaded) as (make_converter, names):
            self._factory = (make_converter, names)
            return super().run(job, ctx)

    def backend(self, job: StepJob, ctx: Any, tmp: Path) -> Backend:
        return TFLiteBackend(job, *self._factory)


STEPS = (OnnxInt8Mixed, TFLiteInt8Mixed)
MIXED = {s.BASE: s.NAME for s in STEPS}
