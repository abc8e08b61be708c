"""Accuracy-aware INT8 (worker side): when full quantization breaks an accuracy budget, find the variant that
meets it with the fewest operations kept in float.

The search, per INT8 variant, bounded by `optimize.search.max_trials` and `max_minutes`:
1. calibration: every configured calibration method x per-channel setting, fully quantized, the recipe's own
   setting first. If any meets the accuracy budgets, the most accurate of those is the result.
2. mixed precision: with the closest calibration setting, rank activations by how much quantizing them hurts
   (per-channel SQNR of float against quantized values on the calibration samples), then keep the operations
   around the top-k activations in float. k grows 1, 2, 4, ... until the budgets hold, then bisects back
   to the fewest k that holds, so float operations stop being added as soon as the budgets are met.
Every trial is judged on the evaluation samples with the same budget check selection uses, and is returned
with its accuracy, agreement, size and a quick latency so the report can show the whole search.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from modelpack.steps.base import Step, StepJob

SENSITIVITY_SAMPLES = 64
SQNR_CAP_DB = 60.0
NOMINAL_INT8_DB = 40.0  # about what rounding a well-scaled tensor to 8 bits gives
QUICK_RUNS = 30


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


class Backend:
    """What the search needs from a quantizer."""

    suffix = ""

    def settings(self) -> list[dict]:
        """Calibration settings to try, the plain variant's own first."""
        raise NotImplementedError

    def quantize(self, setting: dict, keep_float: list[str], dest: Path) -> None:
        raise NotImplementedError

    def sensitivity(self, setting: dict) -> list[dict]:
        """Units to keep in float, most harmful first: {"tensor", "nodes", "score_db", "damage_db"}."""
        raise NotImplementedError


class Judge:
    """Runs a candidate on the evaluation samples with the handlers' runtime and applies the accuracy budgets."""

    def __init__(self, job: StepJob):
        from modelpack.budgets import check
        from modelpack.measure import metrics
        from modelpack.measure.runner import handler_runtime
        from modelpack.recipe.models import Budgets

        self._check, self._metrics = check, metrics
        o = job.options
        self.task = o["task"]
        self.budgets = Budgets(max_accuracy_drop=o["max_accuracy_drop"], min_agreement=o["min_agreement"])
        with np.load(job.data["evaluation"]) as npz:
            self.xs = [npz[k] for k in sorted((k for k in npz.files if k.startswith("in_")), key=lambda k: int(k[3:]))]
            self.labels = npz["labels"] if "labels" in npz.files else None
        with np.load(job.data["baseline"]) as npz:
            self.reference = [npz[f"out_{i}"] for i in range(len(npz.files))]
        self.scored = int(o.get("scored", 0))
        self.base_accuracy = metrics.accuracy(self.reference, self.labels, self.task, scored=self.scored)
        self._runtime = handler_runtime()
        self.names = o["inputs"]

    def __call__(self, path: Path) -> dict:
        model = self._runtime.load(str(path), 1)
        names = self.names
        parts = [model.predict({n: x[i : i + 1] for n, x in zip(names, self.xs)}) for i in range(len(self.xs[0]))]
        outputs = [np.concatenate([np.asarray(p[j]) for p in parts]) for j in range(len(parts[0]))]
        accuracy = self._metrics.accuracy(outputs, self.labels, self.task, scored=self.scored)
        drop = None if accuracy is None or self.base_accuracy is None else self.base_accuracy - accuracy
        agreement = self._metrics.fidelity(outputs, self.reference, self.task, self.scored)["agreement"]
        rows = self._check({"status": "ok", "accuracy_drop": drop, "fidelity": {"agreement": agreement}}, self.budgets)
        one = {n: x[:1] for n, x in zip(names, self.xs)}
        for _ in range(5):
            model.predict(one)
        times = []
        for _ in range(QUICK_RUNS):
            t = time.perf_counter()
            model.predict(one)
            times.append((time.perf_counter() - t) * 1e3)
        return {
            "accuracy": accuracy, "accuracy_drop": drop, "agreement": agreement,
            "passed": all(r["passed"] for r in rows), "shortfall": _shortfall(rows),
            "size_bytes": path.stat().st_size, "p50_ms": float(np.median(times)),
        }


