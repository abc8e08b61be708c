"""The stages before measuring: model, inspection, data and baseline, the source model, conversion.

Each is `stage(state) -> None`; modelpack.pipeline.build lists them with what they read and write."""

from __future__ import annotations

import json

from modelpack import precheck
from modelpack.data import prepare
from modelpack.errors import InputError, StepFailedError
from modelpack.modelfile import ModelFile, detect
from modelpack.pipeline.fingerprint import npz_digest
from modelpack.pipeline.jobs import Job, run_step, run_steps
from modelpack.pipeline.state import BuildState
from modelpack.served import scored_output
from modelpack.steps import STEPS


def load_model(state: BuildState) -> None:
    """Step 2, model: detect the format by content, refuse unsafe code, record identity."""
    state.model = precheck.check_model(state.recipe, state.origin)
    # Data before TensorFlow starts: a bad file or a failing data function is reported in a second.
    state.arrays = precheck.check_data(state.recipe, state.origin, call_functions=True)


def inspect(state: BuildState) -> None:
    """Step 3, inspect in the worker: inputs, outputs, parameters."""
    res = run_step(state, Job("inspect", "inspect", source=state.model))
    if res.is_error("UnservableInputError"):
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


def prepare_data(state: BuildState) -> None:
    """Steps 4 and 5, data and baseline: seeded splits checked against the model inputs, the float outputs."""
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


def source_model(state: BuildState) -> None:
    """Steps 5a and 5b: the Keras 3 port of a tf-keras model, then pruning (optional); the result is the source
    of every variant."""
    state.source = keras3_source(state)
    if state.recipe.optimize.prune is None:
        return
    res = run_step(state, Job("prune", "prune", STEPS.get("prune")().options(state.recipe), source=state.model))
    if not res.ok:
        if res.is_error("PruneError"):
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
    """Step 5a: for tf-keras models, a Keras 3 copy with the same outputs is the source, so Keras-3-only
    paths take them too; sets the note that says which model the variants come from."""
    model = state.model
    if model.format not in ("tf-keras", "tf-keras-h5"):
        return model
    res = run_step(state, Job("keras3-port", "keras3-port", source=model))
    if res.ok:
        state.port_note = (f"tf-keras model: variants are converted from its Keras 3 copy (outputs within "
                           f"{res.details['max_abs_err']:.1e} on the evaluation samples).")
        return detect(res.dir / "model.keras")
    why = res.message if res.is_error("PortError") else res.error
    state.port_note = f"tf-keras model, used as it is: {why}."
    return model


def convert(state: BuildState) -> None:
    """Step 6, variants: every requested converter (and what it requires), isolated, cached."""
    wanted = list(state.recipe.optimize.variants)
    plan: list[str] = []
    for name in wanted:
        dep = STEPS.get(name).REQUIRES
        if dep and dep not in plan:
            plan.append(dep)
        if name not in plan:
            plan.append(name)
    jobs = [Job(n, n, STEPS.get(n)().options(state.recipe), STEPS.get(n).REQUIRES) for n in plan]
    converted = run_steps(state, jobs)
    state.converted = {n: converted[n] for n in wanted}
