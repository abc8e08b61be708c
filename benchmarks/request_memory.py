"""Peak memory one request adds to a generated handler, against its body size, for hostile and normal bodies.

Run: python benchmarks/request_memory.py [--dist DIR] [--code DIR] [--label NAME]
Prints a table and writes benchmarks/results/request-memory-<host>[-<label>].json.

Each case runs in a fresh process: the handler is imported and warmed with one normal request, the body is
built, the kernel's peak-RSS mark is reset (/proc/self/clear_refs), the request is served, and the growth is
VmHWM after minus VmRSS before. Lambda: the function's handler.handler with an HTTP event (JSON as the event's
string, binary bodies base64-encoded, as API Gateway and Function URLs deliver them). Azure: the generated
function_app's predict under 8 concurrent requests, each with its own body.

Three models: the digits example ([batch, 8, 8, 1], every dimension known), a sequence model with a free length
([batch, any, 3], a tiny ONNX model made here) and the digits model taking images (its package with a
`serving.image` section: grayscale 8x8, max_pixels 40 million). Hostile bodies are valid JSON, .npz or images that
no request to the model can be: empty lists, empty objects, flat numbers, short strings, an oversize batch, deep
nesting; an .npz whose directory lists ~100,000 entries; a batch of small PNGs that each declare ~40 million
pixels (40 of them: fewer than the 41 that the string bound of max_batch 64 let through before it counted two
strings per image). Without --dist the digits example is built first (lambda-function and azure-functions targets, default
limits: max_batch 64, 6 MB Lambda payload, 10 MB Azure body). --code DIR overlays the handler files of another
checkout's modelpack/serving/ (to compare).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from modelpack.limits import MB

ROOT = Path(__file__).resolve().parent.parent
CONCURRENT = 8
GOAL = 3.0  # growth at most this many times the bytes received ...
ALLOWANCE_MB = 4.0  # ... plus, per request in flight, what any request costs whatever its size: thread stacks,
# malloc arenas, tensor buffers, a decoder's first import
IMAGE = {"size": [8, 8], "resize": "bilinear", "channels": "grayscale", "scale": "unit", "max_pixels": 40_000_000}

# Bodies: name -> generator of about n bytes (text or bytes) and its content type.
_CASE = r"""
import base64, gc, io, json, os, struct, sys, threading, time, zipfile
kind, body_name, size, sample = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])

def png(width, height):
    from PIL import Image
    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, "PNG")
    return out.getvalue()

def npz_directory(n):
    # One stored member, then a central directory that lists it again and again (zipfile reads them all).
    local = b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 0, 0, 33, 0, 0, 0, 1, 0) + b"a"
    entry = b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 20, 20, 0, 0, 0, 33, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) + b"a"
    count = max(1, (n - len(local) - 22) // len(entry))
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count & 0xFFFF, count & 0xFFFF, count * len(entry),
                                      len(local), 0)
    return local + entry * count + end

