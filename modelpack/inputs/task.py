"""The model's task: which output the task scores, and (for `modelpack init`) which task the labels imply."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelpack.errors import InputError


def scored_output(name: str | None, outputs: list[dict], origin: str) -> int:
    """Index of the output `task_output` names (the first when unset); a name the model lacks is refused."""
    names = [o["name"] for o in outputs]
    if name is None:
        return 0
    if name not in names:
        raise InputError(
            f"{origin}: task_output is '{name}', but the model's outputs are {', '.join(names)}. "
            "Name the output the task scores (`modelpack inspect MODEL` lists them), or remove task_output "
            "to score the first one."
        )
    return names.index(name)



@dataclass(frozen=True)
class TaskGuess:
    """The task a model and its labels imply, and the sentence that says why."""

    task: str  # classification or regression
    reason: str


def infer_task(labels: np.ndarray, output: dict, name: str, origin: str) -> TaskGuess:
    """Classification when the labels are class indices of the scored output (whole numbers 0..n-1 for n units, or
    0/1 for one sigmoid unit); regression when they are values of its shape. Labels that are neither (one-hot rows,
    classes counted from 1) are refused with the fix, since every accuracy figure would be wrong."""
    y = np.asarray(labels)
    out = output["name"]
    dims = output["shape"][1:]
    units = int(np.prod(dims)) if all(isinstance(d, int) for d in dims) else None
    per_sample = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
    if y.dtype.kind not in "biuf" or y.size == 0 or not np.all(np.isfinite(y)):
        raise InputError(f"{origin}: labels '{name}' must be finite numbers (they are {y.dtype}{', empty' if not y.size else ''}); "
                         "save class indices or target values.")
    whole = y.dtype.kind in "biu" or bool(np.all(np.mod(y, 1) == 0))
    lo, hi = (int(y.min()), int(y.max())) if whole else (float(y.min()), float(y.max()))
    if whole and units and units > 1 and y.ndim == 2 and y.shape[1] == units and lo >= 0 and hi <= 1 \
            and bool(np.all(y.sum(axis=1) == 1)):
        raise InputError(f"{origin}: labels '{name}' are one-hot rows ({units} columns); modelpack scores class "
                         f"indices. Save {name}.argmax(axis=1) as the labels instead.")
    if whole and per_sample == 1 and units and units > 1 and 0 <= lo and hi < units:
        return TaskGuess("classification", f"labels '{name}' are whole numbers {lo}–{hi} and output '{out}' has "
                                           f"{units} units, one score per class")
    if whole and per_sample == 1 and units == 1 and lo >= 0 and hi <= 1:
        return TaskGuess("classification", f"labels '{name}' are 0 and 1 and output '{out}' has one unit, the "
                                           "probability of class 1")
    if whole and per_sample == 1 and units and units > 1 and lo >= 1 and hi == units:
        raise InputError(f"{origin}: labels '{name}' are whole numbers {lo}–{hi}, but output '{out}' scores "
                         f"{units} classes numbered 0–{units - 1}. Save {name} - 1 as the labels.")
    if units is not None and per_sample != units:
        raise InputError(f"{origin}: labels '{name}' hold {per_sample} value(s) per sample and output '{out}' has "
                         f"{units}: they are neither class indices (whole numbers below {units}) nor values of the "
                         "output's shape. Save labels that match the output, or name another array.")
    if not whole:
        example = float(y.reshape(-1)[np.argmax(np.mod(y.reshape(-1), 1) != 0)])
        why = f"labels '{name}' hold fractional values (such as {example:.4g})"
    else:
        why = f"labels '{name}' are numbers from {lo} to {hi} matching output '{out}' value for value, not class indices"
    return TaskGuess("regression", why)
