"""The Builder: the stages of a build, in order; each stage reads and extends one BuildState."""

from __future__ import annotations

import json
import os
from pathlib import Path

from modelpack import precheck
from modelpack.cache import Cache
from modelpack.data import TensorSpec, prepare
from modelpack.errors import InputError, StepFailedError
from modelpack.modelfile import ModelFile, detect
from modelpack.pipeline import assemble, judging, measuring, memory_tuning, splitting
from modelpack.pipeline.fingerprint import npz_digest, versions
from modelpack.pipeline.jobs import Job, failure, run_step, run_steps
from modelpack.pipeline.state import BuildState
from modelpack.recipe.loader import load_recipe
from modelpack.report import BuildReport
from modelpack.served import scored_output
from modelpack.steps import STEPS
from modelpack.ui import Reporter


class Builder:
    """Runs the stages in order; `modelpack.pipeline.entry.build()` and `bench()` are thin wrappers over it."""

    def __init__(self, recipe_path: str | Path, cache_dir: str | Path | None, reporter: Reporter | None = None):
        self.recipe_path = Path(recipe_path)
        self.reporter = reporter or Reporter()
        self.recipe = load_recipe(self.recipe_path)
        self.cache = Cache(Path(cache_dir) if cache_dir else Path(), enabled=cache_dir is not None)
        self.versions = versions()
        self.state: BuildState | None = None  # the last run's state, which packaging reads

    def protected_paths(self) -> dict[str, dict[str, Path]]:
        """What an output folder must not be or contain (and, for folders modelpack reads, lie inside)."""
        keep = {"the recipe's folder": self.recipe_path.resolve().parent, "the current directory": Path.cwd()}
        no_inside = {}
        model = Path(self.recipe.model.path)
        (no_inside if model.is_dir() else keep)["the model"] = model
        data = self.recipe.data.path
        if data and os.path.lexists(data):
            keep["the data"] = Path(data)
        if self.cache.enabled:
            no_inside["the cache"] = self.cache.root
        return {"keep": keep, "no_inside": no_inside}

    def run(self, work: Path) -> BuildReport:
        """DESIGN.md steps 2–9: everything except writing the output (steps 10–11, packaging)."""
        state = self.state = BuildState(self.recipe_path, self.recipe, self.reporter, self.cache, self.versions, work)
        load_model(state)
        inspect(state)
        prepare_data(state)
        prune(state)
        converted = convert(state)
        variants = measuring.measure(state, converted)
        report = assemble.new_report(state)
        report.variants = variants
        report.search, selection = judging.judge(state, variants)
        report.selected, report.selection_reason = selection.selected, selection.reason
        report.closest, report.budgets = selection.closest, selection.budgets
        assemble.add_notes(state, report)
        report.memory = memory_tuning.tune_memory(state, report)
        report.split = splitting.split(state, report)
        return report


def load_model(state: BuildState) -> None:
    """Step 2, model: detect the format by content, refuse unsafe code, record identity."""
    state.model = precheck.check_model(state.recipe, state.origin)
    # Data before TensorFlow starts: a bad file or a failing data function is reported in a second.
    state.arrays = precheck.check_data(state.recipe, state.origin, call_functions=True)


def inspect(state: BuildState) -> None:
    """Step 3, inspect in the worker: inputs, outputs, parameters."""
    res = run_step(state, Job("inspect", "inspect", source=state.model))
    if not res["ok"] and res.get("error_type") == "UnservableInputError":
        raise InputError(f"{state.model.path}: {failure(res)}")
    if not res["ok"]:
        raise InputError(
            f"{state.model.path}: the model could not be loaded ({res['error']}). "
            "Check that it was saved with model.save() by a compatible Keras, or trust its code if it has custom layers."
        )
    state.info = json.loads((Path(res["dir"]) / "info.json").read_text())
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
    specs = [TensorSpec.from_json(t) for t in state.info["inputs"]]
    state.samples = prepare(recipe.data, specs, state.origin, recipe.task, state.arrays)
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
    state.baseline_dir = Path(run_step(state, Job("baseline", "baseline", source=state.model))["dir"])
    state.data_sha["baseline"] = npz_digest(state.baseline_dir / "outputs.npz")


def prune(state: BuildState) -> None:
    """Step 5b, pruning (optional): its output becomes the source of every variant."""
    state.source = keras3_source(state)
    if state.recipe.optimize.prune is None:
        return
    res = run_step(state, Job("prune", "prune", STEPS.get("prune")().options(state.recipe), source=state.model))
    if not res["ok"]:
        if res.get("error_type") == "PruneError":
            raise InputError(f"{state.origin}: optimize.prune: {failure(res)}")
        raise StepFailedError(f"pruning failed: {res['error']}")
    state.prune_details = res["details"]
    state.source = detect(Path(res["dir"]) / "model.keras")
    # The pruned model's own outputs: what its float32 conversions must reproduce.
    out = run_step(state, Job("source-baseline", "baseline"))
    if not out["ok"]:
        raise StepFailedError(f"running the pruned model failed: {out['error']}")
    state.source_baseline_dir = Path(out["dir"])


def keras3_source(state: BuildState) -> ModelFile:
    """Step 5a: for tf-keras models, a Keras 3 copy with the same outputs is the source, so Keras-3-only
    paths take them too; sets the note that says which model the variants come from."""
    model = state.model
    if model.format not in ("tf-keras", "tf-keras-h5"):
        return model
    res = run_step(state, Job("keras3-port", "keras3-port", source=model))
    if res["ok"]:
        state.port_note = (f"tf-keras model: variants are converted from its Keras 3 copy (outputs within "
                           f"{res['details']['max_abs_err']:.1e} on the evaluation samples).")
        return detect(Path(res["dir"]) / "model.keras")
    why = failure(res) if res.get("error_type") == "PortError" else res["error"]
    state.port_note = f"tf-keras model, used as it is: {why}."
    return model


def convert(state: BuildState) -> dict[str, dict]:
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
    return {n: converted[n] for n in wanted}
