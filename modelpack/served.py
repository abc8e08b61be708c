"""What the build's own checks serve: real evaluation samples, their shapes, and the output the task scores."""

from __future__ import annotations

from typing import Any

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


def sample(ctx: Any, n: int = 1) -> dict[str, np.ndarray]:
    """The first `n` evaluation samples, one array per model input, as the build measured them.

    Checks serve these rather than a synthetic guess: free dimensions (a variable-length time axis) then
    have the sizes the model really sees."""
    return {spec["name"]: np.asarray(x[:n]) for spec, x in zip(ctx.info["inputs"], ctx.samples.eval_x)}


def shapes(arrays: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """{input name: shape} of what a check served, for the report."""
    return {name: [int(d) for d in np.shape(a)] for name, a in arrays.items()}


def response_outputs(body: dict, names: list[str]) -> list[np.ndarray]:
    """A handler's answer as one array per model output, from any of its response formats.

    One output: `predictions` is the output itself. Several: `predictions` is one {output: value} object per
    row (row format), or `outputs` is {output: values} (columnar format)."""
    if "outputs" in body:
        outs = body["outputs"]
        return [np.asarray(outs[n], dtype=np.float64) for n in names] if isinstance(outs, dict) \
            else [np.asarray(outs, dtype=np.float64)]
    predictions = body["predictions"]
    if len(names) > 1:
        return [np.asarray([row[n] for row in predictions], dtype=np.float64) for n in names]
    return [np.asarray(predictions, dtype=np.float64)]


def max_abs_err(got: list[np.ndarray], expected: list[np.ndarray] | None) -> float | None:
    """Largest absolute difference over every output (None without a reference); NaN counts as infinite."""
    if expected is None or len(expected) != len(got):
        return None
    worst = 0.0
    for g, e in zip(got, expected):
        if np.size(g) != np.size(e):
            return float("inf")
        d = np.abs(np.asarray(g, dtype=np.float64).reshape(np.shape(e)) - np.asarray(e, dtype=np.float64))
        worst = max(worst, float(np.inf if np.isnan(d).any() else np.max(d, initial=0.0)))
    return worst
