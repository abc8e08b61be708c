"""Cold start taken apart, and the physical floor it is measured against.

Every figure comes from fresh processes with bytecode writing disabled, as on Lambda (task root and /opt are
read-only). Each process is timed on the system's monotonic clock from the moment its parent starts it, so the
interpreter's own start is one of the parts:

- interpreter: process start until the first line of the script runs (and `python -S -c pass` alone, whole);
- numpy: `import numpy`;
- runtime: `import onnxruntime` or `from ai_edge_litert.interpreter import Interpreter`;
- model load: what the handler reports as ModelLoadMs (sha256 check and the runtime opening the file), or
  the floor opening the file;
- first inference: the handler's InferenceMs, or the floor's one call;
- handler code: the rest of the handler's first request (its own modules' import, request checks, the answer).

The floor is the least any handler must do: a script that imports numpy and the runtime, opens the same model
file the way the handler does (the `.ort` form from its bytes, used without a copy), and runs one inference on
the same sample. The request is decoded before either clock starts, as Lambda's runtime does outside the
handler.

    python benchmarks/coldstart.py                      # digits and MobileNetV2 (random weights)
    python benchmarks/coldstart.py --models digits      # digits only

Each model is built with the layer for Lambda's Python (3.12 when this machine has it) and the function, the
zips are extracted as Lambda extracts them, and the handler is compared with the floor on the selected
variant. For the ONNX variants the script also times how long each shipped form (as converted, optimised
offline, `.ort`) takes to open and answer once, in fresh processes of the layer's interpreter. Writes
benchmarks/results/coldstart-<host>.json and prints the tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ENV, ROOT, extract, mobilenet, target_python  # noqa: E402

# The child's clock: CLOCK_MONOTONIC is system-wide on Linux, so the parent's start time means the same there.
_PRELUDE = r"""
import os, sys, time
_main = time.monotonic_ns()
import json
with open(sys.argv[1]) as _f:
    instances = json.load(_f)
_t = [time.monotonic_ns()]
def lap():
    _t.append(time.monotonic_ns())
    return (_t[-1] - _t[-2]) / 1e6
spawned = int(os.environ["BENCH_SPAWNED_NS"])
interpreter = (_main - spawned) / 1e6
"""

_RUNTIME_IMPORT = {
    ".tflite": "from ai_edge_litert.interpreter import Interpreter",
    ".onnx": "import onnxruntime",
    ".ort": "import onnxruntime",
}

HANDLER = _PRELUDE + r"""
import contextlib, io
event = {"instances": instances}
import numpy
numpy_ms = lap()
exec(sys.argv[2]); runtime_ms = lap()
log = io.StringIO()
with contextlib.redirect_stdout(log):
    import handler
    answer = handler.handler(event, None)
rest_ms = lap()
line = next(json.loads(ln) for ln in log.getvalue().splitlines() if '"InferenceMs"' in ln)
load_ms, infer_ms = line["ModelLoadMs"], line["InferenceMs"]
parts = {"interpreter": interpreter, "numpy": numpy_ms, "runtime": runtime_ms, "model_load": load_ms,
         "first_inference": infer_ms, "handler_code": rest_ms - load_ms - infer_ms}
print("RESULT " + json.dumps({"parts": parts, "ok": "predictions" in answer}))
"""

FLOOR = _PRELUDE + r"""
path = sys.argv[3]
import numpy as np
numpy_ms = lap()
exec(sys.argv[2]); runtime_ms = lap()
if path.endswith(".tflite"):
    it = Interpreter(model_path=path, num_threads=1)  # LiteRT maps the file itself
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    def run(x):
        if i["dtype"] != np.float32:
            s, z = i["quantization"]
            x = np.clip(np.round(x / s + z), -128, 127).astype(i["dtype"])
        it.set_tensor(i["index"], x); it.invoke(); return it.get_tensor(o["index"])
else:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    if path.endswith(".ort"):  # from its bytes, not copied again (as the handler opens it)
        with open(path, "rb") as f:
            data = f.read()
        options.add_session_config_entry("session.use_ort_model_bytes_directly", "1")
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    else:
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    def run(x):
        return session.run(None, {name: x})[0]
