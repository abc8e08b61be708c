"""Mixed-precision models: a float32 copy with the same weights, the model every variant is converted from
(worker process only: imports TensorFlow).

A model trained under `mixed_float16` or `mixed_bfloat16` computes in half precision: TFLite has no builtin
half-precision kernels for most of its ops, and its float32 conversions would be judged against a reference that
is itself the less exact one. The copy takes the model's architecture with every half-precision dtype policy set
to float32, and its weights (kept in float32 by mixed precision) as they are. It must compute the model's outputs
within HALF_TOLERANCE, relative: what half-precision arithmetic allows, far below what a wrong copy would give.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelpack.errors import PrecisionError
from modelpack.steps.base import Step, StepJob

HALF = ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16")
HALF_TOLERANCE = 0.05  # |copy - model| / (1 + |model|), over every output element


def half_precision(model: Any) -> dict | None:
    """{"policy": the model's (or its first half-precision layer's) policy, "layers": how many layers compute in
    half precision}; None for a float32 model."""
    layers = [layer for layer in _all_layers(model) if _policy(layer) in HALF]
    if not layers:
        return None
    policy = _policy(model) if _policy(model) in HALF else _policy(layers[0])
    return {"policy": policy, "layers": len(layers)}


def _policy(layer: Any) -> str:
    policy = getattr(layer, "dtype_policy", None)
    return str(getattr(policy, "name", policy or ""))


def _all_layers(model: Any) -> list:
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        if hasattr(layer, "layers"):
            found.extend(_all_layers(layer))
    return found


def float32_config(node: Any) -> Any:
    """A Keras config with every half-precision dtype policy (Keras 3 DTypePolicy, tf-keras Policy, or a plain
    policy name under `dtype`) replaced by float32; the input layers' dtypes are left as they are."""
    if isinstance(node, list):
        return [float32_config(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") in ("DTypePolicy", "Policy", "FloatDTypePolicy") and isinstance(node.get("config"), dict) \
            and node["config"].get("name") in HALF:
        return {**node, "config": {**node["config"], "name": "float32"}}
    out = {}
    for key, value in node.items():
        out[key] = "float32" if key == "dtype" and value in HALF else float32_config(value)
    return out


def float32_copy(model: Any, custom_objects: dict | None = None) -> Any:
    """The model rebuilt from its float32 config with its own weights."""
    import keras

    config = float32_config(model.get_config())
    if isinstance(model, keras.Model):
        with keras.saving.custom_object_scope(custom_objects or {}):
            copy = type(model).from_config(config)
    else:  # tf-keras
        import tf_keras

        with tf_keras.utils.custom_object_scope(custom_objects or {}):
            copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


class Float32CopyStep(Step):
    """Save the float32 copy of a mixed-precision model, checked against the model's own outputs."""

    NAME = "float32-copy"
    FILE = "model.keras"
    USES_EVALUATION = True
    USES_BASELINE = True

    def run(self, job: StepJob, ctx: Any) -> dict:
        from modelpack.inputs import keras_io

        loaded = ctx.model(job)
        if loaded.keras_model is None or half_precision(loaded.keras_model) is None:
            raise PrecisionError("the model computes in float32 already")
        found = half_precision(loaded.keras_model)
        try:
            copy = float32_copy(loaded.keras_model, keras_io.load_custom_objects(job.custom_objects))
        except Exception as exc:  # whatever the architecture's own from_config refuses
            raise PrecisionError(f"the {found['policy']} model cannot be rebuilt in float32 "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
        with np.load(job.data["evaluation"]) as npz:
            xs = [npz[f"in_{i}"] for i in range(len(loaded.inputs))]
        with np.load(job.data["baseline"]) as npz:
            expected = [npz[f"out_{i}"] for i in range(len(npz.files))]
        got = keras_io.from_keras(copy).predict(xs)
        worst_abs = max(float(np.max(np.abs(g.astype(np.float64) - e), initial=0.0)) for g, e in zip(got, expected))
        worst_rel = max(float(np.max(np.abs(g.astype(np.float64) - e) / (1 + np.abs(e.astype(np.float64))),
                                     initial=0.0)) for g, e in zip(got, expected))
        if not worst_rel <= HALF_TOLERANCE:
            raise PrecisionError(f"the float32 copy of the {found['policy']} model differs from it by {worst_rel:.2e} "
                                 f"(relative; tolerance {HALF_TOLERANCE:g}), more than half precision explains")
        copy.save(job.out / self.FILE)
        return {**found, "max_abs_err": worst_abs, "max_rel_err": worst_rel, "tolerance": HALF_TOLERANCE,
                "samples": int(len(xs[0]))}


STEPS = (Float32CopyStep,)
