"""Accuracy-aware INT8 (worker side): when full quantization breaks an accuracy budget, find the variant that
meets it with the fewest operations kept in float.

The search, per INT8 variant, bounded by `optimize.search.max_trials` and `max_minutes`:
1. calibration: every configured calibration method x per-channel setting, fully quantized, the recipe's own
   setting first; for TFLite then int16 activations with int8 weights (16x8, `optimize.search.try_16x8`), which
   a model may refuse (an op without a 16x8 form or int16 kernel: the trial records why). If any meets the
   accuracy budgets, the most accurate of those is the result.
2. mixed precision: with the closest calibration setting, rank activations by how much quantizing them hurts
   (per-channel SQNR of float against quantized values on the calibration samples), then keep the operations
   around the top-k activations in float. k grows 1, 2, 4, ... until the budgets hold, then bisects back
   to the fewest k that holds, so float operations stop being added as soon as the budgets are met.
Every trial is judged on the evaluation samples with the same budget check selection uses, and is returned
with its accuracy, agreement, size and a quick latency so the report can show the whole search.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from modelpack.steps.base import StepJob

SENSITIVITY_SAMPLES = 64
SQNR_CAP_DB = 60.0
NOMINAL_INT8_DB = 40.0  # about what rounding a well-scaled tensor to 8 bits gives
QUICK_RUNS = 30


class Backend:
    """What the search needs from a quantizer."""

    suffix = ""
    # Errors of `quantize` that refuse one setting for this model (recorded as a refused trial; the search goes on).
    refusals: tuple[type[Exception], ...] = ()

    def settings(self) -> list[dict]:
        """Calibration settings to try, the plain variant's own first."""
        raise NotImplementedError

    def quantize(self, setting: dict, keep_float: list[str], dest: Path) -> None:
        raise NotImplementedError

    def sensitivity(self, setting: dict) -> list[dict]:
        """Units to keep in float, most harmful first: {"tensor", "nodes", "score_db", "damage_db"}."""
        raise NotImplementedError

    def keeps_float(self, setting: dict) -> bool:
        """Whether operations can be kept in float under `setting` (the mixed-precision phase starts from it)."""
        return True


class Judge:
    """Runs a candidate on the evaluation samples with the handlers' runtime and applies the accuracy budgets."""

    def __init__(self, job: StepJob):
        from modelpack.judge.budgets import check
        from modelpack.measure import metrics
        from modelpack.measure.runner import handler_runtime
        from modelpack.recipe.models import Budgets

        self._check, self._metrics = check, metrics
        o = job.options
        self.task = o["task"]
        self.budgets = Budgets(max_accuracy_drop=o["max_accuracy_drop"], min_agreement=o["min_agreement"],
                               max_mae_increase=o.get("max_mae_increase"))
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
        # For regression the score is the negative MAE, so its drop is the MAE increase.
        regression = {"mae_increase": drop} if self.task == "regression" else None
        rows = self._check({"status": "ok", "accuracy_drop": drop, "fidelity": {"agreement": agreement},
                            "regression": regression}, self.budgets)
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
        trial = {"trial": len(self.trials), **setting, "float_activations": [u["tensor"] for u in units],
                 "float_nodes": nodes}
        try:
            self.backend.quantize(setting, nodes, dest)
            trial.update(self.judge(dest))
        except self.backend.refusals as exc:
            trial.update(refused=str(exc), accuracy=None, accuracy_drop=None, agreement=None, passed=False,
                         shortfall=math.inf, size_bytes=None, p50_ms=None)
        trial["seconds"] = round(time.monotonic() - started, 3)
        self.trials.append(trial)
        self.files.append(dest)
        return trial

    def run(self) -> dict:
        for setting in self.backend.settings():
            if self.attempt(setting, []) is None:
                break
        ranking: list[dict] = []
        growable = [t for t in self.trials if "refused" not in t and self.backend.keeps_float(t)]
        if growable and not any(t["passed"] for t in self.trials):
            closest = min(growable, key=lambda t: (t["shortfall"], t["trial"]))
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
        else:  # a refused trial has no file: the closest is among those that were made
            made = [t for t in self.trials if "refused" not in t] or self.trials
            best = min(made, key=lambda t: (t["shortfall"], len(t["float_nodes"]), t["trial"]))
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
