"""The source stage: the model every variant is converted from (a tf-keras model's Keras 3 copy, then
pruning when the recipe asks for it)."""

from __future__ import annotations

from modelpack.errors import InputError, PortError, PruneError, StepFailedError
from modelpack.inputs.modelfile import ModelFile, detect
from modelpack.pipeline.jobs import Job, run_step
from modelpack.pipeline.state import BuildState
from modelpack.steps import STEPS


def run(state: BuildState) -> None:
    """The Keras 3 port of a tf-keras model, then pruning (optional); the result is the source of every variant."""
    state.source = keras3_source(state)
    if state.recipe.optimize.prune is None:
        return
    res = run_step(state, Job("prune", "prune", STEPS.get("prune")().options(state.recipe), source=state.model))
    if not res.ok:
        if res.is_error(PruneError):
            raise InputError(f"{state.origin}: optimize.prune: {res.message}")
        raise StepFailedError(f"pruning failed: {res.error}")
    state.prune_details = res.details
    state.source = detect(res.dir / "model.keras")
    # The pruned model's own outputs: what its float32 conversions must reproduce.
    out = run_step(state, Job("source-baseline", "baseline"))
    if not out.ok:
        raise StepFailedError(f"running the pruned model failed: {out.error}")
    state.source_baseline_dir = out.dir


def keras3_source(state: BuildState) -> ModelFile:
    """For tf-keras models, a Keras 3 copy with the same outputs is the source, so Keras-3-only
    paths take them too; sets the note that says which model the variants come from."""
    model = state.model
    if model.format not in ("tf-keras", "tf-keras-h5"):
        return model
    res = run_step(state, Job("keras3-port", "keras3-port", source=model))
    if res.ok:
        state.port_note = (f"tf-keras model: variants are converted from its Keras 3 copy (outputs within "
                           f"{res.details['max_abs_err']:.1e} on the evaluation samples).")
        return detect(res.dir / "model.keras")
    why = res.message if res.is_error(PortError) else res.error
    state.port_note = f"tf-keras model, used as it is: {why}."
    return model

