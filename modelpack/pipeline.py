"""The build: recipe in; converted, measured and judged variants, artifacts and a report out.

DESIGN.md lists these stages as numbered steps. TensorFlow never loads in this process: steps run in a
worker process (modelpack.worker) and measurements in fresh probe processes (modelpack.measure.probe).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from modelpack import budgets as budget_checks
from modelpack import limits, precheck, splitplan
from modelpack.cache import Cache, cache_key
from modelpack.data import Samples, TensorSpec, prepare
from modelpack.errors import InputError, ModelpackError, StepFailedError, TargetError
from modelpack.jsonio import dumps_strict
from modelpack.measure import memory, metrics
from modelpack.measure.runner import run_probe
from modelpack.modelfile import ModelFile, detect
from modelpack.outguard import check_output_dir
from modelpack.output import (
    atomic_output_dir,
    normalize_modes,
    sha256_file,
    tree_bytes,
    write_manifest,
    write_zip,
    zipped_size,
)
from modelpack.recipe.loader import load_recipe
from modelpack.recipe.models import Recipe
from modelpack.report import BuildReport
from modelpack.select import select
from modelpack.served import scored_output
from modelpack.steps import STEPS, StepJob
from modelpack.steps.int8_search import MIXED
from modelpack.targets import TARGETS
from modelpack.ui import Reporter
from modelpack.worker import run_jobs

TOOLS = ("modelpack", "tensorflow", "keras", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx",
         "onnxruntime", "ai-edge-litert", "numpy")
FP32_TOLERANCE = 1e-4
MB = 1_000_000
TREE_INFO = "modelpack-tree.json"


def host_id() -> str:
    """This machine for measurement caching: CPU model, cores, Python."""
    import platform

    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{platform.machine()}|{cpu}|{os.cpu_count()}|{platform.python_version()}"


def versions() -> dict[str, str | None]:
    """Versions of every tool whose output could change a step's result (part of cache keys).

    modelpack's own code enters as a hash of its sources, so a changed converter never reuses stale output.
    """
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(f.read_bytes())
    out: dict[str, str | None] = {"modelpack-code": h.hexdigest()[:16]}
    for name in TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@dataclass
class BuildContext:
    """What targets see: the recipe, the model, the selected variant and where things are."""

    recipe: Recipe
    recipe_path: Path
    model: ModelFile
    info: dict
    samples: Samples
    work: Path
    report: BuildReport
    variant_files: dict[str, Path] = field(default_factory=dict)
    reporter: Reporter = field(default_factory=Reporter)
    cache: Cache | None = None
    versions_key: str = ""
    built: dict = field(default_factory=dict)  # what earlier targets of this build produced, by kind
    split_files: dict[int, Path] = field(default_factory=dict)  # part number -> converted part in the output
    split_outputs: Path | None = None  # the verified chain's outputs on the evaluation samples
    options: dict = field(default_factory=dict)  # command-line switches targets honour (images)

    @property
    def selected_file(self) -> Path:
        """The selected variant's model file; targets only run when a variant was selected."""
        path = self.variant_files.get(self.report.selected or "")
        if path is None:
            raise TargetError("no variant was selected, so there is no model to package.")
        return path

    def selected_outputs_first(self) -> list[np.ndarray] | None:
        """The selected variant's measured outputs for the first evaluation sample."""
        path = self.work / f"out-{self.report.selected}.npz"
        return [o[:1] for o in _load_outputs(path)] if path.exists() else None

    def cached_tree(self, key: str, make) -> Path:
        """A directory built by `make(dest) -> info`, reused from the cache when an intact copy exists."""
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.reporter.info(f"reused cached tree {key[:12]}")
            return hit
        dest = self.work / "trees" / key
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        info = make(dest)
        (dest / TREE_INFO).write_text(dumps_strict(info, indent=1, sort_keys=True))
        return self.cache.put(key, dest) if self.cache is not None else dest

    def zip_tree(self, source: Path, dest: Path, exclude: tuple[str, ...] = ()) -> Path:
        """write_zip through the cache: the same files (names and bytes) give the same zip, so reuse it."""
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.relative_to(source).as_posix() not in exclude)
        key = cache_key("zip", [(p.relative_to(source).as_posix(), sha256_file(p), os.access(p, os.X_OK)) for p in files])
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(hit / "archive.zip", dest)
            return dest
        write_zip(source, dest, exclude=exclude)
        if self.cache is not None:
            entry = self.work / "zips" / key
            entry.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dest, entry / "archive.zip")
            self.cache.put(key, entry)
        return dest

    @staticmethod
    def read_tree_info(tree: Path) -> dict:
        return json.loads((tree / TREE_INFO).read_text())