def _shortfall(rows: list[dict]) -> float:
    """How far a trial is from the budgets (0 when it meets them); unmeasurable counts as far."""
    total = 0.0
    for r in rows:
        if r["value"] is None:
            return math.inf
        total += max(0.0, r["value"] - r["limit"]) if r["name"].startswith("max_") else max(0.0, r["limit"] - r["value"])
    return total


class Search:
    def __init__(self, backend: Backend, judge: Judge, max_trials: int, max_minutes: float, tmp: Path):
        self.backend, self.judge, self.tmp = backend, judge, tmp
        self.max_trials = max_trials
        self.deadline = time.monotonic() + max_minutes * 60
        self.trials: list[dict] = []
        self.files: list[Path] = []
        self.stopped: str | None = None

    def _budget_left(self) -> bool:
        if len(self.trials) >= self.max_trials:
            self.stopped = f"stopped at max_trials ({self.max_trials})"
        elif time.monotonic() > self.deadline:
            self.stopped = "stopped at max_minutes"
        return self.stopped is None

    def attempt(self, setting: dict, units: list[dict]) -> dict | None:
        if not self._budget_left():
            return None
        nodes = _union(u["nodes"] for u in units)
        dest = self.tmp / f"trial-{len(self.trials)}{self.backend.suffix}"
        started = time.monotonic()
        self.backend.quantize(setting, nodes, dest)
        trial = {"trial": len(self.trials), **setting, "float_activations": [u["tensor"] for u in units],
                 "float_nodes": nodes, **self.judge(dest), "seconds": round(time.monotonic() - started, 3)}
        self.trials.append(trial)
        self.files.append(dest)
        return trial

    def run(self) -> dict:
        for setting in self.backend.settings():
            if self.attempt(setting, []) is None:
                break
        ranking: list[dict] = []
        if self.trials and not any(t["passed"] for t in self.trials):
            closest = min(self.trials, key=lambda t: (t["shortfall"], t["trial"]))
            setting = {k: closest[k] for k in self.backend.settings()[0]}
            ranking = self.backend.sensitivity(setting)
            self._grow(setting, ranking)
        return self._result(ranking)

    def _grow(self, setting: dict, ranking: list[dict]) -> None:
        """Fewest top-ranked units that meet the budgets: double k until it passes, then bisect."""
        failing, passing, k = 0, None, 1
        while k <= len(ranking):
            trial = self.attempt(setting, ranking[:k])
            if trial is None:
                return
            if trial["passed"]:
                passing = k
                break
            failing = k
            k = len(ranking) + 1 if k == len(ranking) else min(2 * k, len(ranking))
        while passing is not None and passing - failing > 1:
            mid = (failing + passing) // 2
            trial = self.attempt(setting, ranking[:mid])
            if trial is None:
                return
            if trial["passed"]:
                passing = mid
            else:
                failing = mid

    def _result(self, ranking: list[dict]) -> dict:
        passing = [t for t in self.trials if t["passed"]]
        if passing:
            best = min(passing, key=lambda t: (len(t["float_nodes"]), -_num(t["accuracy"]), -_num(t["agreement"]),
                                                t["size_bytes"], t["trial"]))
        else:
            best = min(self.trials, key=lambda t: (t["shortfall"], len(t["float_nodes"]), t["trial"]))
        for t in self.trials:
            if math.isinf(t["shortfall"]):
                t["shortfall"] = None
        return {
            "passed": bool(passing), "chosen_trial": best["trial"], "trials": self.trials,
            "float_nodes": best["float_nodes"], "float_activations": best["float_activations"],
            "setting": {k: best[k] for k in self.backend.settings()[0]},
            "sensitivity": [{k: u[k] for k in ("tensor", "score_db", "damage_db")} for u in ranking[:20]],
            "stopped": self.stopped, "file": str(self.files[best["trial"]]),
        }


def _num(x: float | None) -> float:
    return -math.inf if x is None else x


def _union(groups) -> list[str]:
    seen: dict[str, None] = {}
    for g in groups:
        for n in g:
            seen.setdefault(n, None)
    return list(seen)


