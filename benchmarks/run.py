"""modelpack against the bare libraries, measured side by side on this machine.

    python benchmarks/run.py            # digits + MobileNetV2 (random weights), about 10 minutes
    python benchmarks/run.py --quick    # digits only, fewer runs (what CI runs)

For each model: the latency of modelpack's selected artifact through its generated handler against the
fastest variant built by hand with the TFLite converter / ONNX Runtime quantization and called directly;
the cold start of the generated handler from its extracted package (bytecode writing disabled, as on
Lambda) against a hand-written handler packaged with a plain `pip install --target` and against a handler
that uses Keras directly; the Lambda layer size against a naive install (onnxruntime + numpy, cp312
x86_64); and the build time, cold against cached. Writes benchmarks/results/<date>-<host>.json and the
table in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}, "TF_CPP_MIN_LOG_LEVEL": "3",
       "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def run_py(code: str, *args: str, env: dict | None = None, cwd: str | None = None, flags=("-S",),
           python: str = PY) -> dict:
    """Run code in a fresh interpreter; it prints one JSON line prefixed RESULT."""
    proc = subprocess.run([python, *flags, "-c", code, *args], capture_output=True, text=True, env=env or ENV, cwd=cwd,
                          timeout=1800, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(proc.stderr[-1500:])
    return json.loads(line[7:])


# --- the expert's way: convert with the bare libraries, call interpreter / session directly -------------
HAND_CONVERT = r"""
import json, sys, numpy as np, tensorflow as tf, keras
model = keras.saving.load_model(sys.argv[1]); out = sys.argv[2]
calib = np.load(sys.argv[3])["x"][:200].astype("float32")
model.export(out + "/sm", verbose=False)
def rep():
    for i in range(len(calib)):
        yield [calib[i:i+1]]
c = tf.lite.TFLiteConverter.from_saved_model(out + "/sm"); open(out + "/fp32.tflite", "wb").write(c.convert())
c = tf.lite.TFLiteConverter.from_saved_model(out + "/sm"); c.optimizations = [tf.lite.Optimize.DEFAULT]
c.representative_dataset = rep; c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
open(out + "/int8.tflite", "wb").write(c.convert())
import tf2onnx
spec = [tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name="x")]
fn = tf.function(lambda x: model(x, training=False), input_signature=spec)
tf2onnx.convert.from_function(fn, input_signature=spec, opset=17, output_path=out + "/fp32.onnx")
from onnxruntime.quantization import quantize_static, QuantFormat, CalibrationDataReader
from onnxruntime.quantization.shape_inference import quant_pre_process
class R(CalibrationDataReader):
    def __init__(s): s.i = iter([{"x": calib[i:i+1]} for i in range(len(calib))])
    def get_next(s): return next(s.i, None)
quant_pre_process(out + "/fp32.onnx", out + "/pre.onnx")
quantize_static(out + "/pre.onnx", out + "/int8.onnx", R(), quant_format=QuantFormat.QDQ, per_channel=True)
print("RESULT {}")
"""

HAND_TIME = r"""
import json, sys, time, numpy as np
path, runs = sys.argv[1], int(sys.argv[2]); x = np.load(sys.argv[3])["x"][:1].astype("float32")
if path.endswith(".tflite"):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=path, num_threads=1); it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    if i["dtype"] == np.int8:
        s, z = i["quantization"]; x = np.clip(np.round(x / s + z), -128, 127).astype(np.int8)
    def call():
        it.set_tensor(i["index"], x); it.invoke(); return it.get_tensor(o["index"])
else:
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]); name = sess.get_inputs()[0].name
    def call(): return sess.run(None, {name: x})
for _ in range(20): call()
t = []
for _ in range(runs):
    a = time.perf_counter(); call(); t.append((time.perf_counter() - a) * 1e3)
print("RESULT " + json.dumps({"p50": float(np.median(t)), "p90": float(np.percentile(t, 90))}))
"""

# --- modelpack's handler, warm: the handler's own model path and the whole handler call -------------
HANDLER_TIME = r"""
import base64, io, json, sys, time, numpy as np
import handler
x = np.load(sys.argv[1])["x"][:1].astype("float32"); runs = int(sys.argv[2])
name = handler.CONFIG["inputs"][0]["name"]; model = handler.HOLDER.get(); event = {"instances": x.tolist()}
def http(body, path="/", **headers):
    binary = isinstance(body, bytes)
    return {"version": "2.0", "rawPath": path, "requestContext": {"http": {"method": "POST"}},
            "headers": {"content-type": "application/json", **headers}, "isBase64Encoded": binary,
            "body": base64.b64encode(body).decode() if binary else body}