class Builder:
    """Runs the stages in order; `build()` and `bench()` are thin wrappers over it."""

    def __init__(self, recipe_path: str | Path, cache_dir: str | Path | None, reporter: Reporter | None = None):
        self.recipe_path = Path(recipe_path)
        self.reporter = reporter or Reporter()
        self.recipe = load_recipe(self.recipe_path)
        self.cache = Cache(Path(cache_dir) if cache_dir else Path(), enabled=cache_dir is not None)
        self.versions = versions()
        self.origin = str(self.recipe_path)

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

    # 1. model: detect format by content, refuse unsafe code, record identity
    def load_model(self) -> None:
        self.model = precheck.check_model(self.recipe, self.origin)
        # Data before TensorFlow starts: a bad file or a failing data function is reported in a second.
        self.arrays = precheck.check_data(self.recipe, self.origin, call_functions=True)

    # 2. inspect in the worker: inputs, outputs, parameters
    def inspect(self) -> None:
        res = self._steps([("inspect", "inspect", {}, None)])["inspect"]
        if not res["ok"] and res["error"].startswith("UnservableInputError: "):
            raise InputError(f"{self.model.path}: {res['error'].removeprefix('UnservableInputError: ')}")
        if not res["ok"]:
            raise InputError(
                f"{self.model.path}: the model could not be loaded ({res['error']}). "
                "Check that it was saved with model.save() by a compatible Keras, or trust its code if it has custom layers."
            )
        self.info = json.loads((Path(res["dir"]) / "info.json").read_text())
        self.scored = scored_output(self.recipe.task_output, self.info["outputs"], self.origin)
        if self.recipe.optimize.split is not None and len(self.info["outputs"]) > 1:
            raise InputError(
                f"{self.origin}: optimize.split cuts a model into a chain where each part hands one tensor to the "
                f"next, but this model has {len(self.info['outputs'])} outputs "
                f"({', '.join(o['name'] for o in self.info['outputs'])}); splitting supports single-output models "
                "only. Remove optimize.split (and any lambda-split target).")

    # 3. data: seeded splits, checked against the model inputs
    def prepare_data(self) -> None:
        specs = [TensorSpec.from_json(t) for t in self.info["inputs"]]
        self.samples = prepare(self.recipe.data, specs, self.origin, self.recipe.task, self.arrays)
        self.eval_npz = self.samples.save(self.work / "eval.npz", "eval")
        self.calib_npz = self.samples.save(self.work / "calibration.npz", "calibration")
        self.data_sha = {"evaluation": _npz_digest(self.eval_npz), "calibration": _npz_digest(self.calib_npz)}
        if self.recipe.optimize.prune is not None:
            if self.samples.train_x is None or self.samples.train_y is None:
                raise InputError(
                    f"{self.origin}: optimize.prune fine-tunes the model, which needs labelled training samples: "
                    "set data.train (arrays) or leave samples over after data.evaluation and data.calibration."
                )
            self.train_npz = self.samples.save(self.work / "train.npz", "train")
            self.data_sha["training"] = _npz_digest(self.train_npz)
        self.baseline_dir = Path(self._steps([("baseline", "baseline", {}, None)])["baseline"]["dir"])
        self.data_sha["baseline"] = _npz_digest(self.baseline_dir / "outputs.npz")

    # 4a. pruning (optional): its output becomes the source of every variant
    def prune(self) -> None:
        self.source = self.keras3_source()
        self.prune_details: dict | None = None
        if self.recipe.optimize.prune is None:
            return
        res = self._steps([("prune", "prune", STEPS.get("prune")().options(self.recipe), None)])["prune"]
        if not res["ok"]:
            if res["error"].startswith("PruneError: "):
                raise InputError(f"{self.origin}: optimize.prune: {res['error'].removeprefix('PruneError: ')}")
            raise StepFailedError(f"pruning failed: {res['error']}")
        self.prune_details = res["details"]
        self.source = detect(Path(res["dir"]) / "model.keras")
        # The pruned model's own outputs: what its float32 conversions must reproduce.
        out = self._steps([("source-baseline", "baseline", {}, None)])["source-baseline"]
        if not out["ok"]:
            raise StepFailedError(f"running the pruned model failed: {out['error']}")
        self.source_baseline_dir = Path(out["dir"])

    # 4a'. tf-keras models: a Keras 3 copy with the same outputs is the source, so Keras-3-only paths take them too
    def keras3_source(self) -> ModelFile:
        self.port_note: str | None = None
        if self.model.format not in ("tf-keras", "tf-keras-h5"):
            return self.model
        res = self._steps([("keras3-port", "keras3-port", {}, None, {"source": self.model})])["keras3-port"]
        if res["ok"]:
            self.port_note = (f"tf-keras model: variants are converted from its Keras 3 copy (outputs within "
                              f"{res['details']['max_abs_err']:.1e} on the evaluation samples).")
            return detect(Path(res["dir"]) / "model.keras")
        self.port_note = f"tf-keras model, used as it is: {res['error'].removeprefix('PortError: ')}."
        return self.model

    # 4b. variants: every requested converter, isolated, cached
    def convert(self) -> dict[str, dict]:
        wanted = list(self.recipe.optimize.variants)
        plan: list[str] = []
        for name in wanted:
            dep = STEPS.get(name).REQUIRES
            if dep and dep not in plan:
                plan.append(dep)
            if name not in plan:
                plan.append(name)
        jobs = [(n, n, STEPS.get(n)().options(self.recipe), STEPS.get(n).REQUIRES) for n in plan]
        self.converted = self._steps(jobs)
        return {n: self.converted[n] for n in wanted}

    def _steps(self, plan: list[tuple]) -> dict[str, dict]:
        """Run (label, step, options, dependency[, extra]) jobs through the cache and the worker.

        `extra` may give another "source" (ModelFile) and more or other "data" files (split name -> path)."""
        done: dict[str, dict] = {}
        keys: dict[str, str] = {}
        pending: list[tuple[str, str, StepJob]] = []
        for label, step_name, options, dep, *rest in plan:
            extra = rest[0] if rest else {}
            step = STEPS.get(step_name)
            data = {}
            if step.USES_CALIBRATION:
                data["calibration"] = str(self.calib_npz)
            if step_name == "baseline" or step.USES_EVALUATION:
                data["evaluation"] = str(self.eval_npz)
            if step.USES_EVALUATION:
                data["baseline"] = str(self.baseline_dir / "outputs.npz")
            if step_name == "prune":
                data["training"] = str(self.train_npz)
            data.update(extra.get("data", {}))
            source = extra.get("source") or (self.model if label in ("inspect", "baseline", "prune") else self.source)
            digests = {k: _digest(Path(v)) if k in extra.get("data", {}) else self.data_sha[k] for k, v in data.items()}
            key = cache_key(step_name, source.sha256, options, self.versions, digests, keys.get(dep or ""))
            keys[label] = key
            hit = self.cache.get(key)
            if hit is not None:
                done[label] = {**json.loads((hit / "result.json").read_text()), "dir": str(hit), "cached": True}
                continue
            out = self.work / "steps" / label
            shutil.rmtree(out, ignore_errors=True)
            dep_dir = done.get(dep, {}).get("dir") if dep else None
            if dep and dep_dir is None:
                dep_dir = str(self.work / "steps" / dep)
            job = StepJob(step_name, str(source.path), source.format, str(out), options,
                          self.recipe.model.trust_code, self.recipe.model.custom_objects, dep_dir, data)
            pending.append((label, key, job))
        if pending:
            with self.reporter.step(f"running {', '.join(p[0] for p in pending)}"):
                results = run_jobs([j for _, _, j in pending], self.work / "worker.log")
            for label, key, job in pending:
                res = results[job.out_dir]
                if res["ok"]:
                    (job.out / "result.json").write_text(dumps_strict(res))
                    (job.out / ".started").unlink(missing_ok=True)
                    entry = self.cache.put(key, job.out)
                    done[label] = {**res, "dir": str(entry), "cached": False}
                else:
                    done[label] = {**res, "dir": None, "cached": False}
        cached = [entry[0] for entry in plan if done[entry[0]].get("cached")]
        if cached:
            self.reporter.info(f"reused cached {', '.join(cached)}")
        return done

    # 5. measure: sizes, accuracy, fidelity, warm latency, cold start, peak memory
    def measure(self, results: dict[str, dict]) -> list[dict]:
        baseline = _load_outputs(self.baseline_dir / "outputs.npz")
        source = baseline if self.prune_details is None else _load_outputs(self.source_baseline_dir / "outputs.npz")
        variants = [self._measure_one("keras", None, {"ok": True}, baseline, baseline)]
        for name, res in results.items():
            variants.append(self._measure_one(name, STEPS.get(name), res, baseline, source))
        base_acc = variants[0].get("accuracy")
        for v in variants:
            if v.get("accuracy") is not None and base_acc is not None:
                v["accuracy_drop"] = base_acc - v["accuracy"]
        return variants

    def _measure_one(self, name: str, step, res: dict, baseline: list[np.ndarray], source: list[np.ndarray]) -> dict:
        """Measure one variant; fidelity is against the float baseline, the fp32 check against its source."""
        fmt = "keras" if step is None else step.FORMAT
        record = {
            "name": name, "format": fmt, "quantization": "none" if step is None else step.QUANTIZATION,
            "pruned": step is not None and self.prune_details is not None, "status": "ok", "error": None, "cached": bool(res.get("cached")),
            "size_bytes": None, "zipped_bytes": None, "accuracy": None, "accuracy_drop": None,
            "fidelity": {"agreement": None, "max_abs_err": None, "mean_abs_err": None},
            "latency_ms": None, "cold_start_ms": None, "peak_rss_mb": None,
            "details": res.get("details") or {}, "budgets": [], "budgets_passed": False,
        }
        if not res.get("ok"):
            record.update(status="failed", error=res.get("error"))
            return record
        path = self.model.path if step is None else Path(res["dir"]) / step.FILE
        ms = self.recipe.measure
        spec = self._probe_spec(path, fmt, out=str(self.work / f"out-{name}.npz"))
        try:
            warm, colds, outputs, zipped, reused = self._measured(name, Path(path), spec, ms.cold_start.runs)
        except StepFailedError as exc:
            record.update(status="failed", error=str(exc))
            return record
        record["measurement"] = "reused from cache" if reused else "measured"
        task, scored = self.recipe.task, self.scored
        cold = metrics.median_of(colds)
        record.update(
            size_bytes=tree_bytes(Path(path)),
            zipped_bytes=zipped,
            accuracy=metrics.accuracy(outputs, self.samples.eval_y, task, scored=scored),
            fidelity=metrics.fidelity(outputs, baseline, task, scored, [o["name"] for o in self.info["outputs"]]),
            latency_ms=metrics.latency_stats(warm["latency_ms"]),
            cold_start_ms={"p50": cold["total_ms"], "import": cold["import_ms"], "load": cold["load_ms"],
                           "first_inference": cold["first_ms"], "runs": len(colds)},
            peak_rss_mb=max(c["peak_rss_mb"] for c in colds),
        )
        if ms.top_k and task == "classification":
            record["accuracy_top_k"] = {"k": ms.top_k, "value": metrics.accuracy(outputs, self.samples.eval_y, task,
                                                                                    ms.top_k, scored)}
        if task == "regression" and self.samples.eval_y is not None:
            record["regression"] = metrics.regression_errors(outputs, self.samples.eval_y, scored)
        if step is not None and step.QUANTIZATION == "none":
            worst = max(float(np.max(np.abs(o - b) / (1 + np.abs(b)))) for o, b in zip(outputs, source))
            if not worst <= FP32_TOLERANCE:  # NaN fails too
                record.update(status="failed", error=f"float32 conversion differs from its Keras source by {worst:.2e} "
                                                     f"(tolerance {FP32_TOLERANCE:g})")
        record["file"] = str(path)
        return record

    def _measured(self, name: str, path: Path, spec: dict, cold_runs: int):
        """Warm and cold probes and the zipped size of one model file, cached under the file's bytes, the
        probe options, the tool versions and this machine (timings from another machine are never reused).
        The size is kept too: deflating a large model again costs more than the rest of a cached build."""
        options = {k: v for k, v in spec.items() if k not in ("model", "data", "out")}
        digest = self.model.sha256 if path == self.model.path else sha256_file(path)
        key = cache_key("measure", digest, options, cold_runs, self.data_sha["evaluation"], self.versions, host_id())
        hit = self.cache.get(key)
        if hit is not None:
            data = json.loads((hit / "measure.json").read_text())
            self.reporter.info(f"reused cached measurements of {name}")
            shutil.copyfile(hit / "outputs.npz", spec["out"])  # targets compare their handlers with these
            return data["warm"], data["colds"], _load_outputs(hit / "outputs.npz"), data["zipped_bytes"], True
        with self.reporter.step(f"measuring {name}"):
            warm = run_probe("warm", spec, self.work)
            colds = [run_probe("cold", spec, self.work) for _ in range(cold_runs)]
        entry = self.work / "measure" / name
        shutil.rmtree(entry, ignore_errors=True)
        entry.mkdir(parents=True)
        zipped = zipped_size(path)
        (entry / "measure.json").write_text(dumps_strict({"warm": warm, "colds": colds, "zipped_bytes": zipped}))
        shutil.copyfile(spec["out"], entry / "outputs.npz")
        self.cache.put(key, entry)
        return warm, colds, _load_outputs(Path(spec["out"])), zipped, False

    def _probe_spec(self, path: Path, fmt: str, out: str | None, **overrides) -> dict:
        ms = self.recipe.measure
        return {
            "model": str(path), "kind": fmt, "format": self.model.format, "data": str(self.eval_npz),
            "inputs": [t["name"] for t in self.info["inputs"]], "threads": ms.latency.threads,
            "warmup": ms.latency.warmup, "runs": ms.latency.runs, "batch": ms.latency.batch,
            "eval_batch": 64 if fmt == "keras" else 1, "out": out,
            "trust_code": self.recipe.model.trust_code, "custom_objects": self.recipe.model.custom_objects,
            **overrides,
        }

    # 6a. accuracy-aware INT8: a mixed variant for each INT8 variant that misses an accuracy budget
    def search_int8(self, variants: list[dict]) -> list[dict]:
        settings = self.recipe.optimize.search
        accuracy_budgets = {n for n in ACCURACY_BUDGETS if getattr(self.recipe.budgets, n) is not None}
        records = []
        for base, name in MIXED.items():
            plain = next((v for v in variants if v["name"] == base and v["status"] == "ok"), None)
            if plain is None:
                continue
            missed = [b["name"] for b in plain["budgets"] if b["name"] in accuracy_budgets and not b["passed"]]
            record = {"variant": base, "result": None, "passed": None, "trials": [plain_trial(plain)]}
            if not accuracy_budgets:
                record["outcome"] = "not needed: the recipe sets no accuracy budget (max_accuracy_drop, min_agreement)"
            elif not missed:
                record.update(passed=True, outcome=f"ended at once: plain {base} already meets "
                                                   f"{' and '.join(sorted(accuracy_budgets))}")
            elif not settings.enabled:
                record["outcome"] = f"off (optimize.search.enabled: false); {base} misses {', '.join(missed)}"
            else:
                step = STEPS.get(name)
                options = {**step().options(self.recipe), "inputs": [t["name"] for t in self.info["inputs"]],
                           "scored": self.scored}
                res = self._steps([(name, name, options, step.REQUIRES)])[name]
                if not res["ok"]:
                    record["outcome"] = f"the search failed: {res['error']}"
                else:
                    d = res["details"]
                    floats = len(d["float_nodes"])
                    record.update(result=name, passed=d["passed"], trials=d["trials"], setting=d["setting"],
                                  float_nodes=d["float_nodes"], sensitivity=d["sensitivity"], stopped=d["stopped"])
                    how = f"{floats} operation(s) kept in float" if floats else "calibration settings only"
                    record["outcome"] = (
                        f"{base} missed {', '.join(missed)}; trial {d['chosen_trial']} meets the accuracy budgets "
                        f"with {how} ({len(d['trials'])} trial(s))" if d["passed"] else
                        f"{base} missed {', '.join(missed)}; no trial met the accuracy budgets in {len(d['trials'])} "
                        f"trial(s) ({d['stopped'] or 'search space exhausted'}); {name} is the closest trial")
                    source = self.baseline_outputs_for_fidelity()
                    mixed = self._measure_one(name, step, res, _load_outputs(self.baseline_dir / "outputs.npz"), source)
                    base_acc = variants[0].get("accuracy")
                    if mixed.get("accuracy") is not None and base_acc is not None:
                        mixed["accuracy_drop"] = base_acc - mixed["accuracy"]
                    mixed["details"] = {k: d[k] for k in ("base_variant", "setting", "float_nodes", "passed")}
                    mixed["budgets"] = budget_checks.check(mixed, self.recipe.budgets)
                    variants.append(mixed)
            records.append(record)
        return records

    # 6b. layer splitting: the selected variant, made of parts cut at single-tensor points
    def split(self, report: BuildReport) -> dict | None:
        spec = self.recipe.optimize.split
        if spec is None:
            return None
        if report.selected is None:
            return {"status": "skipped", "reason": "no variant meets every budget, so there is nothing to split"}
        res = self._steps([("cuts", "cuts", {}, None)])["cuts"]
        if not res["ok"]:
            raise self._split_error(res)
        points = json.loads((Path(res["dir"]) / "cuts.json").read_text())
        at = splitplan.choose(points, spec, self.origin)
        res = self._steps([("split", "split", {"at": at}, None)])["split"]
        if not res["ok"]:
            raise self._split_error(res)
        folder, details = Path(res["dir"]), res["details"]
        variant = next((base for base, mixed in MIXED.items() if mixed == report.selected), report.selected)
        step = STEPS.get(variant)
        plan = []
        for part in details["parts"]:
            k = part["part"]
            extra = {"source": detect(folder / part["file"]),
                     "data": {"calibration": str(folder / f"part{k}-calibration.npz")}}
            if step.REQUIRES:
                plan.append((f"part{k}/{step.REQUIRES}", step.REQUIRES, STEPS.get(step.REQUIRES)().options(self.recipe),
                             None, extra))
            plan.append((f"part{k}/{variant}", variant, step().options(self.recipe),
                         f"part{k}/{step.REQUIRES}" if step.REQUIRES else None, extra))
        converted = self._steps(plan)
        failed = [label for label, r in converted.items() if not r["ok"]]
        if failed:
            raise StepFailedError(f"converting split part {failed[0]} failed: {converted[failed[0]]['error']}")
        files = {f"part{p['part']}": str(Path(converted[f"part{p['part']}/{variant}"]["dir"]) / step.FILE)
                 for p in details["parts"]}
        verify = self._steps([("split-verify", "split-verify",
                               {"task": self.recipe.task, "parts": [p["input"] for p in details["parts"]]}, None,
                               {"data": {**files, "unsplit": str(self.work / f"out-{report.selected}.npz")}})])["split-verify"]
        if not verify["ok"]:
            raise StepFailedError(f"running the split parts in a chain failed: {verify['error']}")
        self.split_outputs = Path(verify["dir"]) / "outputs.npz"
        chained = _load_outputs(self.split_outputs)
        payloads = verify["details"]["payload_json_bytes"]
        parts = []
        for p in details["parts"]:
            path = Path(files[f"part{p['part']}"])
            parts.append({**p, "file": path.name, "path": str(path), "variant": variant, "size_bytes": path.stat().st_size,
                          "zipped_bytes": zipped_size(path), "sha256": sha256_file(path),
                          "request_json_bytes": payloads[p["part"] - 1] or None})
        cut_info = {c["after"]: c for c in points}
        return {
            "status": "ok", "at": at, "variant": variant, "parts": parts,
            "cuts": [{"after": a, "tensor_shape": cut_info[a]["tensor_shape"], "tensor_bytes": cut_info[a]["tensor_bytes"],
                      "request_json_bytes": payloads[i + 1]} for i, a in enumerate(at)],
            "keras_chain_max_abs_err": details["keras_chain_max_abs_err"],
            "keras_chain_ok": details["keras_chain_max_abs_err"] <= SPLIT_FP32_TOLERANCE,
            "vs_unsplit": verify["details"]["vs_unsplit"],
            "accuracy": metrics.accuracy(chained, self.samples.eval_y, self.recipe.task, scored=self.scored),
            "layouts": split_layouts(parts, [payloads[i + 1] for i in range(len(at))]),
            "note": (f"{report.selected} is a searched variant; its parts use plain {variant}"
                     if variant != report.selected else ""),
        }

    def _split_error(self, res: dict) -> Exception:
        if res["error"].startswith("SplitError: "):
            return InputError(f"{self.origin}: optimize.split: {res['error'].removeprefix('SplitError: ')}.")
        return StepFailedError(f"splitting failed: {res['error']}")

    def baseline_outputs_for_fidelity(self) -> list[np.ndarray]:
        folder = self.baseline_dir if self.prune_details is None else self.source_baseline_dir
        return _load_outputs(folder / "outputs.npz")

    # 7. memory sizes: latency and cost of the winner at each Lambda memory size
    def tune_memory(self, report: BuildReport) -> dict | None:
        tuning = self.recipe.measure.memory
        chosen = report.variant(report.selected or "")
        if tuning is None or chosen is None:
            return None
        key = cache_key("memory", sha256_file(Path(chosen["file"])), tuning.model_dump(), chosen.get("peak_rss_mb"),
                        self.recipe.measure.latency.model_dump(), self.versions, host_id())
        if (hit := self.cache.get(key)) is not None:
            self.reporter.info("reused cached memory-size measurements")
            return json.loads((hit / "memory.json").read_text())
        rows = []
        for mb in tuning.sizes_mb:
            share = memory.cpu_share(mb)
            threads = memory.threads_for(mb)
            spec = self._probe_spec(Path(chosen["file"]), chosen["format"], None, threads=threads, runs=tuning.runs)
            control = memory.duty_cycle(share) if share < 1 else None
            with self.reporter.step(f"memory {mb} MB ({share:.2f} vCPU)"):
                warm = run_probe("warm", spec, self.work, controller=control)
                colds = [run_probe("cold", spec, self.work, controller=control) for _ in range(tuning.cold_runs)]
            duration = memory.trimmed_mean(warm["latency_ms"])
            rows.append({
                "memory_mb": mb, "cpu_share": round(share, 3), "threads": threads, "duty_cycled": share < 1,
                "duration_ms": duration, "latency_ms": metrics.latency_stats(warm["latency_ms"]),
                "cold_start_ms": metrics.median_of(colds)["total_ms"],
                "possible": (chosen.get("peak_rss_mb") or 0) + tuning.headroom_mb <= mb,
                "cost_per_million": {arch: memory.cost_per_million(duration, mb, arch, tuning.prices)
                                     for arch in ("x86_64", "arm64")},
            })
        result = {"method": memory.METHOD, "variant": chosen["name"], "rows": rows,
                  "recommendations": memory.recommend(rows, tuning.balanced_weight),
                  "balanced_weight": tuning.balanced_weight, "headroom_mb": tuning.headroom_mb}
        entry = self.work / "memory-tuning"
        entry.mkdir(exist_ok=True)
        (entry / "memory.json").write_text(dumps_strict(result))
        self.cache.put(key, entry)
        return result

    # 6. budgets and selection
    def judge(self, variants: list[dict]) -> tuple[str | None, str, str | None, list[dict]]:
        for v in variants:
            v["budgets"] = budget_checks.check(v, self.recipe.budgets)
            v["budgets_passed"] = v["status"] == "ok" and all(b["passed"] for b in v["budgets"])
        chosen, reason, closest = select(variants, self.recipe.select)
        named = chosen or closest
        rows = next((v["budgets"] for v in variants if v["name"] == named), []) if named else []
        return chosen, reason, closest, rows

    def report(self) -> BuildReport:
        d = self.recipe.data
        if self.samples.synthetic:
            desc = f"synthetic random inputs ({len(self.samples.eval_x[0])} samples): no accuracy, fidelity and latency only"
        else:
            desc = (f"{len(self.samples.eval_x[0])} evaluation and {len(self.samples.calib_x[0])} calibration samples "
                    f"from {_rel(Path(d.path), self.recipe_path) if d.path and os.path.exists(d.path) else d.path}"
                    f" (labels: {d.labels or 'none'})")
        ms = self.recipe.measure
        return BuildReport(
            modelpack_version=self.versions["modelpack"] or "0",
            recipe=_rel(self.recipe_path.resolve(), self.recipe_path),
            name=self.recipe.name,
            model={"path": _rel(self.model.path, self.recipe_path), "sha256": self.model.sha256,
                   "format": self.model.format, "params": self.info["params"], "size_bytes": self.model.size_bytes,
                   "inputs": self.info["inputs"], "outputs": self.info["outputs"]},
            data={"description": desc, "synthetic": self.samples.synthetic,
                  "evaluation": len(self.samples.eval_x[0]), "calibration": len(self.samples.calib_x[0])},
            measure={"batch": ms.latency.batch, "threads": ms.latency.threads, "warmup": ms.latency.warmup,
                     "runs": ms.latency.runs, "cold_runs": ms.cold_start.runs},
        )

    def run(self, work: Path) -> BuildReport:
        """Stages 1–6: everything except writing artifacts."""
        self.work = work
        self.load_model()
        self.inspect()
        self.prepare_data()
        self.prune()
        converted = self.convert()
        variants = self.measure(converted)
        report = self.report()
        report.variants = variants
        if self.port_note:
            report.notes.append(self.port_note)
        self.judge(variants)
        report.search = self.search_int8(variants)
        report.selected, report.selection_reason, report.closest, report.budgets = self.judge(variants)
        if self.prune_details is not None:
            report.prune = self.prune_details
            report.notes.append(
                "Pruning zeroes weights but keeps them in the file: it shrinks zipped size, not raw size."
            )
        if self.samples.synthetic:
            report.notes.append("Data is synthetic: accuracy is not measured; fidelity and latency are.")
        report.memory = self.tune_memory(report)
        report.split = self.split(report)
        return report


