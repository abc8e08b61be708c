"""The report stage: the report's fixed sections from the build state, and its notes."""

from __future__ import annotations

import os
from pathlib import Path

from modelpack.pipeline.state import BuildState
from modelpack.report.build_report import BuildReport


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
    report.build = state.usage.record()
    state.report = report


def new_report(state: BuildState) -> BuildReport:
    """The report's model, data and measurement settings."""
    d = state.recipe.data
    samples = state.samples
    if samples.synthetic:
        desc = f"synthetic random inputs ({len(samples.eval_x[0])} samples): no accuracy, fidelity and latency only"
    else:
        desc = (f"{len(samples.eval_x[0])} evaluation and {len(samples.calib_x[0])} calibration samples "
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
               "inputs": state.info["inputs"], "outputs": state.info["outputs"]},
        data={"description": desc, "synthetic": samples.synthetic,
              "evaluation": len(samples.eval_x[0]), "calibration": len(samples.calib_x[0])},
        measure={"batch": ms.latency.batch, "threads": ms.latency.threads, "warmup": ms.latency.warmup,
                 "runs": ms.latency.runs, "cold_runs": ms.cold_start.runs},
    )


def add_notes(state: BuildState, report: BuildReport) -> None:
    """Notes on how the variants came about: the Keras 3 port, pruning, synthetic data."""
    if state.port_note:
        report.notes.append(state.port_note)
    if state.prune_details is not None:
        report.prune = state.prune_details
        report.notes.append("Pruning zeroes weights but keeps them in the file: it shrinks zipped size, not raw size.")
    if state.samples.synthetic:
        report.notes.append("Data is synthetic: accuracy is not measured; fidelity and latency are.")


def relative(path: Path, recipe_path: Path) -> str:
    """A path as the report shows it: relative to the recipe's folder (its name alone on another drive)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), recipe_path.resolve().parent)).as_posix()
    except ValueError:
        return Path(path).name
