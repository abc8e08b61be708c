"""The inspect stage: the model's inputs, outputs and parameters, read in the worker."""

from __future__ import annotations

import json

from modelpack.errors import InputError, UnservableInputError
from modelpack.inputs.task import scored_output
from modelpack.pipeline.jobs import Job, run_step
from modelpack.pipeline.state import BuildState


def run(state: BuildState) -> None:
    """Inspect the model in the worker: inputs, outputs, parameters, and the output the task scores."""
    res = run_step(state, Job("inspect", "inspect", source=state.model))
    if res.is_error(UnservableInputError):
        raise InputError(f"{state.model.path}: {res.message}")
    if not res.ok:
        raise InputError(
            f"{state.model.path}: the model could not be loaded ({res.error}). "
            "Check that it was saved with model.save() by a compatible Keras, or trust its code if it has custom layers."
        )
    state.info = json.loads((res.dir / "info.json").read_text())
    state.scored = scored_output(state.recipe.task_output, state.info["outputs"], state.origin)
    outputs = state.info["outputs"]
    if state.recipe.optimize.split is not None and len(outputs) > 1:
        raise InputError(
            f"{state.origin}: optimize.split cuts a model into a chain where each part hands one tensor to the "
            f"next, but this model has {len(outputs)} outputs "
            f"({', '.join(o['name'] for o in outputs)}); splitting supports single-output models "
            "only. Remove optimize.split (and any lambda-split target).")