load_ms = lap()
y = run(np.asarray(instances, dtype=np.float32))
infer_ms = lap()
parts = {"interpreter": interpreter, "numpy": numpy_ms, "runtime": runtime_ms, "model_load": load_ms,
         "first_inference": infer_ms, "handler_code": 0.0}
print("RESULT " + json.dumps({"parts": parts, "ok": bool(np.isfinite(y).all())}))
"""

PARTS = ("interpreter", "numpy", "runtime", "model_load", "first_inference", "handler_code")


def _run(python: str, code: str, args: list[str], env: dict, cwd: str) -> dict:
    env = {**env, "BENCH_SPAWNED_NS": str(time.monotonic_ns())}
    proc = subprocess.run([python, "-S", "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(proc.stderr[-1500:])
    result = json.loads(line[7:])
    if not result["ok"]:
        raise RuntimeError(f"no prediction in a cold start: {result}")
    return result["parts"]


def interpreter_alone(python: str, env: dict, runs: int) -> float:
    """Median wall time of `python -S -c pass`, start to exit."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([python, "-S", "-c", "pass"], env=env, check=True)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def _summary(runs: list[dict]) -> dict:
    totals = [sum(r.values()) for r in runs]
    return {"total": statistics.median(totals), "runs": totals,
            "parts": {p: statistics.median(r[p] for r in runs) for p in PARTS}}


def decompose(python: str, env: dict, task: Path, layer_python: Path, model: Path, sample: Path, runs: int) -> dict:
    """The handler's cold start and the floor's, part by part (medians of `runs` fresh processes each,
    alternated so machine load hits both alike), and their ratio."""
    run_env = {**env, "PYTHONPATH": os.pathsep.join([str(task), str(layer_python)])}
    floor_env = {**env, "PYTHONPATH": str(layer_python)}
    runtime = _RUNTIME_IMPORT[model.suffix]
    handler_runs, floor_runs = [], []
    for _ in range(runs):
        handler_runs.append(_run(python, HANDLER, [str(sample), runtime], run_env, str(task)))
        floor_runs.append(_run(python, FLOOR, [str(sample), runtime, str(model)], floor_env, str(task)))
    handler, floor = _summary(handler_runs), _summary(floor_runs)
    without = handler["total"] - handler["parts"]["interpreter"]
    floor_without = floor["total"] - floor["parts"]["interpreter"]
    return {"handler": handler, "floor": floor, "model_file": model.name,
            "interpreter_alone": interpreter_alone(python, env, runs),
            "ratio_handler_over_floor": handler["total"] / floor["total"],
            "ratio_without_interpreter": without / floor_without}


def table(models: list[dict]) -> list[str]:
    """Markdown rows: every part of each model's cold start, the handler's and the floor's."""
    rows = ["| model | process | total ms | " + " | ".join(PARTS) + " | handler / floor |",
            "|---|---|---|" + "---|" * len(PARTS) + "---|"]
    for r in models:
        cold = r["cold_start_ms"].get("decomposition")
        if not cold:
            continue
        for who in ("handler", "floor"):
            d = cold[who]
            cells = " | ".join(f"{d['parts'][p]:.1f}" for p in PARTS)
            ratio = (f"{cold['ratio_handler_over_floor']:.2f}× ({cold['ratio_without_interpreter']:.2f}× without "
                     "the interpreter)") if who == "handler" else f"`{cold['model_file']}`"
            rows.append(f"| {r['model']} | {who} | {d['total']:.1f} | {cells} | {ratio} |")
    return rows


def form_table(models: list[dict]) -> list[str]:
    """Markdown rows: load and first inference of each ONNX form, and the gain of the fastest over `.onnx`."""
    rows = ["| model | variant | .onnx ms | optimised ms | .ort ms | .onnx / fastest | shipped form |",
            "|---|---|---|---|---|---|---|"]
    for r in models:
        for variant, rec in (r.get("onnx_forms") or {}).items():
            m = rec["load_ms_median"]
            rows.append(f"| {r['model']} | {variant} | {m['onnx']:.1f} | {m['optimized']:.1f} | {m['ort']:.1f} | "
                        f"{m['onnx'] / min(m.values()):.2f}× | {rec['form']} |")
    return rows


