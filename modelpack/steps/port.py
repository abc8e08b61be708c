"""Keras 3 copies of tf-keras models, kept only when they compute the same outputs (worker process only).

Splitting, and anything else that walks a Keras 3 graph, then works for `.h5` and tf-keras `.keras` files too.
Keras 3 reads tf-keras HDF5 files itself; a tf-keras `.keras` archive is loaded with tf-keras and written as
HDF5 first. The copy must reproduce the tf-keras model's outputs on the evaluation samples within PORT_TOLERANCE,
or it is not used and the build goes on with the tf-keras model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from modelpack.errors import PortError
from modelpack.steps.base import Step, StepJob

PORT_TOLERANCE = 1e-5


class Keras3PortStep(Step):
    """Load a tf-keras model with Keras 3 and keep the copy when it computes the same outputs."""

    NAME = "keras3-port"
    FILE = "model.keras"
    USES_EVALUATION = True
    USES_BASELINE = True

    def run(self, job: StepJob, ctx: Any) -> dict:
        original = ctx.model(job)
        with np.load(job.data["evaluation"]) as npz:
            xs = [npz[f"in_{i}"] for i in range(len(original.inputs))]
        with np.load(job.data["baseline"]) as npz:
            expected = [npz[f"out_{i}"] for i in range(len(npz.files))]
        copy, worst = checked_copy(job, original, xs, expected)
        copy.save(job.out / self.FILE)
        return {"max_abs_err": worst, "samples": int(len(xs[0]))}


def checked_copy(job: StepJob, original: Any, xs: list[np.ndarray], expected: list[np.ndarray]) -> tuple[Any, float]:
    """The Keras 3 copy of a tf-keras model and its largest difference on `xs`; PortError when it differs."""
    from modelpack.inputs import keras_io

    copy = _load_keras3(job, original.keras_model)
    got = keras_io.from_keras(copy).predict(xs)
    if len(got) != len(expected):
        raise PortError(f"Keras 3 reads {len(got)} output(s) where tf-keras has {len(expected)}")
    worst = max(float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64)), initial=0.0))
                for g, e in zip(got, expected))
    if not worst <= PORT_TOLERANCE:
        raise PortError(f"Keras 3 loads the model but its outputs differ from tf-keras by {worst:.2e} "
                        f"(tolerance {PORT_TOLERANCE:g})")
    return copy, worst


def sample_inputs(inputs: list[dict], n: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Seeded random inputs for a check with no data at hand (`modelpack inspect`)."""
    rng = np.random.default_rng(seed)
    xs = []
    for t in inputs:
        shape = (n, *[d if d is not None else 1 for d in t["shape"][1:]])
        integer = np.issubdtype(np.dtype(t["dtype"]), np.integer)
        xs.append((rng.integers(0, 10, shape) if integer else rng.standard_normal(shape)).astype(t["dtype"]))
    return xs


def _load_keras3(job: StepJob, tf_keras_model: Any) -> Any:
    import keras

    objects = None
    if job.custom_objects:
        from modelpack.inputs.keras_io import load_custom_objects

        objects = load_custom_objects(job.custom_objects)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            h5 = Path(tmp) / "model.h5"
            if job.model_format == "tf-keras-h5":
                shutil.copyfile(job.model_path, h5)  # the user's file is never rewritten
            else:
                tf_keras_model.save(h5)
            _drop_default_time_major(h5)
            return keras.saving.load_model(h5, compile=False, safe_mode=not job.trust_code, custom_objects=objects)
    except Exception as exc:  # whatever Keras 3 cannot read: the tf-keras model is used as it is
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        raise PortError(f"Keras 3 cannot load it ({type(exc).__name__}: {first[:200]})") from None


def _drop_default_time_major(h5: Path) -> None:
    """Remove `time_major: false` from the recurrent layers' configs in an HDF5 model file.

    tf-keras writes the argument on every LSTM / GRU / SimpleRNN; Keras 3 has no such argument and refuses the
    layer, although false is its only behaviour. A true value is left in place, so Keras 3 still refuses it.
    """
    import h5py

    with h5py.File(h5, "r+") as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            return
        config = json.loads(raw if isinstance(raw, str) else raw.decode("utf-8"))
        if _strip_time_major(config):
            f.attrs["model_config"] = json.dumps(config)


def _strip_time_major(node: Any) -> bool:
    """Delete every `"time_major": False` in a nested config; True when one was found."""
    found = False
    if isinstance(node, dict):
        if node.get("time_major") is False:
            del node["time_major"]
            found = True
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return False
    for child in children:
        found = _strip_time_major(child) or found
    return found


STEPS = (Keras3PortStep,)
