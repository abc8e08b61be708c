"""Which arrays of a user's .npz feed which model input and which hold the labels (for `modelpack init`)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modelpack.errors import InputError

LABEL_NAMES = ("y", "labels", "label", "target", "targets", "y_true", "Y")


@dataclass(frozen=True)
class ArrayChoice:
    """The arrays fed to the model's inputs (in input order), the labels' array, the sample count, and notes on
    any guess the user should check."""

    inputs: list[str]
    labels: str | None
    samples: int
    notes: list[str] = field(default_factory=list)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable .npz of plain arrays ({exc}). Write it with "
                         "numpy.savez(path, x=..., y=...).") from None


def _fits(array: np.ndarray, spec: dict) -> bool:
    shape = spec["shape"]
    return array.ndim == len(shape) and all(d is None or d == n for d, n in zip(shape[1:], array.shape[1:]))


def _shape(spec: dict) -> str:
    return "[" + ", ".join("None" if d is None else str(d) for d in spec["shape"]) + "]"


def choose_arrays(arrays: dict[str, np.ndarray], inputs: list[dict], origin: str) -> ArrayChoice:
    """An array per model input (by name, then by shape), then the labels (by name, then the one array left
    with as many samples)."""
    notes: list[str] = []
    used: list[str] = []
    for spec in inputs:
        fitting = [n for n, a in arrays.items() if n not in used and a.ndim >= 1 and _fits(a, spec)]
        if spec["name"] in fitting:
            pick = spec["name"]
        elif len(inputs) == 1 and "x" in fitting:
            pick = "x"
        elif fitting:
            unnamed = [n for n in fitting if n not in LABEL_NAMES] or fitting
            pick = unnamed[0]
            if len(unnamed) > 1:
                notes.append(f"arrays {', '.join(unnamed)} all fit input '{spec['name']}'; '{pick}' was taken, the "
                             "first in the file: check data.inputs")
        else:
            have = ", ".join(f"{n} {list(a.shape)}" for n, a in arrays.items()) or "none"
            raise InputError(f"{origin}: no array fits model input '{spec['name']}' ({spec['dtype']} {_shape(spec)}, "
                             f"the first dimension being samples); the arrays are: {have}. Save one of that shape.")
        used.append(pick)
    samples = len(arrays[used[0]])
    for name in used[1:]:
        if len(arrays[name]) != samples:
            raise InputError(f"{origin}: array '{name}' has {len(arrays[name])} samples and '{used[0]}' has "
                             f"{samples}; every input needs one row per sample.")
    rest = [n for n, a in arrays.items() if n not in used and a.ndim >= 1 and len(a) == samples]
    labels = next((n for n in LABEL_NAMES if n in rest), None)
    if labels is None and len(rest) == 1:
        labels = rest[0]
    elif labels is None and rest:
        notes.append(f"arrays {', '.join(rest)} could be labels; none was taken: set data.labels to one of them")
    return ArrayChoice(used, labels, samples, notes)
