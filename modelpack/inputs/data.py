"""Sample data: load named arrays, draw seeded splits, and check them against the model's inputs."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelpack.errors import InputError
from modelpack.inputs import data_function
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
    """The splits a build uses; each `*_x` is a list with one array per model input."""

    eval_x: list[np.ndarray]
    eval_y: np.ndarray | None
    calib_x: list[np.ndarray]
    train_x: list[np.ndarray] | None
    train_y: np.ndarray | None
    synthetic: bool

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
            arrays: dict[str, np.ndarray] | None = None) -> Samples:
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
    if len(names) != len(inputs):
        raise InputError(
            f"{origin}: data.inputs names {len(names)} array(s) but the model has {len(inputs)} input(s): "
            f"{', '.join(t.name for t in inputs)}. List one array per model input, in order."
        )
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
    xs = [_fit(a, t, "data.inputs", origin) for a, t in zip(xs, inputs)]
    # Again after the cast to the model's dtype: a float64 value too large for float32 becomes infinite.
    _all_finite(zip(names, xs), None, None, "data.inputs", where)

    order = np.random.default_rng(spec.seed).permutation(pool)
    n_eval = min(_count(spec.evaluation, pool), pool)
    n_cal = min(_count(spec.calibration, pool), pool)
    eval_idx = order[:n_eval]
    rest = order[n_eval:]
    # Calibration prefers samples not used for evaluation; it reuses them only when the pool is too small.
    cal_idx = rest[:n_cal] if len(rest) >= n_cal else order[-n_cal:]
    if spec.train is not None:
        tx = [_fit(a, t, "data.train.inputs", origin) for a, t in zip(_pick(arrays, spec.train.inputs, "data.train.inputs", origin), inputs)]
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
    )


def check_arrays(arrays: dict[str, np.ndarray], spec: DataSpec, task: str, origin: str) -> None:
    """The checks that need no model: every named array has samples and only finite numbers (labels only
    for classification and regression: a custom task decides about its own labels)."""
    where = f"{origin}: data.path {spec.path}"
    labels_checked = task in ("classification", "regression")
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


def _fit(a: np.ndarray, t: TensorSpec, field: str, origin: str) -> np.ndarray:
    """Check one array against one model input; cast only where no information is lost."""
    want = t.shape[1:]
    got = a.shape[1:]
    if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
        raise InputError(
            f"{origin}: {field} arrays have per-sample shape {tuple(got)} but model input '{t.name}' "
            f"expects {tuple('any' if w is None else w for w in want)}. Reshape the data or pick other arrays."
        )
    target = np.dtype(t.dtype)
    if a.dtype == target:
        return a
    if np.issubdtype(target, np.floating) and (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        return a.astype(target)
    if np.issubdtype(target, np.integer) and np.issubdtype(a.dtype, np.integer):
        return a.astype(target)
    raise InputError(
        f"{origin}: {field} arrays are {a.dtype} but model input '{t.name}' is {t.dtype}. Convert the data."
    )


SYNTHETIC_FREE_DIM = 8  # a free dimension's size in synthetic data: 1 would starve convolutions and pooling


def _random(t: TensorSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    shape = (n, *[d if d is not None else SYNTHETIC_FREE_DIM for d in t.shape[1:]])
    if np.issubdtype(np.dtype(t.dtype), np.integer):
        return rng.integers(0, 10, size=shape).astype(t.dtype)
    return rng.standard_normal(shape).astype(t.dtype)