def channel_sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Median over channels of the signal-to-quantization-noise ratio, in dB.

    Whole-tensor SQNR hides the classic INT8 failure: one channel with huge values sets the scale, it survives,
    and every other channel rounds to zero while the tensor's total error still looks small. Per channel
    (last axis, and axis 1 for NCHW maps, whichever is worse) that loss shows. Channels that are zero in the
    reference are ignored; values are capped at SQNR_CAP_DB.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64).reshape(ref.shape)
    axes = [ref.ndim - 1] + ([1] if ref.ndim >= 4 else [])
    worst = SQNR_CAP_DB
    for axis in axes:
        r = np.moveaxis(ref, axis, -1).reshape(-1, ref.shape[axis])
        c = np.moveaxis(cand, axis, -1).reshape(-1, ref.shape[axis])
        signal = np.linalg.norm(r, axis=0)
        noise = np.linalg.norm(r - c, axis=0)
        live = signal > 1e-12
        if not live.any():
            continue
        db = 20 * np.log10(signal[live] / np.maximum(noise[live], 1e-12 * signal[live]))
        worst = min(worst, float(np.median(db)))
    return round(min(worst, SQNR_CAP_DB), 3)


# --- ONNX Runtime --------------------------------------------------------------------------------------------


class OnnxBackend(Backend):
    suffix = ".onnx"

    def __init__(self, job: StepJob, tmp: Path):
        from modelpack.steps.onnx import preprocessed

        self.job = job
        self.pre, self.names = preprocessed(Path(job.dep_dir) / "model.onnx", tmp, job.options["inputs"])
        self.tmp = tmp

    def settings(self) -> list[dict]:
        base = self.job.options["base"]
        first = {"calibration": base["method"], "per_channel": base["per_channel"]}
        rest = [{"calibration": m, "per_channel": pc} for m in self.job.options["methods"]
                for pc in self.job.options["per_channel"]]
        return [first] + [s for s in rest if s != first]

    def quantize(self, setting: dict, keep_float: list[str], dest: Path) -> None:
        from modelpack.steps.onnx import quantize_qdq

        quantize_qdq(self.pre, dest, self.job.data["calibration"], self.names, setting["calibration"],
                     setting["per_channel"], exclude=keep_float)

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
    NAME = "onnx-int8-mixed"
    PURPOSE = "onnx-int8 with the calibration and float operations an accuracy-aware search chose."
    FORMAT = "onnx"
    FILE = "model.onnx"
    REQUIRES = "onnx-fp32"
    BASE = "onnx-int8"

    def base_options(self, recipe: Any) -> dict:
        q = recipe.optimize.int8
        return {"method": q.calibration_method, "per_channel": q.per_channel}

    def backend(self, job: StepJob, ctx: Any, tmp: Path) -> Backend:
        return OnnxBackend(job, tmp)


# --- TFLite --------------------------------------------------------------------------------------------------


class TFLiteBackend(Backend):
    """Selective quantization through the TFLite quantization debugger's denylist."""

    suffix = ".tflite"

    def __init__(self, job: StepJob, make_converter, names: list[str]):
        self.job, self.make_converter, self.names = job, make_converter, names

    def settings(self) -> list[dict]:
        order = [True] + [pc for pc in self.job.options["per_channel"] if pc is not True]
        return [{"per_channel": pc} for pc in order]

    def _converter(self, setting: dict, allow_float: bool):
        from modelpack.steps.tflite import configure_int8

        converter = self.make_converter()
        configure_int8(converter, self.job.data["calibration"], self.names, self.job.options["base"]["io"],
                       allow_float=allow_float, per_channel=setting["per_channel"])
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

        if not keep_float:
            dest.write_bytes(self._converter(setting, allow_float=False).convert())
            return
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=keep_float)
        dest.write_bytes(self._debugger(setting, options, allow_float=True).get_nondebug_quantized_model())

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
    NAME = "tflite-int8-mixed"
    PURPOSE = "tflite-int8 with the operations an accuracy-aware search chose kept in float."
    FORMAT = "tflite"
    FILE = "model.tflite"
    BASE = "tflite-int8"

    def base_options(self, recipe: Any) -> dict:
        return {"io": recipe.optimize.int8.io}

    def run(self, job: StepJob, ctx: Any) -> dict:
        from modelpack import keras_io
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
