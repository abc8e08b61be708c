"""The measure stage: sizes, accuracy, fidelity, warm latency, cold start and peak memory of each variant."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from modelpack.errors import StepFailedError
from modelpack.files.arrays import load_outputs
from modelpack.files.cache import cache_key
from modelpack.files.jsonio import dumps_strict
from modelpack.files.output import sha256_file, tree_bytes, zipped_size
from modelpack.measure import metrics
from modelpack.measure.runner import run_probe
from modelpack.pipeline.fingerprint import host_id
from modelpack.pipeline.state import BuildState
from modelpack.report.records import StepResult, VariantRecord
from modelpack.steps import is_distilled, variant_step

FP32_TOLERANCE = 1e-4


def run(state: BuildState) -> None:
    """The Keras baseline's record and one record per converted variant, with accuracy drops filled in."""
    baseline = state.baseline_outputs()
    source = state.source_outputs()
    student = state.student_outputs() if state.student is not None else None
    zipped = zipped_sizes(state)
    variants = [measure_one(state, "keras", None, StepResult(ok=True), baseline, baseline, zipped)]
    for name, res in state.converted.items():  # a distilled variant's float32 check is against the student
        own = student if is_distilled(name) else source
        variants.append(measure_one(state, name, variant_step(name), res, baseline, own, zipped))
    for v in variants:
        set_accuracy_drop(v, variants[0])
    state.variants = variants


def zipped_sizes(state: BuildState) -> dict[Path, int]:
    """The zipped size of every model file to measure, deflated on both cores before any probe runs (a probe's
    timings must not share the machine); a large model's file takes seconds per hundred MB, so the convert stage
    starts on each file as it appears (state.zipped) and only the rest is deflated here."""
    models = [(Path(state.network.path), "keras")] + [(res.dir / variant_step(name).FILE, variant_step(name).FORMAT)
                                                     for name, res in state.converted.items()
                                                     if res.ok and res.dir is not None]
    paths = [path for path, fmt in models if needs_zipped_size(state, path, fmt)]
    try:
        early = {path: state.zipped.take(path) for path in paths}  # started while the variants were converted
    finally:
        state.zipped.close()
    rest = [path for path in paths if early[path] is None]
    with ThreadPoolExecutor(max_workers=2) as pool:  # zlib releases the GIL while it deflates
        return {**{p: n for p, n in early.items() if n is not None}, **dict(zip(rest, pool.map(zipped_size, rest)))}


def needs_zipped_size(state: BuildState, path: Path, fmt: str) -> bool:
    """Whether measuring `path` will deflate it: a cached measurement keeps its size."""
    spec = state.probe_spec(path, fmt, out="")
    return state.cache.get(_key(state, path, spec, state.recipe.measure.cold_start.runs)) is None


def set_accuracy_drop(variant: VariantRecord, keras: VariantRecord) -> None:
    """The variant's accuracy drop from the Keras baseline, when both accuracies are known; for regression also
    the increase of its mean absolute error (what budgets.max_mae_increase limits)."""
    if variant.accuracy is not None and keras.accuracy is not None:
        variant.accuracy_drop = keras.accuracy - variant.accuracy
    if variant.regression is not None and keras.regression is not None:
        variant.regression["mae_increase"] = variant.regression["mae"] - keras.regression["mae"]


