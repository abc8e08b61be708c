"""The job runner: steps through the cache and the worker process, each fed the data its step declares."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelpack import limits
from modelpack.files.cache import cache_key
from modelpack.files.jsonio import dumps_strict
from modelpack.inputs.modelfile import ModelFile
from modelpack.pipeline.fingerprint import file_digest
from modelpack.pipeline.state import BuildState
from modelpack.report.records import StepResult
from modelpack.steps import STEPS, StepJob
from modelpack.steps.base import PROGRESS
from modelpack.steps.worker import RESULT, STARTED, run_jobs


@dataclass
class Job:
    """One step to run: `label` names its output folder and its result; `dep` labels the job it consumes.

    `source` defaults to the model variants are converted from; `data` adds or replaces sample files
    (data name -> path) beyond those the step declares with its USES_* flags. `reuse: False` runs the step even
    when the cache has its result (the load check every build makes); `shapes: False` loads the model with its
    own free dimensions rather than the recipe's data.shapes.
    """

    label: str
    step: str
    options: dict = field(default_factory=dict)
    dep: str | None = None
    source: ModelFile | None = None
    data: dict[str, str] = field(default_factory=dict)
    reuse: bool = True
    shapes: bool = True


def step_data(state: BuildState, step_name: str) -> dict[str, str]:
    """The sample files a step declares it reads (data name -> path)."""
    step = STEPS.get(step_name)
    data = {}
    if step.USES_CALIBRATION:
        data["calibration"] = str(state.calib_npz)
    if step.USES_EVALUATION:
        data["evaluation"] = str(state.eval_npz)
    if step.USES_BASELINE:
        data["baseline"] = str(state.baseline_dir / "outputs.npz")
    if step.USES_TRAINING:
        data["training"] = str(state.train_npz)
    return data


def run_steps(state: BuildState, plan: list[Job], finished: Callable[[str, StepResult], None] | None = None,
              low_memory: bool = False) -> dict[str, StepResult]:
    """Run the jobs through the cache and the worker; return each result by label. `finished(label, result)` is
    called for each job the worker ran, as soon as its batch ends (while the next batch runs on). `low_memory`:
    the jobs only convert (no training or predicting), so a large model's worker may drop TensorFlow's oneDNN
    allocator (steps.worker.LARGE_MODEL_ENV)."""
    done: dict[str, StepResult] = {}
    keys: dict[str, str] = {}
    pending: list[tuple[str, str, StepJob]] = []
    large = False  # a large source model: one worker per job (worker_batches)
    for job in plan:
        data = {**step_data(state, job.step), **job.data}
        source = job.source or state.source
        digests = {k: file_digest(Path(v)) if k in job.data else state.data_sha[k] for k, v in data.items()}
        model = state.recipe.model
        shapes = state.recipe.data.shapes if job.shapes else None
        # How the model is loaded is part of what a step did: another custom_objects module or data.shapes is
        # another result.
        loading = {"trust_code": model.trust_code, "custom_objects": model.custom_objects, "shapes": shapes}
        key = cache_key(job.step, source.sha256, job.options, state.versions, digests, keys.get(job.dep or ""),
                        loading)
        keys[job.label] = key
        hit = state.cache.get(key) if job.reuse else None
        if hit is not None:
            done[job.label] = StepResult.from_json(json.loads((hit / RESULT).read_text()), hit, cached=True)
            continue
        out = state.work / "steps" / job.label
        shutil.rmtree(out, ignore_errors=True)
        dep = (done.get(job.dep) or state.converted.get(job.dep)) if job.dep else None
        dep_dir = str(dep.dir) if dep is not None and dep.dir is not None else None
        if job.dep and dep_dir is None:
            dep_dir = str(state.work / "steps" / job.dep)
        step_job = StepJob(job.step, str(source.path), source.format, str(out), job.options,
                           model.trust_code, model.custom_objects, dep_dir, data, shapes)
        pending.append((job.label, key, step_job))
        large = large or source.size_bytes >= limits.LARGE_MODEL_BYTES
    for batch in worker_batches(pending, large) if pending else []:
        title = f"running {', '.join(p[0] for p in batch)}"
        with state.reporter.step(title):
            results = run_jobs([j for _, _, j in batch], state.work / "worker.log",
                               watch=lambda b=batch, t=title: show_progress(state, b, t), large=large and low_memory)
        for label, key, step_job in batch:  # settled as each batch ends, so `finished` can start on it
            res = results[step_job.out_dir]
            if res["ok"]:
                (step_job.out / RESULT).write_text(dumps_strict(res))
                (step_job.out / STARTED).unlink(missing_ok=True)
                entry = state.cache.put(key, step_job.out)
                done[label] = StepResult.from_json(res, entry)
            else:
                done[label] = StepResult.from_json(res)
            if finished is not None:
                finished(label, done[label])
    cached = [job.label for job in plan if done[job.label].cached]
    if cached:
        state.reporter.info(f"reused cached {', '.join(cached)}")
    return done


def show_progress(state: BuildState, batch: list, title: str) -> None:
    """What a running step of the batch says it is at (its PROGRESS file), on the build's progress line."""
    for label, _, step_job in batch:
        try:
            text = json.loads((step_job.out / PROGRESS).read_text())["text"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        state.reporter.step_status(f"{title}: {label} {text}")
        return


def worker_batches(pending: list, large: bool) -> list[list]:
    """The jobs one worker process runs. Small models share one worker (TensorFlow and the model load once);
    for a model of limits.LARGE_MODEL_BYTES or more each job gets a fresh worker, so what a converter keeps (graphs,
    buffers, allocator arenas) is returned to the system before the next one starts and the build's memory
    stays a bounded multiple of the model instead of growing with every variant."""
    return [[p] for p in pending] if large else [pending]


def run_step(state: BuildState, job: Job) -> StepResult:
    """Run one job; its result."""
    return run_steps(state, [job])[job.label]