ACCURACY_BUDGETS = ("max_accuracy_drop", "min_agreement")
SPLIT_FP32_TOLERANCE = 1e-5


def split_layouts(parts: list[dict], payloads: list[int]) -> dict:
    """Which ways of deploying the parts fit the platform limits, and why (from model sizes and measured
    request sizes; the split targets refine this with the real package sizes)."""
    models = sum(p["size_bytes"] for p in parts)
    biggest = max(payloads, default=0)
    sfn, sync = limits.STEP_FUNCTIONS_PAYLOAD_BYTES, limits.LAMBDA_SYNC_PAYLOAD_BYTES
    return {
        "single-function": {
            "possible": models <= limits.LAMBDA_UNZIPPED_TOTAL_BYTES,
            "why": f"the parts hold {models / MB:.3f} MB of model; a function and its layers may unzip to "
                   f"{limits.LAMBDA_UNZIPPED_TOTAL_BYTES / limits.MIB:.0f} MiB (the runtime layer comes on top)"},
        "step-functions": {
            "possible": biggest <= sfn,
            "why": f"the largest request between parts is {biggest / 1e3:.1f} KB as JSON; Step Functions passes at "
                   f"most {sfn / 1024:.0f} KiB between states"},
        "function-per-part-sync": {
            "possible": biggest <= sync,
            "why": f"the largest request between parts is {biggest / 1e3:.1f} KB; a synchronous Lambda invocation "
                   f"takes at most {sync / 1e6:.0f} MB"},
    }