def measure_one(state: BuildState, name: str, step, res: StepResult, baseline: list[np.ndarray],
                source: list[np.ndarray], zipped: dict[Path, int] | None = None) -> VariantRecord:
    """Measure one variant; fidelity is against the float baseline (the model's, for distilled variants too), the
    fp32 check against its source (the distilled student's for distilled variants)."""
    fmt = "keras" if step is None else step.FORMAT
    record = VariantRecord(name, fmt, "none" if step is None else step.QUANTIZATION,
                           pruned=step is not None and state.prune_details is not None and not is_distilled(name), cached=res.cached,
                           details=res.details)
    if not res.ok:
        record.fail(res.error)
        return record
    path = state.network.path if step is None else res.dir / step.FILE
    ms = state.recipe.measure
    spec = state.probe_spec(path, fmt, out=str(state.work / f"out-{name}.npz"))
    try:
        warm, colds, outputs, zipped_bytes, reused = _measured(state, name, Path(path), spec, ms.cold_start.runs,
                                                               (zipped or {}).get(Path(path)))
    except StepFailedError as exc:
        record.fail(str(exc))
        return record
    record.measurement = "reused from cache" if reused else "measured"
    task, scored, eval_y = state.recipe.task, state.scored, state.samples.eval_y
    cold = metrics.median_of(colds)
    record.size_bytes = tree_bytes(Path(path))
    record.zipped_bytes = zipped_bytes
    record.accuracy = metrics.accuracy(outputs, eval_y, task, scored=scored)
    record.fidelity = metrics.fidelity(outputs, baseline, task, scored, [o.name for o in state.outputs])
    record.latency_ms = metrics.latency_stats(warm["latency_ms"])
    record.cold_start_ms = {"p50": cold["total_ms"], "import": cold["import_ms"], "load": cold["load_ms"],
                            "first_inference": cold["first_ms"], "runs": len(colds)}
    record.peak_rss_mb = max(c["peak_rss_mb"] for c in colds)
    if ms.top_k and task == "classification":
        record.accuracy_top_k = {"k": ms.top_k, "value": metrics.accuracy(outputs, eval_y, task, ms.top_k, scored)}
    if task == "regression" and eval_y is not None:
        record.regression = metrics.regression_errors(outputs, eval_y, scored)
    if step is not None and step.QUANTIZATION == "none":
        worst = max(float(np.max(np.abs(o - b) / (1 + np.abs(b)))) for o, b in zip(outputs, source))
        if not worst <= FP32_TOLERANCE:  # NaN fails too
            record.fail(f"float32 conversion differs from its Keras source by {worst:.2e} (tolerance {FP32_TOLERANCE:g})")
    record.file = Path(path)
    return record


def _measured(state: BuildState, name: str, path: Path, spec: dict, cold_runs: int, zipped: int | None = None):
    """Warm and cold probes and the zipped size of one model file, cached under the file's bytes, the
    probe options, the tool versions and this machine (timings from another machine are never reused).
    The size is kept too: deflating a large model again costs more than the rest of a cached build."""
    key = _key(state, path, spec, cold_runs)
    hit = state.cache.get(key)
    if hit is not None:
        data = json.loads((hit / "measure.json").read_text())
        state.reporter.info(f"reused cached measurements of {name}")
        shutil.copyfile(hit / "outputs.npz", spec["out"])  # targets compare their handlers with these
        return data["warm"], data["colds"], load_outputs(hit / "outputs.npz"), data["zipped_bytes"], True
    with state.reporter.step(f"measuring {name}"):
        warm = run_probe("warm", spec, state.work)
        colds = [run_probe("cold", spec, state.work) for _ in range(cold_runs)]
    entry = state.work / "measure" / name
    shutil.rmtree(entry, ignore_errors=True)
    entry.mkdir(parents=True)
    zipped = zipped_size(path) if zipped is None else zipped
    (entry / "measure.json").write_text(dumps_strict({"warm": warm, "colds": colds, "zipped_bytes": zipped}))
    shutil.copyfile(spec["out"], entry / "outputs.npz")
    state.cache.put(key, entry)
    return warm, colds, load_outputs(Path(spec["out"])), zipped, False


def _key(state: BuildState, path: Path, spec: dict, cold_runs: int) -> str:
    """A measurement's cache key: the file's bytes, the probe options, the tool versions and this machine."""
    options = {k: v for k, v in spec.items() if k not in ("model", "data", "out")}
    digest = state.network.sha256 if Path(path) == Path(state.network.path) else sha256_file(path)
    return cache_key("measure", digest, options, cold_runs, state.data_sha["evaluation"], state.versions, host_id())