npy = io.BytesIO(); np.save(npy, x)
infer = "/v2/models/" + handler.CONFIG["name"] + "/infer"
header = json.dumps({"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32",
                                 "parameters": {"binary_data_size": x.nbytes}}],
                     "parameters": {"binary_data_output": True}}).encode()
# Function URL events, as Lambda hands them to the handler: binary bodies base64-encoded.
formats = {"json_event": event, "json": http(json.dumps(event)),
           "npy": http(npy.getvalue(), **{"content-type": "application/x-npy", "accept": "application/x-npy"}),
           # the same request with its bytes as they are, as the Azure app and HTTP servers receive them
           "npy_raw": {**http(npy.getvalue(), **{"content-type": "application/x-npy", "accept": "application/x-npy"}),
                       "isBase64Encoded": False, "body": npy.getvalue()},
           "oip_json": http(json.dumps({"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32",
                                                    "data": x.reshape(-1).tolist()}]}), infer),
           "oip_binary": http(header + x.tobytes(), infer, **{"content-type": "application/octet-stream",
                                                               "inference-header-content-length": str(len(header))})}
if handler.CONFIG.get("image"):  # a JPEG of the sample's pixels (tf scaling undone), as a camera client sends
    from PIL import Image
    jpeg = io.BytesIO()
    Image.fromarray(((x[0] + 1) * 127.5).clip(0, 255).astype("uint8")).save(jpeg, format="JPEG", quality=90)
    formats["jpeg"] = http(jpeg.getvalue(), **{"content-type": "image/jpeg"})
for ev in formats.values():
    r = handler.handler(ev, None)
    assert r.get("statusCode", 200) == 200, str(r)[:300]
for _ in range(20): model.predict({name: x}); handler.handler(event, None)
inner, outer = [], []
for _ in range(runs):
    a = time.perf_counter(); model.predict({name: x}); inner.append((time.perf_counter() - a) * 1e3)
for _ in range(runs):
    a = time.perf_counter(); handler.handler(event, None); outer.append((time.perf_counter() - a) * 1e3)
by_format = {}
for key, ev in formats.items():
    times = []
    for _ in range(runs):
        a = time.perf_counter(); handler.handler(ev, None); times.append((time.perf_counter() - a) * 1e3)
    by_format[key] = float(np.median(times))
print("RESULT " + json.dumps({"inference_p50": float(np.median(inner)), "inference_p90": float(np.percentile(inner, 90)),
                             "handler_p50": float(np.median(outer)), "by_format": by_format}))
"""

COLD = r"""
import json, sys, time
# The event is decoded before the clock starts: on Lambda the runtime does that outside the handler, the
# same for every handler compared here.
event = {"instances": json.load(open(sys.argv[1]))}
t0 = time.perf_counter()
import handler
r = handler.handler(event, None)
print("RESULT " + json.dumps({"ms": (time.perf_counter() - t0) * 1e3, "ok": "predictions" in r}))
"""

NAIVE_HANDLER = '''import json, os, numpy as np
MODEL = os.path.join(os.path.dirname(__file__), "model{ext}")
{load}
def handler(event, context):
    x = np.asarray(event["instances"], dtype=np.float32)
    return {{"predictions": predict(x).tolist()}}
'''
NAIVE_LOAD = {
    ".tflite": ("from ai_edge_litert.interpreter import Interpreter\n"
                "it = Interpreter(model_path=MODEL, num_threads=1); it.allocate_tensors()\n"
                "i, o = it.get_input_details()[0], it.get_output_details()[0]\n"
                "def predict(x):\n    it.set_tensor(i['index'], x); it.invoke(); return it.get_tensor(o['index'])"),
    ".onnx": ("import onnxruntime as ort\nsess = ort.InferenceSession(MODEL, providers=['CPUExecutionProvider'])\n"
              "def predict(x):\n    return sess.run(None, {sess.get_inputs()[0].name: x})[0]"),
}
KERAS_HANDLER = '''import json, os, numpy as np
import keras
MODEL = keras.saving.load_model(os.path.join(os.path.dirname(__file__), "model.keras"))
def handler(event, context):
    return {"predictions": MODEL.predict(np.asarray(event["instances"], dtype=np.float32), verbose=0).tolist()}
'''


def cold_times(task: Path, extra_path: list[Path], sample: Path, runs: int, site: bool = False,
               python: str = PY) -> list[float]:
    env = {**ENV, "PYTHONPATH": os.pathsep.join(str(p) for p in [task, *extra_path])}
    flags = () if site else ("-S",)
    return [run_py(COLD, str(sample), env=env, cwd=str(task), flags=flags, python=python)["ms"] for _ in range(runs)]


def target_python() -> tuple[str, str]:
    """Lambda's python3.12 when this machine has it (so every handler runs the same runtime versions the
    layer resolves to), else this interpreter's version."""
    sys.path.insert(0, str(ROOT))
    from modelpack.host import interpreters

    found = interpreters.find("3.12")
    if found:
        return "3.12", found
    return f"{sys.version_info.major}.{sys.version_info.minor}", PY


