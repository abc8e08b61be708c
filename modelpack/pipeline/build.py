"""The build as its stages, in order: what each reads and writes of the BuildState, and what it is for.

`Builder.run` runs them; `modelpack bench` stops before the last (packaging). A unit test checks that every
stage reads only what the stages before it write.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelpack.console.progress import Reporter
from modelpack.files.cache import Cache
from modelpack.pipeline.fingerprint import versions
from modelpack.pipeline.stage import Stage
from modelpack.pipeline.stages import (
    convert,
    data,
    inspect,
    judge,
    measure,
    memory,
    model,
    package,
    report,
    source,
    split,
)
from modelpack.pipeline.state import BuildState
from modelpack.recipe.loader import load_recipe
from modelpack.report.build_report import BuildReport

# Set before the first stage runs.
GIVEN = ("recipe_path", "recipe", "reporter", "cache", "versions", "work", "staging", "images", "usage", "zipped")

# What the job runner reads for a step after the data stage (modelpack.pipeline.jobs): the model it converts,
# the sample files the step declares and their digests.
JOB_DATA = ("data_sha", "calib_npz", "eval_npz", "baseline_dir", "train_npz")
JOB_INPUTS = ("source", *JOB_DATA)
# What measuring a model file reads (BuildState.probe_spec) besides the recipe.
PROBE_INPUTS = ("network", "info", "eval_npz")

STAGES: tuple[Stage, ...] = (
    Stage("model", "check the model file and the data", ("recipe",), ("model", "arrays", "task", "recipe"),
          model.run),
    Stage("inspect", "read the model's inputs and outputs", ("model", "arrays", "task"), ("info", "scored", "network"),
          inspect.run),
    Stage("data", "split the samples and run the float model on them", ("model", "network", "info", "arrays"),
          ("samples", "eval_npz", "calib_npz", "train_npz", "data_sha", "baseline_dir"), data.run),
    Stage("source", "choose the model the variants come from (Keras 3 copy, float32 copy, pruning)",
          ("model", "network", "info", *JOB_DATA), ("source", "source_baseline_dir", "prune_details", "port_note",
                                            "precision", "distill", "student", "student_baseline_dir"), source.run),
    Stage("convert", "convert the variants", (*JOB_INPUTS, "student", "network", "info"),
          ("converted",), convert.run),
    Stage("measure", "measure size, accuracy, fidelity, latency and cold start of every variant",
          ("converted", "samples", "scored", "data_sha", "prune_details", "baseline_dir", "source_baseline_dir",
           "student", "student_baseline_dir", *PROBE_INPUTS), ("variants",), measure.run),
    Stage("judge", "check budgets, search INT8 settings, select a variant",
          ("variants", "info", "scored", "source_baseline_dir", *JOB_INPUTS, *PROBE_INPUTS),
          ("variants", "search", "selection"), judge.run),
    Stage("memory", "time the selected variant at each memory size", ("variants", "selection", *PROBE_INPUTS),
          ("memory",), memory.run),
    Stage("split", "split the selected variant into parts", ("selection", "samples", "scored", *JOB_INPUTS),
          ("split", "split_outputs"), split.run),
    Stage("report", "assemble the report", ("model", "task", "info", "samples", "variants", "search", "selection",
                                            "memory", "split", "port_note", "prune_details", "precision", "distill",
                                            "student", "student_baseline_dir", "scored", "baseline_dir"),
          ("report",), report.run),
    Stage("package", "write the variants, targets and reports",
          ("report", "model", "info", "samples", "split_outputs"), (), package.run),
)
MEASURE_ONLY = STAGES[:-1]


class Builder:
    """Runs the stages in order; `modelpack.pipeline.entry.build()` and `bench()` are thin wrappers over it."""

    def __init__(self, recipe_path: str | Path, cache_dir: str | Path | None, reporter: Reporter | None = None):
        self.recipe_path = Path(recipe_path)
        self.reporter = reporter or Reporter()
        self.recipe = load_recipe(self.recipe_path)
        self.cache = Cache(Path(cache_dir) if cache_dir else Path(), enabled=cache_dir is not None)
        self.versions = versions()

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

    def run(self, work: Path, staging: Path | None = None, images: bool = False) -> BuildReport:
        """Every stage, packaging into `staging` last; without `staging`, everything but packaging."""
        state = BuildState(self.recipe_path, self.recipe, self.reporter, self.cache, self.versions, work,
                           staging, images)
        plan = STAGES if staging is not None else MEASURE_ONLY
        with self.cache.in_use(), state.usage.running():  # `modelpack cache clean` refuses while this build
            try:  # reads and writes entries
                for index, stage in enumerate(plan, 1):
                    with self.reporter.stage(index, len(plan), stage.name, stage.purpose), \
                            state.usage.stage(stage.name):
                        stage.run(state)
            finally:
                state.zipped.close()  # a failed or interrupted build leaves no file being deflated
        assert state.report is not None  # the report stage always runs
        return state.report
