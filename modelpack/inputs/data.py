"""Sample data: load named arrays, draw seeded splits, and check them against the model's inputs."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np

from modelpack.errors import InputError
from modelpack.inputs import data_function
from modelpack.inputs import order as input_order
from modelpack.recipe.models import DataSpec


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name, shape (None for free dimensions) and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, d: dict) -> TensorSpec:
        return cls(d["name"], tuple(d["shape"]), d["dtype"])


@dataclass
class Samples:
    """The splits a build uses; each `*_x` is a list with one array per model input. `overlap` counts the
    calibration samples that are evaluation samples too (only with data.allow_overlap); `notes` say how the
    samples were shared out when that was not as the recipe asked."""

    eval_x: list[np.ndarray]
    eval_y: np.ndarray | None
    calib_x: list[np.ndarray]
    train_x: list[np.ndarray] | None
    train_y: np.ndarray | None
    synthetic: bool
    overlap: int = 0
    notes: list[str] = dataclass_field(default_factory=list)
    texts: np.ndarray | None = None  # a text model's evaluation texts (eval_x then holds their token ids)

    def save(self, path: Path, split: str = "eval") -> Path:
        xs, ys = {"eval": (self.eval_x, self.eval_y), "calibration": (self.calib_x, None),
                  "train": (self.train_x, self.train_y)}[split]
        arrays = {f"in_{i}": a for i, a in enumerate(xs or [])}
        if ys is not None:
            arrays["labels"] = ys
        np.savez(path, **arrays)
        return path


def _count(value: float, available: int) -> int:
    return max(1, int(round(value * available))) if value < 1 else int(value)


@dataclass(frozen=True)
class SplitCounts:
    """How many samples evaluate and calibrate, how many do both, and what the build must say about it."""

    evaluation: int
    calibration: int
    overlap: int = 0
    note: str | None = None


def split_counts(spec: DataSpec, pool: int, calibrates: bool, origin: str) -> SplitCounts:
    """Evaluation and calibration counts for `pool` samples, never overlapping unless data.allow_overlap says so.

    Counts the recipe sets that do not fit are refused with the numbers; the defaults, when they do not fit, share
    the samples 2:1 and say so. Calibration matters only when a variant calibrates (`calibrates`)."""
    n_eval, n_cal = _count(spec.evaluation, pool), _count(spec.calibration, pool)
    if not calibrates:
        e = min(n_eval, pool)
        note = None if n_eval <= pool else (f"data.evaluation asks for {n_eval} samples; the data has {pool}, "
                                            "all of which evaluate")
        return SplitCounts(e, min(n_cal, pool - e), 0, note)
    if n_eval + n_cal <= pool:
        return SplitCounts(n_eval, n_cal)
    given = {"evaluation", "calibration"} & spec.model_fields_set
    if not given and pool >= 2:
        cal = max(1, pool // 3)
        return SplitCounts(pool - cal, cal, 0, (
            f"the data has {pool} samples, fewer than the default {n_eval} evaluation + {n_cal} calibration: "
            f"{pool - cal} evaluate and {cal} calibrate, none of them both (set data.evaluation and "
            "data.calibration to choose)"))
    if spec.allow_overlap:
        e, c = min(n_eval, pool), min(n_cal, pool)
        overlap = max(0, e + c - pool)
        return SplitCounts(e, c, overlap, (
            f"{overlap} of the {c} calibration samples are evaluation samples too (data.allow_overlap): the data "
            f"has {pool} samples for {n_eval} evaluation + {n_cal} calibration, so INT8 variants are judged "
            "partly on the samples they were calibrated on and their accuracy may look better than it is"))
    fit_cal = max(1, pool // 3)
    raise InputError(
        f"{origin}: data.path {spec.path} has {pool} samples, but data.evaluation asks for {n_eval} and "
        f"data.calibration for {n_cal} ({n_eval + n_cal} in all). INT8 variants are calibrated on the calibration "
        "samples and judged on the evaluation samples, so the two must not overlap. Ask for fewer (e.g. "
        f"evaluation: {pool - fit_cal}, calibration: {fit_cal}, or fractions such as evaluation: 0.7, calibration: "
        "0.3), give more samples, or set data.allow_overlap: true to calibrate partly on evaluation samples "
        "(the build and the report then warn).")


def check_counts(arrays: dict[str, np.ndarray], spec: DataSpec, calibrates: bool, origin: str) -> SplitCounts:
    """split_counts for the loaded arrays (their first input's length): what validate checks without a model."""
    first = _pick(arrays, spec.inputs, "data.inputs", origin)[0]
    return split_counts(spec, len(first), calibrates, origin)


def load_arrays(spec: DataSpec, origin: str) -> dict[str, np.ndarray]:
    """Read the arrays named by `data.path` (.npz without pickle, or module:function)."""
    assert spec.path is not None
    if spec.path.endswith(".npz") or Path(spec.path).exists():
        try:
            with np.load(spec.path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise InputError(
                f"{origin}: data.path {spec.path} is not a readable .npz of plain arrays ({exc}). "
                "Write it with numpy.savez(path, x=..., y=...)."
            ) from None
    return data_function.call(spec.path, spec.timeout_s, origin)


def _pick(arrays: dict[str, np.ndarray], names: str | list[str], field: str, origin: str) -> list[np.ndarray]:
    names = [names] if isinstance(names, str) else names
    missing = [n for n in names if n not in arrays]
    if missing:
        raise InputError(
            f"{origin}: {field} names array '{missing[0]}', which the data file does not have; "
            f"it has: {', '.join(sorted(arrays)) or 'nothing'}."
        )
    return [arrays[n] for n in names]


def prepare(spec: DataSpec, inputs: list[TensorSpec], origin: str, task: str = "classification",
            arrays: dict[str, np.ndarray] | None = None, calibrates: bool = True) -> Samples:
    """Draw evaluation / calibration / training splits and check them against the model inputs.

    Arrays without samples, and inputs or (for classification and regression) labels holding NaN or infinite
    values, are refused: every measurement would be undefined. A custom task decides about its own labels.
    `arrays` are the data already loaded (by the build's first checks); without them they are loaded here.
    """
    if spec.synthetic:
        rng = np.random.default_rng(spec.seed)
        n_eval, n_cal = int(spec.evaluation) if spec.evaluation >= 1 else 64, int(spec.calibration) if spec.calibration >= 1 else 64
        make = lambda n: [_random(t, n, rng) for t in inputs]  # noqa: E731
        return Samples(make(n_eval), None, make(n_cal), None, None, synthetic=True)

    arrays = arrays if arrays is not None else load_arrays(spec, origin)
    names = [spec.inputs] if isinstance(spec.inputs, str) else list(spec.inputs)
    notes = input_order.check(names, inputs, "data.inputs", origin)
    xs = _pick(arrays, names, "data.inputs", origin)
    ys = _pick(arrays, spec.labels, "data.labels", origin)[0] if spec.labels else None
    where = f"{origin}: data.path {spec.path}"
    check_arrays(arrays, spec, task, origin)
    pool = len(xs[0])
    for name, a in zip(names, xs):
        if len(a) != pool:
            raise InputError(f"{origin}: data.inputs array '{name}' has {len(a)} samples, the first has {pool}.")
    if ys is not None and len(ys) != pool:
        raise InputError(f"{origin}: data.labels has {len(ys)} samples but the inputs have {pool}.")
    xs = [_fit(a, t, "data.inputs", origin, inputs) for a, t in zip(xs, inputs)]
    # Again after the cast to the model's dtype: a float64 value too large for float32 becomes infinite.
    _all_finite(zip(names, xs), None, None, "data.inputs", where)

    order = np.random.default_rng(spec.seed).permutation(pool)
    counts = split_counts(spec, pool, calibrates, origin)
    n_eval, n_cal = counts.evaluation, counts.calibration
    eval_idx = order[:n_eval]
    rest = order[n_eval:]
    # Calibration takes samples not used for evaluation; it reuses them only as data.allow_overlap allows.
    cal_idx = rest[:n_cal] if len(rest) >= n_cal else order[-n_cal:]
    if spec.train is not None:
        train_names = _as_list(spec.train.inputs)
        notes += input_order.check(train_names, inputs, "data.train.inputs", origin)
        tx = [_fit(a, t, "data.train.inputs", origin, inputs)
              for a, t in zip(_pick(arrays, train_names, "data.train.inputs", origin), inputs)]
        ty = _pick(arrays, spec.train.labels, "data.train.labels", origin)[0]
        _all_finite(zip(_as_list(spec.train.inputs), tx), None, None, "data.train.inputs", where)
    else:
        left = rest[n_cal:]
        tx = [a[left] for a in xs] if len(left) else None
        ty = ys[left] if (ys is not None and len(left)) else None
    return Samples(
        eval_x=[a[eval_idx] for a in xs],
        eval_y=ys[eval_idx] if ys is not None else None,
        calib_x=[a[cal_idx] for a in xs],
        train_x=tx,
        train_y=ty,
        synthetic=False,
        overlap=counts.overlap,
        notes=([counts.note] if counts.note else []) + notes,
    )


def check_arrays(arrays: dict[str, np.ndarray], spec: DataSpec, task: str | None, origin: str) -> None:
    """The checks that need no model: every named array has samples and only finite numbers (labels only
    for classification and regression: a custom task decides about its own labels)."""
    where = f"{origin}: data.path {spec.path}"
    labels_checked = task in (None, "classification", "regression")
    groups = [(_as_list(spec.inputs), spec.labels, "data.inputs")]
    if spec.train is not None:
        groups.append((_as_list(spec.train.inputs), spec.train.labels, "data.train.inputs"))
    for names, label, field in groups:
        xs = _pick(arrays, names, field, origin)
        ys = _pick(arrays, label, field.replace("inputs", "labels"), origin)[0] if label else None
        for name, a in [*zip(names, xs), *([(label, ys)] if ys is not None else [])]:
            _has_samples(a, name, where)
        _all_finite(zip(names, xs), ys, label if labels_checked else None, field, where)


def _as_list(names: str | list[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _has_samples(a: np.ndarray, name: str, where: str) -> None:
    if a.ndim == 0:
        raise InputError(f"{where}: array '{name}' is a single value, not an array of samples. "
                         "Give one entry per sample along its first axis.")
    if len(a) == 0:
        raise InputError(f"{where}: array '{name}' has 0 samples. modelpack calibrates and measures on these "
                         "samples: give at least one, or set data.synthetic: true instead of data.path.")


def _all_finite(inputs, labels: np.ndarray | None, labels_name: str | None, field: str, where: str) -> None:
    """Refuse NaN or infinite values in the inputs, and in the labels when `labels_name` is given."""
    arrays = [(name, a, field) for name, a in inputs]
    if labels is not None and labels_name is not None:
        arrays.append((labels_name, labels, field.replace("inputs", "labels")))
    for name, a, what in arrays:
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating)):
            continue
        bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
        if bad.any():
            extra = (" A custom task (task: module:function) may accept undefined labels."
                     if what.endswith("labels") else "")
            raise InputError(
                f"{where}: array '{name}' ({what}) holds NaN or infinite values in {int(bad.sum())} of {len(a)} "
                f"samples (the first is sample {int(np.argmax(bad))}). Accuracy and outputs would be undefined: "
                f"remove or fix those samples.{extra}"
            )


def _fit(a: np.ndarray, t: TensorSpec, field: str, origin: str, inputs: list[TensorSpec] | None = None) -> np.ndarray:
    """Check one array against one model input; cast only where no information is lost. `inputs` (all the
    model's) lets a mismatch name the order the model takes its inputs in."""
    hint = f" The model takes its inputs in this order: {input_order.expected(inputs)}." if inputs and len(inputs) > 1 else ""
    want = t.shape[1:]
    got = a.shape[1:]
    if t.dtype == "string":
        return _texts(a, t, field, origin)
    if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
        raise InputError(
            f"{origin}: {field} arrays have per-sample shape {tuple(got)} but model input '{t.name}' "
            f"expects {tuple('any' if w is None else w for w in want)}. Reshape the data or pick other arrays.{hint}"
        )
    target = np.dtype(t.dtype)
    if a.dtype == target:
        return a
    if np.issubdtype(target, np.floating) and (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        return a.astype(target)
    if np.issubdtype(target, np.integer) and np.issubdtype(a.dtype, np.integer):
        return a.astype(target)
    raise InputError(
        f"{origin}: {field} arrays are {a.dtype} but model input '{t.name}' is {t.dtype}. Convert the data.{hint}"
    )


def _texts(a: np.ndarray, t: TensorSpec, field: str, origin: str) -> np.ndarray:
    """Sample texts for a string input, as Unicode strings in the input's per-sample shape ((N,) fits (N, 1))."""
    want = tuple(1 if d is None else d for d in t.shape[1:])
    size = int(np.prod(want, dtype=np.int64))
    if a.dtype.kind not in "USO" or int(np.prod(a.shape[1:], dtype=np.int64)) != size:
        raise InputError(f"{origin}: {field} array for text input '{t.name}' must hold strings, {size} per sample; "
                         f"it is {a.dtype} of per-sample shape {tuple(a.shape[1:])}.")
    flat = a.reshape(len(a), -1)
    try:
        texts = [[s.decode("utf-8") if isinstance(s, bytes) else s for s in row] for row in flat.tolist()]
    except UnicodeDecodeError as exc:
        raise InputError(f"{origin}: {field} holds bytes that are not UTF-8 text ({exc}).") from None
    if not all(isinstance(s, str) for row in texts for s in row):
        raise InputError(f"{origin}: {field} array for text input '{t.name}' holds values that are not strings.")
    return np.asarray(texts, dtype=str).reshape((len(a), *want))


SYNTHETIC_FREE_DIM = 8  # a free dimension's size in synthetic data: 1 would starve convolutions and pooling


def _random(t: TensorSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    shape = (n, *[d if d is not None else SYNTHETIC_FREE_DIM for d in t.shape[1:]])
    if t.dtype == "string":  # words from a small alphabet; a text model's build draws them from its vocabulary
        return np.asarray([" ".join(f"w{i}" for i in rng.integers(0, 50, 8)) for _ in range(int(np.prod(shape)))],
                          dtype=str).reshape(shape)
    if np.issubdtype(np.dtype(t.dtype), np.integer):
        return rng.integers(0, 10, size=shape).astype(t.dtype)
    return rng.standard_normal(shape).astype(t.dtype)
