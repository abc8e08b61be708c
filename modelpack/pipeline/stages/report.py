"""The report stage: the report's fixed sections from the build state, and its notes."""

from __future__ import annotations

import os
from pathlib import Path

from modelpack.measure import metrics
from modelpack.pipeline.state import BuildState
from modelpack.report.build_report import BuildReport
from modelpack.steps import distilled


def run(state: BuildState) -> None:
    """The report: the build's settings, every variant, the search, the selection, memory sizes and the split."""
    report = new_report(state)
    report.variants, report.search = state.variants, state.search
    sel = state.selection
    report.selected, report.selection_reason, report.closest, report.budgets = (
        sel.selected, sel.reason, sel.closest, sel.budgets)
    add_notes(state, report)
    report.notes += sel.notes
    report.memory, report.split = state.memory, state.split
    report.distill = distill_section(state)
    report.build = state.usage.record()
    state.report = report


def new_report(state: BuildState) -> BuildReport:
    """The report's model, data and measurement settings."""
    d = state.recipe.data
    samples = state.samples
    calibrates = state.recipe.optimize.calibrates
    if samples.synthetic:
        desc = f"synthetic random inputs ({len(samples.eval_x[0])} samples): no accuracy, fidelity and latency only"
    else:
        calibration = (f"{len(samples.calib_x[0])} calibration samples" if calibrates else
                       "no calibration samples (no variant calibrates)")
        if samples.overlap:
            calibration += f", {samples.overlap} of them also evaluation samples (data.allow_overlap)"
        desc = (f"{len(samples.eval_x[0])} evaluation and {calibration} "
                f"from {relative(Path(d.path), state.recipe_path) if d.path and os.path.exists(d.path) else d.path}"
                f" (labels: {d.labels or 'none'})")
    ms = state.recipe.measure
    model = state.model
    return BuildReport(
        modelpack_version=state.versions["modelpack"] or "0",
        recipe=relative(state.recipe_path.resolve(), state.recipe_path),
        name=state.recipe.name,
        model={"path": relative(model.path, state.recipe_path), "sha256": model.sha256,
               "format": model.format, "params": state.info["params"], "size_bytes": model.size_bytes,
               "inputs": state.info.get("model_inputs", state.info["inputs"]), "outputs": state.info["outputs"]},
        data={"description": desc, "synthetic": samples.synthetic,
              "evaluation": len(samples.eval_x[0]), "calibration": len(samples.calib_x[0]) if calibrates else 0,
              "overlap": samples.overlap},
        task=state.task.to_json(),
        measure={"batch": ms.latency.batch, "threads": ms.latency.threads, "warmup": ms.latency.warmup,
                 "runs": ms.latency.runs, "cold_runs": ms.cold_start.runs},
    )


def distill_section(state: BuildState) -> dict | None:
    """The model (teacher) beside its distilled student as Keras models, the variant twins, and the training."""
    d = state.distill
    if d is None:
        return None
    keras = state.variants[0]
    outputs, task, scored = state.student_outputs(), state.recipe.task, state.scored
    fidelity = metrics.fidelity(outputs, state.baseline_outputs(), task, scored)
    student = {"params": d["student_params"], "size_bytes": state.student.size_bytes,
               "accuracy": metrics.accuracy(outputs, state.samples.eval_y, task, scored=scored),
               "agreement": fidelity.get("agreement")}
    return {"how": d["student"], "teacher": {"params": d["teacher_params"], "size_bytes": keras.size_bytes,
                                             "accuracy": keras.accuracy},
            "student": student, "variants": {v: distilled(v) for v in state.recipe.optimize.variants},
            **{k: d[k] for k in ("temperature", "alpha", "train_samples", "validation_samples", "epochs_run",
                                 "best_epoch", "best_val_loss", "curve", "seconds", "loss")}}


def add_notes(state: BuildState, report: BuildReport) -> None:
    """Notes on how the variants came about: the Keras 3 port, pruning, synthetic data."""
    if state.port_note:
        report.notes.append(state.port_note)
    if state.precision is not None:
        p = state.precision
        report.model["precision"] = dict(p)
        report.notes.append(
            f"{p['policy']} model: the variants are converted from a float32 copy with the same weights (every "
            f"{p['policy']} layer set to float32); on the {p['samples']} evaluation samples it computes the model's "
            f"outputs within {p['max_abs_err']:.1e} (relative {p['max_rel_err']:.1e}, tolerance {p['tolerance']:g}). "
            "Fidelity and accuracy compare each variant with the model as it computes, in half precision.")
    text = state.info.get("text")
    if text:
        report.model["text"] = {k: text[k] for k in ("input", "feeds", "layer", "kind", "standardize", "split",
                                                     "ngrams", "output_mode", "sequence_length")}
        report.model["text"]["vocabulary_size"] = len(text["vocabulary"])
        report.notes.append(
            f"Text model: input '{text['input']}' is read by '{text['layer']}' ({text['kind']}); its vocabulary "
            f"lookup ({len(text['vocabulary'])} terms) runs in the handler (text.py), which gives the layer's very "
            "ids on every sample text and on a corpus of awkward strings (checked by this build). The variants are "
            f"the rest of the model, from '{text['feeds']}' on; their latency excludes the lookup.")
    if state.prune_details is not None:
        report.prune = state.prune_details
        report.notes.append("Pruning zeroes weights but keeps them in the file: it shrinks zipped size, not raw size.")
    if state.samples.synthetic:
        report.notes.append("Data is synthetic: accuracy is not measured; fidelity and latency are.")
    report.notes += [f"Data: {note}." for note in state.samples.notes]


def relative(path: Path, recipe_path: Path) -> str:
    """A path as the report shows it: relative to the recipe's folder (its name alone on another drive)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), recipe_path.resolve().parent)).as_posix()
    except ValueError:
        return Path(path).name