def plain_trial(variant: dict) -> dict:
    """The plain INT8 variant as the search's trial 0, from its full measurement."""
    return {"trial": 0, "float_nodes": [], "accuracy": variant.get("accuracy"), "accuracy_drop": variant.get("accuracy_drop"),
            "agreement": (variant.get("fidelity") or {}).get("agreement"), "size_bytes": variant.get("size_bytes"),
            "p50_ms": (variant.get("latency_ms") or {}).get("p50"), "passed": all(b["passed"] for b in variant.get("budgets", []) if b["name"] in ACCURACY_BUDGETS),
            "measured": "full measurement"}


def _rel(path: Path, recipe_path: Path) -> str:
    try:
        return Path(os.path.relpath(Path(path).resolve(), recipe_path.resolve().parent)).as_posix()
    except ValueError:
        return Path(path).name


def _npz_digest(path: Path) -> str:
    h = hashlib.sha256()
    with np.load(path) as npz:
        for k in sorted(npz.files):
            h.update(k.encode())
            h.update(np.ascontiguousarray(npz[k]).tobytes())
    return h.hexdigest()


def _digest(path: Path) -> str:
    return _npz_digest(path) if path.suffix == ".npz" else sha256_file(path)


def _load_outputs(path: Path) -> list[np.ndarray]:
    with np.load(path) as npz:
        return [npz[f"out_{i}"] for i in range(len(npz.files))]


