"""The source stage: the model every variant is converted from (a tf-keras model's Keras 3 copy, a mixed-precision
model's float32 copy, then pruning when the recipe asks for it), and the distilled student when it asks for one."""

from __future__ import annotations

from modelpack.errors import DistillError, InputError, PortError, PrecisionError, PruneError, StepFailedError
from modelpack.inputs.modelfile import ModelFile, detect
from modelpack.pipeline.jobs import Job, run_step
from modelpack.pipeline.state import BuildState
from modelpack.steps import STEPS


def run(state: BuildState) -> None:
    """The Keras 3 port of a tf-keras model, the float32 copy of a mixed-precision one, then pruning (optional);
    the result is the source of every variant, and its own outputs what float32 conversions must reproduce."""
    state.source = keras3_source(state)
    state.precision = None
    if state.info.get("precision"):
        state.source = float32_source(state)
    if state.recipe.optimize.prune is not None:
        prune_from = state.source if state.precision else state.network
        res = recipe_step(state, Job("prune", "prune", STEPS.get("prune")().options(state.recipe), source=prune_from),
                          PruneError, "pruning")
        state.prune_details = res.details
        state.source = detect(res.dir / "model.keras")
    if state.recipe.optimize.distill is not None:
        distill(state)
    if state.prune_details is None and state.precision is None:
        return  # a Keras 3 port reproduces the model within 1e-5: the model's outputs serve
    # The source's own outputs: what its float32 conversions must reproduce (fidelity stays against the model).
    out = run_step(state, Job("source-baseline", "baseline"))
    if not out.ok:
        raise StepFailedError(f"running the model the variants come from failed: {out.error}")
    state.source_baseline_dir = out.dir


def keras3_source(state: BuildState) -> ModelFile:
    """For tf-keras models, a Keras 3 copy with the same outputs is the source, so Keras-3-only
    paths take them too; sets the note that says which model the variants come from."""
    model = state.network
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


def float32_source(state: BuildState) -> ModelFile:
    """A mixed-precision model's float32 copy (same weights, float32 policy), checked against the model's own
    outputs in its compute dtype; the report says what was done."""
    res = run_step(state, Job("float32-copy", "float32-copy", source=state.source))
    if not res.ok:
        why = res.message if res.is_error(PrecisionError) else res.error
        raise InputError(f"{state.model.path}: the model computes in {state.info['precision']['policy']}, which the "
                         f"converters take only as a float32 copy, and {why}. Save a float32 copy yourself "
                         "(the model rebuilt under the float32 policy with the same weights) and build that.")
    state.precision = res.details
    return detect(res.dir / "model.keras")


def distill(state: BuildState) -> None:
    """Train the student from the source model (the teacher) and run it on the evaluation samples: the outputs its
    float32 conversions must reproduce. A student that cannot be made is the recipe's error."""
    spec = state.recipe.optimize.distill
    data = {"student": spec.student} if spec.student else {}
    res = recipe_step(state, Job("distill", "distill", STEPS.get("distill")().options(state.recipe), data=data),
                      DistillError, "training the distilled student")
    state.distill = res.details
    state.student = detect(res.dir / "student.keras")
    out = run_step(state, Job("student-baseline", "baseline", source=state.student))
    if not out.ok:
        raise StepFailedError(f"running the distilled student on the evaluation samples failed: {out.error}")
    state.student_baseline_dir = out.dir


def recipe_step(state: BuildState, job: Job, user_error: type, doing: str):
    """Run the step an optimize.<name> section asks for: a failure the recipe can fix (`user_error`) is the recipe's
    error naming its section, any other a failed step."""
    res = run_step(state, job)
    if res.ok:
        return res
    if res.is_error(user_error):
        raise InputError(f"{state.origin}: optimize.{job.step}: {res.message}")
    raise StepFailedError(f"{doing} failed: {res.error}")