def body(name, n):
    if name == "empty lists":
        return '{"instances": [' + ",".join(["[]"] * (n // 3)) + "]}"
    if name == "empty objects":
        return '{"instances": [' + ",".join(["{}"] * (n // 3)) + "]}"
    if name == "flat numbers":
        return '{"instances": [' + ",".join(["0"] * (n // 2)) + "]}"
    if name == "short strings":
        return '{"instances": [' + ",".join(['"ab"'] * (n // 5)) + "]}"
    if name == "oversize batch":
        one = json.dumps(sample)
        return '{"instances": [' + ",".join([one] * max(1, n // (len(one) + 1))) + "]}"
    if name == "deep nesting":
        return '{"instances": ' + "[" * (n // 2) + "]" * (n // 2) + "}"
    if name in ("normal", "normal, max batch"):
        count = 1 if name == "normal" else n
        return json.dumps({"instances": [sample] * count})
    if name == "npz directory":
        return npz_directory(n)
    if name == "png batch of 40 Mpx each":
        one = base64.b64encode(png(6324, 6324)).decode()
        return json.dumps({"instances": [{"b64": one}] * min(n // (len(one) + 12), 40)})
    if name == "png batch, normal":
        one = base64.b64encode(png(8, 8)).decode()
        return json.dumps({"instances": [{"b64": one}] * n})
    raise SystemExit(f"unknown body {name}")

def status_of(result):
    return result.status_code if hasattr(result, "status_code") else result["statusCode"]

def rss_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

normal = json.dumps({"instances": [sample]})
ctype = "application/x-npz" if body_name.startswith("npz") else "application/json"
if kind == "lambda":
    import handler
    def call(text, binary=False):
        return handler.handler({"rawPath": "/predict", "requestContext": {"http": {"method": "POST"}},
                                "headers": {"content-type": ctype if binary else "application/json"},
                                "isBase64Encoded": binary, "body": text}, None)
    assert status_of(call(normal)) == 200
    data = body(body_name, size)
    binary = isinstance(data, bytes)
    texts = [base64.b64encode(data).decode() if binary else data]  # what Lambda hands over: the event's text
    del data
    send = lambda text: call(text, binary)
else:
    import azure.functions as func
    import function_app
    predict = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}["predict"]
    def call(raw, kind=ctype):
        return predict(func.HttpRequest(method="POST", url="/api/predict", body=raw, headers={"content-type": kind}))
    assert status_of(call(normal.encode(), "application/json")) == 200
    texts = [body(body_name, size) for _ in range(CONCURRENT)]
    texts = [t.encode() if isinstance(t, str) else t for t in texts]
    send = call
received = sum(len(t) for t in texts)
gc.collect()
before = rss_kb("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS mark to the current RSS
statuses = [None] * len(texts)
barrier = threading.Barrier(len(texts))
def one(i):
    barrier.wait()
    statuses[i] = status_of(send(texts[i]))
t = time.perf_counter()
threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
[th.start() for th in threads]; [th.join() for th in threads]
ms = (time.perf_counter() - t) * 1e3
print("MODELPACK_MEMORY " + json.dumps({"statuses": sorted(set(statuses)), "received_bytes": received,
      "growth_kb": rss_kb("VmHWM") - before, "ms": ms}))
"""
_CASE = _CASE.replace("CONCURRENT", str(CONCURRENT))

HOSTILE = ("empty lists", "empty objects", "flat numbers", "short strings", "oversize batch", "deep nesting")
MODELS = {  # model -> bodies: hostile ones just under the platform's limit, then normal ones
    "digits": (*HOSTILE, "npz directory", "normal", "normal, max batch"),
    "sequence": (*HOSTILE, "normal", "normal, max batch"),
    "images": ("png batch of 40 Mpx each", "png batch, normal"),
}


def build_digits(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "recipes" / "digits" / "recipe.yaml").read_text())
    data["model"]["path"] = str(ROOT / "recipes" / "digits" / "model.keras")
    data["data"]["path"] = str(ROOT / "recipes" / "digits" / "digits.npz")
    data["measure"] = {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1}}
    data["optimize"] = {"variants": ["tflite-fp32"]}
    data["targets"] = [{"kind": "lambda-function"}, {"kind": "azure-functions"}]
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data))
    exe = shutil.which("modelpack", path=str(Path(sys.executable).parent)) or "modelpack"
    subprocess.run([exe, "build", str(recipe), "--out", str(tmp / "dist"), "--cache-dir", str(tmp / "cache"), "-q"],
                   check=True)
    return tmp / "dist"


def sequence_model(folder: Path) -> None:
    """[batch, any, 3] -> [batch, 3] (the sum over time), as a model with a free length is served."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)], "seq",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
                              [numpy_helper.from_array(np.array([1], np.int64), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for old in (folder / "model").glob("*"):
        old.unlink()
    onnx.save(model, str(folder / "model" / "model.onnx"))


def _retarget(folder: Path, **changes) -> None:
    import hashlib

    config = json.loads((folder / "modelpack.json").read_text())
    config.update(changes)
    if "inputs" in changes:  # another model file: its path and sha256
        config["model"].update(path="model/model.onnx",
                               sha256=hashlib.sha256((folder / "model" / "model.onnx").read_bytes()).hexdigest())
    (folder / "modelpack.json").write_text(json.dumps(config))


def prepare(dist: Path, tmp: Path, code: Path | None) -> dict[tuple[str, str], Path]:
    """(platform, model) -> the Lambda function or Azure app folder, optionally with another checkout's handler files."""
    code = code or ROOT / "modelpack" / "serving"
    folders = {}
    for model in MODELS:
        fn, app = tmp / model / "function", tmp / model / "app"
        shutil.unpack_archive(dist / "lambda" / "function.zip", fn, "zip")
        shutil.copytree(dist / "azure" / "functionapp", app, ignore=shutil.ignore_patterns(".python_packages"))
        for folder, entry in ((fn, code / "lambda" / "handler.py"), (app, code / "azure" / "function_app.py")):
            shutil.copyfile(entry, folder / entry.name)
            for common in (code / "common").glob("*.py"):
                shutil.copyfile(common, folder / common.name)
            if model == "sequence":
                sequence_model(folder)
                _retarget(folder, inputs=[{"name": "x", "shape": [None, None, 3], "dtype": "float32"}],
                          outputs=[{"name": "y", "shape": [None, 3], "dtype": "float32"}])
            elif model == "images":
                _retarget(folder, image=IMAGE)
        folders["lambda", model], folders["azure", model] = fn, app
    return folders


def run_case(kind: str, folder: Path, body: str, size: int, sample: list) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CASE, kind, body, str(size), json.dumps(sample)],
                          cwd=folder, capture_output=True, text=True, timeout=900, check=False,
                          env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("MODELPACK_MEMORY ")), None)
    if line is None:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(line.split(" ", 1)[1])


def sizes(kind: str, body: str, limit: int, batch: int) -> int:
    """How big a body to make: just under the platform's limit (base64 on Lambda takes 4/3 of it)."""
    if body in ("normal", "png batch, normal"):
        return 1 if body == "normal" else batch
    if body == "normal, max batch":
        return batch
    if body == "npz directory" and kind == "lambda":
        return int(limit * 0.99 * 3 / 4)
    return int(limit * 0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, help="a built dist with lambda/function.zip and azure/functionapp")
    parser.add_argument("--code", type=Path, help="modelpack/serving/ folder whose handler files to measure instead")
    parser.add_argument("--label", default="", help="suffix of the results file name")
    args = parser.parse_args()
    import numpy as np

    with np.load(ROOT / "recipes" / "digits" / "digits.npz") as npz:
        samples = {"digits": npz["x"][0].tolist(), "images": npz["x"][0].tolist(),
                   "sequence": [[0.125, -0.5, 1.0]] * 16}
    with tempfile.TemporaryDirectory(prefix="request-memory-") as tmp:
        dist = args.dist or build_digits(Path(tmp))
        folders = prepare(dist, Path(tmp), args.code)
        config = json.loads((folders["lambda", "digits"] / "modelpack.json").read_text())
        batch = int(config.get("max_batch", 64))
        limits = {"lambda": int(config["payload_limit_bytes"]),
                  "azure": json.loads((folders["azure", "digits"] / "modelpack.json").read_text())["payload_limit_bytes"]}
        rows = []
        for kind in ("lambda", "azure"):
            for model, bodies in MODELS.items():
                for body in bodies:
                    result = run_case(kind, folders[kind, model], body, sizes(kind, body, limits[kind], batch),
                                      samples[model])
                    rows.append({"handler": "Lambda (HTTP event)" if kind == "lambda" else
                                 f"Azure ({CONCURRENT} concurrent)", "model": model, "body": body, **result})
    print(f"max_batch {batch}; models: digits [batch, 8, 8, 1], sequence [batch, any, 3], images (digits with "
          f"serving.image, max_pixels {IMAGE['max_pixels']:,}); goal: growth <= {GOAL:g}x the bytes received + "
          f"{ALLOWANCE_MB:g} MB per request in flight\n")
    print("| handler | model | body | received MB | status | peak RSS growth MB | growth / received | ms | within goal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['handler']} | {r['model']} | {r['body']} | – | failed: {r['error']} | – | – | – | no |")
            continue
        ratio = r["growth_kb"] * 1024 / r["received_bytes"]
        r["ratio"] = round(ratio, 3)
        in_flight = 1 if r["handler"].startswith("Lambda") else CONCURRENT
        r["within_goal"] = r["growth_kb"] * 1024 <= GOAL * r["received_bytes"] + in_flight * ALLOWANCE_MB * MB
        print(f"| {r['handler']} | {r['model']} | {r['body']} | {r['received_bytes'] / MB:.3f} | "
              f"{','.join(map(str, r['statuses']))} | {r['growth_kb'] / 1024:.1f} | {ratio:.2f}x | {r['ms']:.0f} | "
              f"{'yes' if r['within_goal'] else 'NO'} |")
    name = f"request-memory-{platform.node() or 'host'}{('-' + args.label) if args.label else ''}.json"
    out = ROOT / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                               "max_batch": batch, "goal_ratio": GOAL, "allowance_mb": ALLOWANCE_MB,
                               "image": IMAGE, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
