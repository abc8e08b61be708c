"""The inspect stage: the model loaded as the recipe says (every build, cache or not), its inputs, outputs and
parameters read in the worker; a text model's vocabulary lookup split off; free dimensions fixed or refused."""

from __future__ import annotations

import json

from modelpack.errors import InputError, ModelLoadError, UnservableInputError
from modelpack.inputs import shapes
from modelpack.inputs.modelfile import detect
from modelpack.inputs.task import check_outputs, class_names, scored_output
from modelpack.pipeline.jobs import Job, run_step
from modelpack.pipeline.state import BuildState
from modelpack.report.records import StepResult


def run(state: BuildState) -> None:
    """Load the model in the worker (never from the cache: a build proves the model loads as the recipe says),
    then settle what every later stage sees: the numeric model, its inputs and outputs, the scored output."""
    res = run_step(state, Job("inspect", "inspect", source=state.model, reuse=False, shapes=False))
    refuse_load_failure(state, res)
    info = json.loads((res.dir / "info.json").read_text())
    state.network = state.model
    if any(t["dtype"] == "string" for t in info["inputs"]):
        split = run_step(state, Job("text-split", "text-split", source=state.model, shapes=False))
        refuse_load_failure(state, split)
        info["text"] = json.loads((split.dir / "text.json").read_text())
        info["model_inputs"], info["inputs"] = info["inputs"], split.details["inputs"]
        state.network = detect(split.dir / "model.keras")
        if state.recipe.optimize.split is not None:
            raise InputError(f"{state.origin}: optimize.split does not take a text model yet (its vocabulary lookup "
                             "runs in the handler); remove optimize.split and any lambda-split target.")
    info["inputs"] = shapes.apply(info["inputs"], state.recipe.data.shapes, state.origin)
    # A text model's id sequence takes its length from the texts, synthetic ones included.
    shapes.check_synthetic(state.recipe, info.get("model_inputs", info["inputs"]), state.origin)
    state.info = info
    state.scored = scored_output(state.recipe.task_output, info["outputs"], state.origin)
    outputs = info["outputs"]
    spec = state.recipe.data
    labels = state.arrays.get(spec.labels) if state.arrays is not None and spec.labels else None
    check_outputs(state.task.task, labels, spec.labels or "y", outputs[state.scored], state.origin)
    info["labels"] = class_names(state.recipe.serving.labels, state.task.task, outputs[state.scored], state.origin)
    if state.recipe.optimize.split is not None and len(outputs) > 1:
        raise InputError(
            f"{state.origin}: optimize.split cuts a model into a chain where each part hands one tensor to the "
            f"next, but this model has {len(outputs)} outputs "
            f"({', '.join(o['name'] for o in outputs)}); splitting supports single-output models "
            "only. Remove optimize.split (and any lambda-split target).")


def refuse_load_failure(state: BuildState, res: StepResult) -> None:
    """A model that does not load, or takes inputs no runtime serves, is the recipe's problem: exit 2 with the
    whole reason."""
    if res.ok:
        return
    if res.is_error(UnservableInputError) or res.is_error(ModelLoadError):
        raise InputError(f"{state.model.path}: {res.message}")
    model = state.recipe.model
    hint = ("Check that it was saved with model.save() by a compatible Keras"
            + ("" if model.trust_code else ", or trust its code (model.trust_code: true) if it has custom layers"))
    raise InputError(f"{state.model.path}: the model could not be loaded ({res.error}). {hint}.")