def bench(recipe_path: str | Path, cache_dir: str | Path | None = ".modelpack-cache",
          reporter: Reporter | None = None) -> BuildReport:
    """Convert and measure only; nothing is written but the cache."""
    builder = Builder(recipe_path, cache_dir, reporter)
    with tempfile.TemporaryDirectory(prefix="modelpack-") as work:
        return builder.run(Path(work))


def build(recipe_path: str | Path, out: str | Path | None = None, cache_dir: str | Path | None = ".modelpack-cache",
          reporter: Reporter | None = None, images: bool = False) -> BuildReport:
    """Run the whole build and write the output directory atomically; return the report.

    The report says whether every budget passed; the output is written either way.
    """
    builder = Builder(recipe_path, cache_dir, reporter)
    out_dir = Path(out) if out else Path("dist") / builder.recipe.name
    check_output_dir(out_dir, given=out is not None, **builder.protected_paths())
    try:
        return _build(builder, out_dir, images)
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        where = exc.filename or out_dir
        raise ModelpackError(
            f"cannot write {where}: {exc.strerror}. Free some space or choose another --out / --cache-dir; "
            f"the previous contents of {out_dir} are unchanged.") from None


DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _build(builder: Builder, out_dir: Path, images: bool) -> BuildReport:
    with tempfile.TemporaryDirectory(prefix="modelpack-") as work_s, atomic_output_dir(out_dir) as staging:
        work = Path(work_s)
        report = builder.run(work)
        ctx = BuildContext(builder.recipe, builder.recipe_path, builder.model, builder.info, builder.samples,
                           work, report, reporter=builder.reporter, cache=builder.cache if builder.cache.enabled else None,
                           versions_key=cache_key(builder.versions), options={"images": images})
        for v in report.variants:
            if v["status"] == "ok" and v["name"] != "keras":
                dest = staging / "variants" / f"{v['name']}{Path(v['file']).suffix}"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(v["file"], dest)
                ctx.variant_files[v["name"]] = dest
                v["path"] = dest.relative_to(staging).as_posix()
            v.pop("file", None)
        if report.split and report.split.get("status") == "ok":
            ctx.split_outputs = builder.split_outputs
            for part in report.split["parts"]:
                source = Path(part.pop("path"))
                dest = staging / "variants" / "split" / f"part{part['part']}{source.suffix}"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
                ctx.split_files[part["part"]] = dest
                part["file"] = dest.relative_to(staging).as_posix()
        order = TARGETS.names()  # layers before the functions that use them
        targets = sorted(builder.recipe.targets, key=lambda t: order.index(t.kind))
        if targets and report.selected is None:
            report.notes.append(f"Targets not built ({', '.join(t.identity() for t in targets)}): no variant "
                                "meets every budget, so there is nothing to package.")
            targets = []
        for spec in targets:
            target = TARGETS.get(spec.kind)(spec)
            with builder.reporter.step(f"target {spec.identity()}"):
                try:
                    artifacts = target.build(ctx, staging)
                except TargetError as exc:
                    prefix = f"{spec.identity()}: "
                    raise TargetError(exc.message if exc.message.startswith(prefix) else prefix + exc.message) from None
                for art in artifacts:
                    path = staging / art.path
                    report.artifacts.append({"target": art.target, "path": art.path, "sha256": sha256_file(path),
                                             "size_bytes": path.stat().st_size, "unzipped_bytes": art.unzipped_bytes,
                                             **({"details": art.details} if art.details else {})})
        report.write(staging, builder.recipe.budgets.model_dump(), ctx.cache)
        write_manifest(staging)
        normalize_modes(staging)  # the staging folder itself is a private temporary one
    return report