def pip_target(dest: Path, packages: list[str], python: str = "3.12") -> None:
    tags = [f"--platform=manylinux_2_{m}_x86_64" for m in range(34, 16, -1)] + ["--platform=manylinux2014_x86_64"]
    args = ["--only-binary=:all:", f"--python-version={python}", "--implementation=cp", f"--abi=cp{python.replace('.', '')}", *tags]
    if python == f"{sys.version_info.major}.{sys.version_info.minor}":
        args = []
    subprocess.run([PY, "-m", "pip", "install", "--quiet", "--target", str(dest), *args, *packages], check=True)


def zip_dir(src: Path, dest: Path) -> int:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(src.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(src).as_posix())
    return dest.stat().st_size


def extract(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return dest


def bench_model(name: str, model: Path, data: Path, work: Path, quick: bool, serving: dict | None = None) -> dict:
    runs = 100 if quick else 500
    cold_runs = 3 if quick else 7
    version, python = target_python()
    recipe = work / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": name, "model": {"path": str(model)},
        "data": {"path": str(data), "evaluation": 0.6, "calibration": 0.4},
        "optimize": {"variants": ["tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8"]},
        "measure": {"latency": {"warmup": 10, "runs": runs}, "cold_start": {"runs": 1}},
        "targets": [{"kind": "lambda-layer", "python": version}, {"kind": "lambda-function"}],
        **({"serving": serving} if serving else {}),
    }))
    cache = work / f"{name}-cache"
    timings = []
    for _ in ("cold", "cached"):
        t = time.perf_counter()
        subprocess.run([PY, "-m", "modelpack", "build", str(recipe), "--out", str(work / f"{name}-dist"),
                        "--cache-dir", str(cache), "-q"], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        timings.append(time.perf_counter() - t)
    dist = work / f"{name}-dist"
    report = json.loads((dist / "report.json").read_text())
    selected = report["selected"]
    task = extract(dist / "lambda" / "function.zip", work / f"{name}-task")
    opt = extract(dist / "lambda" / "layer.zip", work / f"{name}-opt")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(task), str(opt / "python")])}

    hand_dir = work / f"{name}-hand"
    hand_dir.mkdir()
    run_py(HAND_CONVERT, str(model), str(hand_dir), str(data), flags=())
    # The expert's runtime: the same Python and the newest runtime wheels, installed plainly.
    hand_site = work / "hand-site"
    if not hand_site.exists():
        pip_target(hand_site, ["ai-edge-litert", "onnxruntime", "numpy"], version)
    hand_env = {**ENV, "PYTHONPATH": str(hand_site)}
    hand = {f: run_py(HAND_TIME, str(hand_dir / f), str(runs), str(data), env=hand_env, python=python)
            for f in ("fp32.tflite", "int8.tflite", "fp32.onnx", "int8.onnx")}
    best_hand = min(hand, key=lambda f: hand[f]["p50"])
    # Ours and the best by hand, alternated in fresh processes so machine load hits both alike.
    rounds = 3
    mine_runs, hand_runs = [], []
    for _ in range(rounds):
        mine_runs.append(run_py(HANDLER_TIME, str(data), str(runs), env=env, cwd=str(task), python=python))
        hand_runs.append(run_py(HAND_TIME, str(hand_dir / best_hand), str(runs), str(data), env=hand_env, python=python))
    mine = {k: statistics.median(r[k] for r in mine_runs) for k in mine_runs[0] if k != "by_format"}
    by_format = {f: statistics.median(r["by_format"][f] for r in mine_runs) for f in mine_runs[0]["by_format"]}
    hand[best_hand] = {k: statistics.median(r[k] for r in hand_runs) for k in hand_runs[0]}

    sample = work / f"{name}-sample.json"
    import numpy as np

    with np.load(data) as npz:
        sample.write_text(json.dumps(npz["x"][:1].astype("float32").tolist()))
    ours_colds = cold_times(task, [opt / "python"], sample, cold_runs, python=python)
    ours_cold = statistics.median(ours_colds)
    ext = Path(next(v["path"] for v in report["variants"] if v["name"] == selected)).suffix
    naive = work / f"{name}-naive"
    pip_target(naive, ["ai-edge-litert" if ext == ".tflite" else "onnxruntime", "numpy"], version)
    shutil.copyfile(dist / "variants" / f"{selected}{ext}", naive / f"model{ext}")
    (naive / "handler.py").write_text(NAIVE_HANDLER.format(ext=ext, load=NAIVE_LOAD[ext]))
    naive_zip = zip_dir(naive, work / f"{name}-naive.zip")
    naive_task = extract(work / f"{name}-naive.zip", work / f"{name}-naive-x")
    naive_colds = cold_times(naive_task, [], sample, cold_runs, python=python)
    naive_cold = statistics.median(naive_colds)
    keras_task = work / f"{name}-keras"
    keras_task.mkdir()
    shutil.copyfile(model, keras_task / "model.keras")
    (keras_task / "handler.py").write_text(KERAS_HANDLER)
    keras_cold = statistics.median(cold_times(keras_task, [], sample, max(2, cold_runs // 2), site=True))
    return {
        "model": name, "selected": selected, "python": version,
        "latency_ms": {"handler_inference_p50": mine["inference_p50"], "handler_inference_p90": mine["inference_p90"],
                       "handler_end_to_end_p50": mine["handler_p50"], "rounds": rounds,
                       "end_to_end_p50_by_format": by_format,
                       "hand_best": best_hand, "hand_best_p50": hand[best_hand]["p50"],
                       "hand_best_p90": hand[best_hand]["p90"],
                       "hand_all_p50": {k: v["p50"] for k, v in hand.items()},
                       "ratio_hand_over_ours": hand[best_hand]["p50"] / mine["inference_p50"]},
        "cold_start_ms": {"modelpack_handler": ours_cold, "naive_pip_target": naive_cold, "keras_handler": keras_cold,
                          "modelpack_runs": ours_colds, "naive_runs": naive_colds,
                          "ratio_vs_naive": ours_cold / naive_cold, "ratio_vs_keras": ours_cold / keras_cold,
                          "naive_zip_bytes": naive_zip},
        "build_s": {"cold": timings[0], "cached": timings[1], "ratio": timings[1] / timings[0]},
    }


def layer_sizes(work: Path, data: Path) -> dict:
    """onnxruntime + numpy for python3.12 x86_64: modelpack's layer against a naive pip install, zipped."""
    naive = work / "naive-ort"
    pip_target(naive, ["onnxruntime", "numpy"], "3.12")
    naive_zip = zip_dir(naive, work / "naive-ort.zip")
    recipe = work / "ort-layer.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "ortlayer", "model": {"path": str(ROOT / "recipes/digits/model.keras")},
        "data": {"path": str(data), "evaluation": 100, "calibration": 100}, "optimize": {"variants": ["onnx-int8"]},
        "measure": {"latency": {"warmup": 1, "runs": 5}, "cold_start": {"runs": 1}},
        "targets": [{"kind": "lambda-layer", "python": "3.12", "arch": "x86_64"}],
    }))
    subprocess.run([PY, "-m", "modelpack", "build", str(recipe), "--out", str(work / "ortlayer"), "--cache-dir",
                    str(work / "ortlayer-cache"), "-q"], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    art = json.loads((work / "ortlayer" / "report.json").read_text())["artifacts"][0]
    return {"naive_unzipped_bytes": sum(f.stat().st_size for f in naive.rglob("*") if f.is_file()),
            "naive_zipped_bytes": naive_zip, "modelpack_unzipped_bytes": art["unzipped_bytes"],
            "modelpack_zipped_bytes": art["size_bytes"], "bytecode_modules": art["details"]["bytecode"],
            "verified": art["details"]["verified"], "installed": art["details"]["installed"]}


def mobilenet(work: Path) -> tuple[Path, Path]:
    code = ("import keras, numpy as np, sys; keras.utils.set_random_seed(0); "
            "m = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3)); m.save(sys.argv[1] + '/mnv2.keras'); "
            "rng = np.random.default_rng(0); x = rng.uniform(-1, 1, (64, 224, 224, 3)).astype('float32'); "
            "np.savez(sys.argv[1] + '/mnv2.npz', x=x, y=np.argmax(m.predict(x, verbose=0), axis=1)); print('RESULT {}')")
    run_py(code, str(work), flags=())
    return work / "mnv2.keras", work / "mnv2.npz"


def table(results: dict) -> str:
    rows = ["| model | selected | inference ms p50 (p90): ours / best by hand | ratio | handler p50 ms | cold ms: ours [min–max] / naive [min–max] / Keras | vs naive | vs Keras | build s: cold / cached | cached share |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["models"]:
        lat, cold, b = r["latency_ms"], r["cold_start_ms"], r["build_s"]
        ours, naive = cold.get("modelpack_runs") or [0], cold.get("naive_runs") or [0]
        rows.append(f"| {r['model']} | {r['selected']} | {lat['handler_inference_p50']:.4f} ({lat.get('handler_inference_p90', 0):.4f}) / "
                    f"{lat['hand_best_p50']:.4f} ({lat.get('hand_best_p90', 0):.4f}) {lat['hand_best']} | "
                    f"{lat['ratio_hand_over_ours']:.2f} | {lat['handler_end_to_end_p50']:.3f} | "
                    f"{cold['modelpack_handler']:.0f} [{min(ours):.0f}–{max(ours):.0f}] / {cold['naive_pip_target']:.0f} "
                    f"[{min(naive):.0f}–{max(naive):.0f}] / {cold['keras_handler']:.0f} | "
                    f"{cold['ratio_vs_naive']:.2f}× | {cold['ratio_vs_keras']:.3f}× | {b['cold']:.1f} / {b['cached']:.1f} | "
                    f"{b['ratio']:.1%} |")
    formats = ["json_event", "json", "npy", "npy_raw", "oip_json", "oip_binary", "jpeg"]
    rows += ["", "Handler end to end, ms p50 by request format (Function URL events, binary bodies base64-encoded; "
             "`json_event`: a direct invocation whose JSON the runtime already decoded; `npy_raw`: the npy bytes "
             "undecoded, as the Azure app receives them; inference alone for comparison):", "",
             "| model | inference | " + " | ".join(formats) + " | npy / inference | npy_raw / inference |",
             "|---|---|" + "---|" * len(formats) + "---|---|"]
    for r in results["models"]:
        lat = r["latency_ms"]
        fmt = lat.get("end_to_end_p50_by_format") or {}
        cells = " | ".join(f"{fmt[f]:.3f}" if f in fmt else "–" for f in formats)
        ratios = " | ".join(f"{fmt[f] / lat['handler_inference_p50']:.2f}×" if f in fmt else "–"
                            for f in ("npy", "npy_raw"))
        rows.append(f"| {r['model']} | {lat['handler_inference_p50']:.3f} | {cells} | {ratios} |")
    layer = results.get("layer")
    if layer:
        rows += ["", "| Lambda layer, onnxruntime + numpy, python3.12 x86_64 | unzipped MB | zipped MB |", "|---|---|---|",
                 f"| naive `pip install --target` | {layer['naive_unzipped_bytes'] / 1e6:.1f} | {layer['naive_zipped_bytes'] / 1e6:.1f} |",
                 f"| modelpack (slimmed, {layer['bytecode_modules']} modules as bytecode, verified: {layer['verified']}) | "
                 f"{layer['modelpack_unzipped_bytes'] / 1e6:.1f} | {layer['modelpack_zipped_bytes'] / 1e6:.1f} |"]
    m = results["machine"]
    timed = sorted({r.get("python", "?") for r in results["models"]})
    return "\n".join(rows) + (f"\n\nMachine: {m['cpu']}, {m['cores']} cores; modelpack on Python {m['python']}, handlers "
                              f"and hand-written code timed on Python {', '.join(timed)}; {results['date']}.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="modelpack against the bare libraries")
    parser.add_argument("--quick", action="store_true", help="digits only, fewer runs (CI)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--no-readme", action="store_true", help="do not update benchmarks/README.md")
    args = parser.parse_args()
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    results = {"date": dt.date.today().isoformat(), "quick": args.quick,
               "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "host": platform.node()},
               "models": []}
    with tempfile.TemporaryDirectory(prefix="modelpack-bench-") as tmp:
        work = Path(tmp)
        digits = ROOT / "recipes" / "digits"
        results["models"].append(bench_model("digits", digits / "model.keras", digits / "digits.npz", work, args.quick))
        if not args.quick:
            model, data = mobilenet(work)
            image = {"image": {"size": [224, 224], "scale": "tf"}}  # MobileNetV2's own preprocessing
            results["models"].append(bench_model("mobilenetv2", model, data, work, args.quick, image))
            results["layer"] = layer_sizes(work, digits / "digits.npz")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{results['date']}-{platform.node() or 'host'}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    print(text)
    readme = ROOT / "benchmarks" / "README.md"
    if not args.no_readme and readme.exists() and "<!-- results:start -->" in readme.read_text():
        s = readme.read_text()
        a = s.index("<!-- results:start -->") + len("<!-- results:start -->\n")
        b = s.index("<!-- results:end -->")
        readme.write_text(s[:a] + text + s[b:])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
