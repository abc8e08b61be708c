"""Task metrics, fidelity and latency statistics: plain numpy, checked against hand-computed values."""

from __future__ import annotations

import importlib
import math

import numpy as np

from modelpack.errors import InputError


def accuracy(outputs: list[np.ndarray], labels: np.ndarray | None, task: str, top_k: int = 1,
             scored: int = 0) -> float | None:
    """The task score on the evaluation samples (higher is better); None without labels or when the score is
    undefined (NaN or infinite: a model that outputs NaN, a custom task that returns it).

    `scored` is the index of the output the task scores (a custom task function gets every output)."""
    if labels is None:
        return None
    score = _score(outputs, labels, task, top_k, scored)
    return score if math.isfinite(score) else None


def _score(outputs: list[np.ndarray], labels: np.ndarray, task: str, top_k: int, scored: int) -> float:
    y = outputs[scored]
    if task == "classification":
        scores = y.reshape(len(y), -1)
        if scores.shape[1] == 1:  # one sigmoid unit
            return float(np.mean((scores[:, 0] > 0.5).astype(int) == labels.reshape(-1)))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
        return float(np.mean(np.any(top == labels.reshape(-1, 1), axis=1)))
    if task == "regression":
        return -float(np.mean(np.abs(y.reshape(labels.shape) - labels)))  # negative MAE: higher is better
    module, _, func = task.partition(":")
    try:
        return float(getattr(importlib.import_module(module), func)(outputs, labels))
    except SystemExit as exc:  # the user's code must not end the build with its own exit code
        raise InputError(f"task {task} called sys.exit({exc.code!r}) instead of returning a score.") from None
    except Exception as exc:  # user code: any failure is the recipe's task failing
        raise InputError(f"task {task} failed: {type(exc).__name__}: {exc}. It must return a number "
                         "(higher is better) from (outputs, labels).") from None


def regression_errors(outputs: list[np.ndarray], labels: np.ndarray, scored: int = 0) -> dict:
    """Mean absolute error, root mean squared error (both in the labels' units) and R² (1 - residual / total sum
    of squares; None when the labels are constant, where it is undefined)."""
    y = labels.astype(np.float64)
    err = outputs[scored].reshape(labels.shape).astype(np.float64) - y
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / total if total > 0 else None
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2))),
            "r2": r2 if r2 is None or math.isfinite(r2) else None}


def fidelity(outputs: list[np.ndarray], reference: list[np.ndarray], task: str, scored: int = 0,
             names: list[str] | None = None) -> dict:
    """Agreement of top-1 classes (classification) and absolute output error against the float model.

    The headline numbers are the scored output's; a model with several outputs also gets `outputs`, one
    entry per output (agreement only for the output a classification task scores)."""
    per = [_one_fidelity(o, r, task if i == scored else "") for i, (o, r) in enumerate(zip(outputs, reference))]
    result = dict(per[scored])
    if len(per) > 1:
        result["outputs"] = [{"name": names[i] if names else f"output_{i}", "scored": i == scored, **p}
                             for i, p in enumerate(per)]
    return result


def _one_fidelity(output: np.ndarray, reference: np.ndarray, task: str) -> dict:
    d = np.abs(output.astype(np.float64) - reference.astype(np.float64))
    result = {
        "agreement": None,
        "max_abs_err": float(np.inf if np.isnan(d).any() else np.max(d, initial=0.0)),
        "mean_abs_err": float(np.mean(d)) if d.size else 0.0,
    }
    if task == "classification":
        a, b = output.reshape(len(output), -1), reference.reshape(len(reference), -1)
        if a.shape[1] == 1:
            result["agreement"] = float(np.mean((a[:, 0] > 0.5) == (b[:, 0] > 0.5)))
        else:
            result["agreement"] = float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))
    return result


def latency_stats(times_ms: list[float]) -> dict:
    t = np.asarray(times_ms, dtype=np.float64)
    p = np.percentile(t, [50, 90, 95, 99])
    return {
        "p50": float(p[0]), "p90": float(p[1]), "p95": float(p[2]), "p99": float(p[3]),
        "mean": float(t.mean()), "std": float(t.std()), "min": float(t.min()), "max": float(t.max()), "runs": len(t),
    }


def median_of(runs: list[dict]) -> dict:
    """Per-field median of several cold-start runs."""
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
