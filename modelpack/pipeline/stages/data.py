"""The data stage: seeded splits checked against the model's inputs, and the float model's outputs on them."""

from __future__ import annotations

from modelpack.errors import InputError, StepFailedError
from modelpack.inputs.data import prepare
from modelpack.pipeline.fingerprint import npz_digest
from modelpack.pipeline.jobs import Job, run_step
from modelpack.pipeline.state import BuildState


def run(state: BuildState) -> None:
    """Seeded splits checked against the model inputs, saved for the steps; the float model's outputs on them."""
    recipe, work = state.recipe, state.work
    state.samples = prepare(recipe.data, state.inputs, state.origin, recipe.task, state.arrays)
    state.eval_npz = state.samples.save(work / "eval.npz", "eval")
    state.calib_npz = state.samples.save(work / "calibration.npz", "calibration")
    state.data_sha = {"evaluation": npz_digest(state.eval_npz), "calibration": npz_digest(state.calib_npz)}
    if recipe.optimize.prune is not None:
        if state.samples.train_x is None or state.samples.train_y is None:
            raise InputError(
                f"{state.origin}: optimize.prune fine-tunes the model, which needs labelled training samples: "
                "set data.train (arrays) or leave samples over after data.evaluation and data.calibration."
            )
        state.train_npz = state.samples.save(work / "train.npz", "train")
        state.data_sha["training"] = npz_digest(state.train_npz)
    baseline = run_step(state, Job("baseline", "baseline", source=state.model))
    if not baseline.ok:
        raise StepFailedError(f"running the model on the evaluation samples failed: {baseline.error}")
    state.baseline_dir = baseline.dir
    state.data_sha["baseline"] = npz_digest(state.baseline_dir / "outputs.npz")

