"""The model's task: which output it scores, what the labels say it is, and whether they fit the model.

`decide` is where a build infers a task from labels and checks labels against a declared task; `check_outputs`
checks them against the scored output once the model is inspected; `infer_task` is what `modelpack init` proposes
from the labels and the inspected output. Plain numpy, no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelpack.errors import InputError

CLASSIFICATION, REGRESSION = "classification", "regression"
MAX_CLASSES = 1000  # more distinct whole-number labels than this are not class indices
# Whole numbers with more distinct values than this, each seen fewer than SAMPLES_PER_CLASS times on average, read
# as a measured quantity (prices, ages, counts) rather than class indices, unless they run 0, 1, 2, ... without a gap.
CONTINUOUS_MIN_DISTINCT = 20
SAMPLES_PER_CLASS = 5


@dataclass(frozen=True)
class TaskDecision:
    """The task a build scores, whether it was inferred (the recipe omitted `task`), and why, as a sentence."""

    task: str
    inferred: bool
    why: str

    @property
    def score(self) -> str:
        """What report.json's `accuracy` holds for this task."""
        if self.task == CLASSIFICATION:
            return "top-1 accuracy (fraction of evaluation samples whose top class is the label)"
        if self.task == REGRESSION:
            return "negative mean absolute error (higher is better; regression.mae has the error itself)"
        return f"the score {self.task} returns (higher is better)"

    def to_json(self) -> dict:
        return {"name": self.task, "inferred": self.inferred, "why": self.why, "score": self.score}

    def sentence(self) -> str:
        how = "inferred, set `task` to override" if self.inferred else "from the recipe"
        return f"Task: {self.task} ({how}): {self.why}."


@dataclass(frozen=True)
class LabelFacts:
    """What a label array looks like: numeric, whole, smallest and largest value, distinct values, singletons."""

    numeric: bool
    whole: bool
    lowest: float
    highest: float
    distinct: int
    seen_once: int
    one_hot: bool
    floating: bool
    samples: int

    @property
    def continuous(self) -> bool:
        """Values of a measured quantity: fractions, or many whole values each seen a few times at most (class
        indices 0, 1, 2, ... that are all present are classes however few samples each has)."""
        if not self.whole:
            return True
        if self.lowest == 0 and self.distinct == int(self.highest) + 1:
            return False
        return self.distinct > CONTINUOUS_MIN_DISTINCT and self.samples < SAMPLES_PER_CLASS * self.distinct

    @property
    def class_indices(self) -> bool:
        return self.whole and self.lowest >= 0 and self.distinct <= MAX_CLASSES and not self.continuous

    def describe(self, name: str) -> str:
        if not self.numeric:
            return f"labels '{name}' hold text, not numbers"
        if self.one_hot:
            return f"labels '{name}' are one-hot rows"
        values = "whole numbers" if self.whole else "fractional numbers"
        span = f"{_num(self.lowest)} to {_num(self.highest)}"
        if self.class_indices:
            return f"labels '{name}' are {values} from {span} in {self.distinct} classes"
        return (f"labels '{name}' are {values} from {span} with {self.distinct} distinct values over "
                f"{self.samples} samples ({self.seen_once} seen only once)")


def _num(x: float) -> str:
    return f"{x:g}"


def facts(labels: np.ndarray) -> LabelFacts:
    """Read a label array once."""
    y = np.asarray(labels)
    numeric = y.dtype.kind in "biuf"
    if not numeric:
        return LabelFacts(False, False, 0.0, 0.0, 0, 0, False, False, len(y))
    rows = y.reshape(len(y), -1) if y.ndim > 1 else y.reshape(-1, 1)
    one_hot = rows.shape[1] > 1 and bool(np.all((rows == 0) | (rows == 1))) and bool(np.all(rows.sum(axis=1) == 1))
    flat = y.reshape(-1).astype(np.float64)
    whole = bool(np.all(np.isfinite(flat) & (flat == np.round(flat)))) if flat.size else True
    values, counts = np.unique(flat, return_counts=True)
    lowest, highest = (float(flat.min()), float(flat.max())) if flat.size else (0.0, 0.0)
    return LabelFacts(True, whole, lowest, highest, len(values), int(np.sum(counts == 1)), one_hot,
                      y.dtype.kind == "f", len(y))


def infer(labels: np.ndarray | None, name: str = "y") -> TaskDecision:
    """The task labels suggest: whole, non-negative numbers in few classes are classification; other numbers
    regression; no labels classification (fidelity is then top-1 agreement with the float model)."""
    if labels is None:
        return TaskDecision(CLASSIFICATION, True, "no labels to tell; fidelity is the top-1 agreement with the "
                                                   "Keras model (set task: regression for a model that predicts numbers)")
    f = facts(labels)
    one_per_sample = np.asarray(labels).reshape(len(labels), -1).shape[1] == 1
    # Text and one-hot labels are meant as classes: the check that follows says how to store them.
    if not f.numeric or f.one_hot or (f.class_indices and one_per_sample):
        return TaskDecision(CLASSIFICATION, True, f.describe(name))
    return TaskDecision(REGRESSION, True, f.describe(name))


