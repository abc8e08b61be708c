"""The form a selected ONNX variant ships in: as converted, optimised offline and saved, or in ONNX Runtime's own
format (`.ort`, used in place from its bytes), whichever the target's own runtime opens fastest.

Both other forms are written by the layer's onnxruntime (an `.ort` file or a graph with contrib operators is read
only by a runtime at least as new as the one that wrote it) at the extended optimisation level, which is portable
across CPUs; the handler still applies the hardware-specific level when it opens any form. Each form's load (session
and first inference) is timed in fresh processes of the layer's interpreter with bytecode writing disabled, as a
cold start runs, alternated so machine load hits them alike; a form replaces the converted file only when its
median is at least LOAD_GAIN faster. The choice is kept in the build cache with its timings, so a rebuild ships the
same bytes. The handler check then compares the shipped form's answers with the variant's, as for any package.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
from pathlib import Path

from modelpack.files.cache import cache_key
from modelpack.files.output import sha256_file
from modelpack.host.childproc import read, scrubbed_env, write_source
from modelpack.targets.handler_check import first_error_line

LOAD_GAIN = 0.10  # a form must open at least this much faster than the converted file to replace it
RUNS = 5
MARKER = "MODELPACK_ONNX_FORM"
FORMS = {"onnx": "model.onnx", "optimized": "model.opt.onnx", "ort": "model.ort"}

_CONVERT = r"""
import sys, onnxruntime as ort
source, optimized, ort_file = sys.argv[1:4]
for target, fmt in ((optimized, "ONNX"), (ort_file, "ORT")):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = target
    options.add_session_config_entry("session.save_model_format", fmt)
    ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
"""

_TIME = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import model_runtime
t1 = time.perf_counter()
with np.load(sys.argv[2], allow_pickle=False) as npz:
    named = {name: npz[name] for name in npz.files}
model = model_runtime.load(sys.argv[1])
model.predict(named)
t2 = time.perf_counter()
""" + write_source(MARKER, "{'load_ms': (t2 - t1) * 1e3}") + "\n"


def _run(interpreter: str, env: dict, code: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([interpreter, "-S", "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(first_error_line(proc.stderr)[:300])
    return proc


def _choose(source: Path, dest: Path, layer_python: Path, interpreter: str, sample: dict) -> dict:
    """Write the three forms into `dest`, time them on the evaluation sample, keep the fastest as dest/<its
    file>; return the record."""
    from modelpack.targets.handler_files import template_dir
    from modelpack.targets.snapstart import write_sample

    shutil.copyfile(source, dest / FORMS["onnx"])
    inputs = write_sample(dest, sample)
    env = scrubbed_env([str(template_dir("common")), str(layer_python)])
    _run(interpreter, env, _CONVERT, [str(dest / FORMS["onnx"]), str(dest / FORMS["optimized"]),
                                      str(dest / FORMS["ort"])], dest)
    times: dict[str, list[float]] = {form: [] for form in FORMS}
    for _ in range(RUNS):
        for form, name in FORMS.items():
            proc = _run(interpreter, env, _TIME, [str(dest / name), str(inputs)], dest)
            times[form].append(read(proc.stdout, MARKER)["load_ms"])
    medians = {form: statistics.median(values) for form, values in times.items()}
    best = min(medians, key=medians.get)
    if medians[best] > (1 - LOAD_GAIN) * medians["onnx"]:
        best = "onnx"
    inputs.unlink()
    for form, name in FORMS.items():
        if form != best:
            (dest / name).unlink()
    return {"form": best, "file": FORMS[best], "load_ms_median": {k: round(v, 3) for k, v in medians.items()},
            "runs": RUNS}


def fastest(ctx, source: Path, layer) -> tuple[Path, dict | None]:
    """The file to ship for the ONNX model `source` on `layer` (a BuiltLayer whose runtime runs here), and the
    record of the choice; the model itself, and None, when there is nothing to choose (not ONNX, or a layer
    this machine cannot run)."""
    if source.suffix != ".onnx" or layer is None or not layer.can_run or layer.runtime.name != "onnxruntime":
        return source, None
    from modelpack.targets.handler_check import sample

    versions = sorted((layer.info.get("installed") or {}).items())
    key = cache_key("onnx-form", "v1", sha256_file(source), versions, layer.spec.python, layer.spec.arch,
                    LOAD_GAIN, RUNS)
    try:
        tree = ctx.cached_tree(key, lambda dest: _choose(source, dest, layer.dir / "python", layer.interpreter,
                                                         sample(ctx)))
    except RuntimeError as exc:  # the runtime could not convert this graph: ship it as converted
        ctx.report.notes.append(f"onnx form: the layer's onnxruntime could not save this model optimised ({exc}); "
                                "it ships as converted.")
        return source, None
    record = ctx.read_tree_info(tree)
    return tree / record["file"], record
