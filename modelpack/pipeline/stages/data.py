"""The data stage: seeded splits checked against the model's inputs, and the float model's outputs on them; a text
model's texts turned into the ids its vocabulary lookup gives (the handler's, proven equal to the layer's)."""

from __future__ import annotations

import numpy as np

from modelpack.errors import InputError, StepFailedError, UnservableInputError
from modelpack.inputs.data import TensorSpec, prepare
from modelpack.pipeline.fingerprint import npz_digest
from modelpack.pipeline.jobs import Job, run_step
from modelpack.pipeline.state import BuildState


def run(state: BuildState) -> None:
    """Seeded splits checked against the model inputs, saved for the steps; the float model's outputs on them."""
    recipe, work = state.recipe, state.work
    text = state.info.get("text")
    inputs = [TensorSpec.from_json(t) for t in state.info["model_inputs"]] if text else state.inputs
    state.samples = prepare(recipe.data, inputs, state.origin, recipe.task, state.arrays,
                            calibrates=recipe.optimize.calibrates)
    if text:
        tokenize(state, text)
    state.samples.notes += resolution_notes(state)
    for note in state.samples.notes:
        state.reporter.warn(note)
    state.eval_npz = state.samples.save(work / "eval.npz", "eval")
    state.calib_npz = state.samples.save(work / "calibration.npz", "calibration")
    state.data_sha = {"evaluation": npz_digest(state.eval_npz), "calibration": npz_digest(state.calib_npz)}
    trains = [why for given, why in ((recipe.optimize.prune, "optimize.prune fine-tunes the model"),
                                      (recipe.optimize.distill, "optimize.distill trains a student"))
              if given is not None]
    if trains:
        if state.samples.train_x is None or state.samples.train_y is None:
            raise InputError(
                f"{state.origin}: {' and '.join(trains)}, which needs labelled training samples: "
                "set data.train (arrays) or leave samples over after data.evaluation and data.calibration."
            )
        state.train_npz = state.samples.save(work / "train.npz", "train")
        state.data_sha["training"] = npz_digest(state.train_npz)
    baseline = run_step(state, Job("baseline", "baseline", source=state.network))
    if not baseline.ok and baseline.error_type is None:  # the worker crashed or timed out: not the data's fault
        raise StepFailedError(f"running the model on the evaluation samples failed: {baseline.error}")
    if not baseline.ok:
        shapes = ", ".join(f"{t.name} {list(x.shape[1:])}" for t, x in zip(state.inputs, state.samples.eval_x))
        fix = ("Fix data.shapes: it gives a size the model cannot take; set the per-sample shape you serve"
               if recipe.data.shapes else "Check that data.inputs hold what the model takes")
        raise InputError(f"{state.model.path}: the model cannot run the evaluation samples (per sample: {shapes}): "
                         f"{baseline.error}. {fix}.")
    state.baseline_dir = baseline.dir
    state.data_sha["baseline"] = npz_digest(state.baseline_dir / "outputs.npz")


def tokenize(state: BuildState, text: dict) -> None:
    """Replace the sample texts by the ids the model's text layer gives them, once the worker has shown that the
    handler's lookup gives the same ids (on these texts and on awkward strings); keep the evaluation texts."""
    samples = state.samples
    if samples.synthetic:  # words the model knows, so the variants see ids they were trained on
        seed = state.recipe.data.seed
        samples.eval_x = [vocabulary_texts(text, len(samples.eval_x[0]), seed)]
        samples.calib_x = [vocabulary_texts(text, len(samples.calib_x[0]), seed + 1)]
    splits = {"evaluation": samples.eval_x[0], "calibration": samples.calib_x[0]}
    if samples.train_x is not None:
        splits["train"] = samples.train_x[0]
    path = state.work / "texts.npz"
    np.savez(path, **splits)
    res = run_step(state, Job("text-tokens", "text-tokens", source=state.model, data={"texts": str(path)},
                              shapes=False))
    if res.is_error(UnservableInputError):
        raise InputError(f"{state.model.path}: {res.message}")
    if not res.ok:
        raise StepFailedError(f"turning the sample texts into token ids failed: {res.error}")
    with np.load(res.dir / "tokens.npz") as npz:
        ids = {k: npz[k] for k in npz.files}
    samples.texts = samples.eval_x[0]
    samples.eval_x, samples.calib_x = [ids["evaluation"]], [ids["calibration"]]
    if samples.train_x is not None:
        samples.train_x = [ids["train"]]


def vocabulary_texts(text: dict, n: int, seed: int) -> np.ndarray:
    """`n` synthetic texts of vocabulary terms (special tokens left out), in the input's per-sample shape."""
    terms = [t for i, t in enumerate(text["vocabulary"]) if t and i != text["oov_index"]] or ["word"]
    rng = np.random.default_rng(seed)
    size = int(np.prod(text["input_shape"], dtype=np.int64)) if text["input_shape"] else 1
    words = 1 if text["kind"] == "StringLookup" else 12
    flat = [" ".join(terms[j] for j in rng.integers(0, len(terms), words)) for _ in range(n * size)]
    return np.asarray(flat, dtype=str).reshape((n, *text["input_shape"]))


def resolution_notes(state: BuildState) -> list[str]:
    """A warning when one evaluation sample moves accuracy by more than the accuracy budget allows: the budget
    can then only be met exactly or missed by a whole sample, and the accuracy itself is coarse."""
    samples, budget = state.samples, state.recipe.budgets.max_accuracy_drop
    if samples.synthetic or samples.eval_y is None or state.recipe.task != "classification" or not budget:
        return []
    n = len(samples.eval_y)
    if 1 / n <= budget:
        return []
    return [f"only {n} evaluation samples: one sample moves accuracy by {1 / n:.4f}, more than "
            f"budgets.max_accuracy_drop {budget:g}, so accuracy differences are this coarse; give more samples "
            "(data.evaluation)"]