def decide(declared: str | None, labels: np.ndarray | None, name: str, origin: str) -> TaskDecision:
    """The recipe's task (inferred from the labels when it has none), with the labels checked against it."""
    if declared is None:
        decision = infer(labels, name)
    else:
        decision = TaskDecision(declared, False, "as the recipe says" if labels is None else facts(labels).describe(name))
    if labels is not None and decision.task == CLASSIFICATION:
        check_class_labels(labels, name, origin, decision.inferred)
    return decision


def check_class_labels(labels: np.ndarray, name: str, origin: str, inferred: bool = False) -> None:
    """Refuse labels that cannot be class indices under task: classification, saying what they look like."""
    f = facts(labels)
    where = f"{origin}: task is classification, but data.labels '{name}'"
    if not f.numeric:
        raise InputError(f"{where} holds text ({np.asarray(labels).dtype}). Accuracy compares the model's top class "
                         "index with the label: store class indices 0..K-1 in the same order as the model's outputs "
                         "(and name the classes with serving.labels).")
    if f.one_hot:
        raise InputError(f"{where} holds one-hot rows. Store class indices instead (y.argmax(axis=1)).")
    if not f.whole or f.lowest < 0:
        what = "fractional values" if not f.whole else f"negative values (down to {_num(f.lowest)})"
        raise InputError(f"{where} holds {what}, which are not class indices: {f.describe(name)}. If the model "
                         "predicts a number, set `task: regression` (then MAE, RMSE and R² are reported and "
                         "budgets.max_mae_increase limits the error).")
    if f.distinct > MAX_CLASSES or (f.continuous and f.floating):
        escape = ("" if not f.floating else " If they really are class indices, store them as integers "
                  "(y.astype('int64')).")
        raise InputError(f"{where} looks like a measured quantity, not classes: {f.describe(name)}. If the model "
                         f"predicts a number, set `task: regression`.{escape}")


def check_outputs(task: str, labels: np.ndarray | None, name: str, output: dict, origin: str) -> None:
    """Classification labels must index the scored output: below its class count, or 0/1 for a single unit."""
    if task != CLASSIFICATION or labels is None:
        return
    f = facts(labels)
    units = _units(output)
    highest = int(f.highest)
    if units == 1 and highest > 1:
        raise InputError(
            f"{origin}: task is classification, but the scored output '{output['name']}' has a single unit (read "
            f"as the probability of class 1) while data.labels '{name}' go up to {highest} ({f.describe(name)}). "
            "If the model predicts a number, set `task: regression`.")
    if units > 1 and highest >= units:
        raise InputError(
            f"{origin}: task is classification with {units} classes in output '{output['name']}', but data.labels "
            f"'{name}' go up to {highest}: labels must be class indices 0..{units - 1}. If the model predicts a "
            "number, set `task: regression`; otherwise check that the labels belong to this model.")


def _units(output: dict) -> int:
    dims = [d for d in output["shape"][1:] if d is not None]
    return int(np.prod(dims, dtype=np.int64)) if dims else 1


def class_names(labels: list[str] | str | None, task: str, output: dict, origin: str) -> list[str] | None:
    """serving.labels as a list of class names (read from its file when it names one), one per class of the
    scored output (two for a single unit: class 0 and class 1)."""
    if labels is None:
        return None
    if isinstance(labels, str):
        try:
            with open(labels, encoding="utf-8") as f:
                names = [line.strip() for line in f.read().splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{origin}: serving.labels file {labels} cannot be read ({exc}).") from None
        while names and not names[-1]:
            names.pop()
    else:
        names = list(labels)
    if task != CLASSIFICATION:
        raise InputError(f"{origin}: serving.labels names classes, but the task is {task}; remove serving.labels.")
    units = _units(output)
    want = 2 if units == 1 else units
    if len(names) != want or not all(names):
        raise InputError(f"{origin}: serving.labels has {len(names)} name(s) but output '{output['name']}' has "
                         f"{want} classes{' (one unit: class 0 and class 1)' if units == 1 else ''}; give one "
                         "non-empty name per class, in the output's order.")
    return names


def check_budgets(task: str, budgets, origin: str, inferred: bool) -> None:
    """Budgets that measure another task than this one are refused: they could never be judged."""
    how = " (inferred; set `task` to override)" if inferred else ""
    if task == REGRESSION and budgets.min_agreement is not None:
        raise InputError(f"{origin}: budgets.min_agreement compares top-1 classes, which a regression model does not "
                         f"have (task: regression{how}). Limit the error instead: budgets.max_mae_increase.")
    if task != REGRESSION and budgets.max_mae_increase is not None:
        raise InputError(f"{origin}: budgets.max_mae_increase limits a regression error, but the task is {task}{how}. "
                         "Use budgets.max_accuracy_drop or min_agreement, or set `task: regression`.")


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