def _build(name: str, model: Path, data: Path, work: Path, version: str) -> Path:
    recipe = work / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": name, "model": {"path": str(model)},
        "data": {"path": str(data), "evaluation": 0.6, "calibration": 0.4},
        "optimize": {"variants": ["tflite-int8", "onnx-fp32", "onnx-int8"]},
        "measure": {"latency": {"warmup": 10, "runs": 100}, "cold_start": {"runs": 1}},
        "targets": [{"kind": "lambda-layer", "python": version}, {"kind": "lambda-function"}],
    }))
    dist = work / f"{name}-dist"
    subprocess.run([sys.executable, "-m", "modelpack", "build", str(recipe), "--out", str(dist), "--cache-dir",
                    str(work / f"{name}-cache"), "-q"], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return dist


def onnx_forms(dist: Path, data: Path, work: Path) -> dict:
    """Each ONNX variant of the build in its three forms, timed by the module that chooses the shipped one, with
    this interpreter's onnxruntime (the layer carries only the selected variant's runtime)."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from modelpack.targets import onnx_form

    with np.load(data) as npz:
        x = npz["x"][:1].astype("float32")
    report = json.loads((dist / "report.json").read_text())
    found = {}
    for v in report["variants"]:
        path = dist / "variants" / f"{v['name']}.onnx"
        if not path.exists():
            continue
        dest = work / f"form-{dist.name}-{v['name']}"
        dest.mkdir()
        site = Path(np.__file__).resolve().parents[1]  # numpy and onnxruntime
        found[v["name"]] = onnx_form._choose(path, dest, site, sys.executable, {_input_name(path): x})
    return found


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def bench(name: str, model: Path, data: Path, work: Path, runs: int) -> dict:
    version, python = target_python()
    dist = _build(name, model, data, work, version)
    report = json.loads((dist / "report.json").read_text())
    task = extract(dist / "lambda" / "function.zip", work / f"{name}-task")
    opt = extract(dist / "lambda" / "layer.zip", work / f"{name}-opt")
    shipped = next(p for p in sorted((task / "model").iterdir()) if p.suffix in _RUNTIME_IMPORT)
    import numpy as np

    sample = work / f"{name}-sample.json"
    with np.load(data) as npz:
        sample.write_text(json.dumps(npz["x"][:1].astype("float32").tolist()))
    env = {k: v for k, v in ENV.items() if k != "PYTHONPATH"}
    cold = decompose(python, env, task, opt / "python", shipped, sample, runs)
    return {"model": name, "selected": report["selected"], "python": version,
            "cold_start_ms": {"decomposition": cold, "floor": cold["floor"]["total"],
                              "handler": cold["handler"]["total"]},
            "onnx_forms": onnx_forms(dist, data, work)}


def main() -> None:
    parser = argparse.ArgumentParser(description="the generated handler's cold start against its floor")
    parser.add_argument("--models", default="digits,mobilenetv2", help="comma-separated: digits, mobilenetv2")
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per side (median)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    import onnxruntime

    results = {"date": dt.date.today().isoformat(), "runs": args.runs,
               "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()},
               "onnx_forms_timed_with": f"onnxruntime {onnxruntime.__version__} on Python {platform.python_version()}",
               "models": []}
    wanted = args.models.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"coldstart-{platform.node() or 'host'}.json"
    with tempfile.TemporaryDirectory(prefix="modelpack-coldstart-") as tmp:
        work = Path(tmp)
        if "digits" in wanted:
            digits = ROOT / "recipes" / "digits"
            results["models"].append(bench("digits", digits / "model.keras", digits / "digits.npz", work, args.runs))
            path.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")  # kept if a later model fails
        if "mobilenetv2" in wanted:
            model, data = mobilenet(work)
            results["models"].append(bench("mobilenetv2", model, data, work, args.runs))
    path.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    m = results["machine"]
    print("\n".join(table(results["models"]) + [""] + form_table(results["models"])))
    print(f"\nMachine: {m['cpu']}, {m['cores']} cores; handlers timed on Python "
          f"{', '.join(sorted({r['python'] for r in results['models']}))}; {results['date']}.")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
