"""Peak memory one request adds to a generated handler, against its body size, for hostile and normal bodies.

Run: python benchmarks/request_memory.py [--dist DIR] [--code DIR]
Prints a table and writes benchmarks/results/request-memory-<host>.json.

Each case runs in a fresh process: the handler is imported and warmed with one normal request, the body is
built, the kernel's peak-RSS mark is reset (/proc/self/clear_refs), the request is served, and the growth is
VmHWM after minus VmRSS before. Lambda: the function's handler.handler with an HTTP event (the body as the
event's string, as API Gateway and Function URLs deliver it). Azure: the generated function_app's predict
under 8 concurrent requests, each with its own body. Without --dist the digits example is built first
(lambda-function and azure-functions targets, default limits: max_batch 64, 6 MB Lambda payload, 10 MB
Azure body). --code DIR overlays the handler files of another checkout's modelpack/serving/ (to compare).
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
ALLOWANCE_MB = 4.0  # ... plus what any request costs whatever its size: thread stacks, arenas, tensor buffers

# Bodies: name -> (kind, JSON text generator for about n bytes). Hostile ones are valid JSON that no
# request to the model can be; normal ones are valid requests.
_CASE = r"""
import gc, json, os, sys, threading, time
kind, entry, body_name, size, sample = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])

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
    raise SystemExit(f"unknown body {name}")

def status_of(result):
    return result.status_code if hasattr(result, "status_code") else result["statusCode"]

def rss_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

normal = json.dumps({"instances": [sample]})
if kind == "lambda":
    import handler
    call = lambda text: handler.handler({"rawPath": "/predict", "requestContext": {"http": {"method": "POST"}},
                                         "headers": {"content-type": "application/json"}, "body": text}, None)
    assert status_of(call(normal)) == 200
    texts = [body(body_name, size)]
else:
    import azure.functions as func
    import function_app
    predict = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}["predict"]
    call = lambda raw: predict(func.HttpRequest(method="POST", url="/api/predict", body=raw,
                                                headers={"content-type": "application/json"}))
    assert status_of(call(normal.encode())) == 200
    texts = [body(body_name, size).encode() for _ in range(CONCURRENT)]
received = sum(len(t) for t in texts)
gc.collect()
before = rss_kb("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS mark to the current RSS
statuses = [None] * len(texts)
barrier = threading.Barrier(len(texts))
def one(i):
    barrier.wait()
    statuses[i] = status_of(call(texts[i]))
t = time.perf_counter()
threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
[th.start() for th in threads]; [th.join() for th in threads]
ms = (time.perf_counter() - t) * 1e3
print("MODELPACK_MEMORY " + json.dumps({"statuses": sorted(set(statuses)), "received_bytes": received,
      "growth_kb": rss_kb("VmHWM") - before, "ms": ms}))
"""
_CASE = _CASE.replace("CONCURRENT", str(CONCURRENT))

HOSTILE = ("empty lists", "empty objects", "flat numbers", "short strings", "oversize batch", "deep nesting")


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


def prepare(dist: Path, tmp: Path, code: Path | None) -> dict[str, Path]:
    """The Lambda function and the Azure app as folders, optionally with another checkout's handler files."""
    fn, app = tmp / "function", tmp / "app"
    shutil.unpack_archive(dist / "lambda" / "function.zip", fn, "zip")
    shutil.copytree(dist / "azure" / "functionapp", app, ignore=shutil.ignore_patterns(".python_packages"))
    if code is not None:
        for folder, entry in ((fn, code / "lambda" / "handler.py"), (app, code / "azure" / "function_app.py")):
            shutil.copyfile(entry, folder / entry.name)
            for common in (code / "common").glob("*.py"):
                shutil.copyfile(common, folder / common.name)
    return {"lambda": fn, "azure": app}


def run_case(kind: str, folder: Path, body: str, size: int, sample: list) -> dict:
    entry = "handler" if kind == "lambda" else "function_app"
    proc = subprocess.run([sys.executable, "-c", _CASE, kind, entry, body, str(size), json.dumps(sample)],
                          cwd=folder, capture_output=True, text=True, timeout=600, check=False,
                          env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("MODELPACK_MEMORY ")), None)
    if line is None:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(line.split(" ", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, help="a built dist with lambda/function.zip and azure/functionapp")
    parser.add_argument("--code", type=Path, help="modelpack/serving/ folder whose handler files to measure instead")
    parser.add_argument("--label", default="", help="suffix of the results file name")
    args = parser.parse_args()
    import numpy as np

    with np.load(ROOT / "recipes" / "digits" / "digits.npz") as npz:
        sample = npz["x"][0].tolist()
    with tempfile.TemporaryDirectory(prefix="request-memory-") as tmp:
        dist = args.dist or build_digits(Path(tmp))
        folders = prepare(dist, Path(tmp), args.code)
        config = json.loads((folders["lambda"] / "modelpack.json").read_text())
        batch = int(config.get("max_batch", 64))
        azure_limit = json.loads((folders["azure"] / "modelpack.json").read_text())["payload_limit_bytes"]
        # Just under each platform's body limit: the largest body the handler itself has to look at.
        plan = [("lambda", b, int(config["payload_limit_bytes"] * 0.99)) for b in HOSTILE]
        plan += [("lambda", "normal", 1), ("lambda", "normal, max batch", batch)]
        plan += [("azure", b, int(azure_limit * 0.99)) for b in HOSTILE]
        plan += [("azure", "normal", 1), ("azure", "normal, max batch", batch)]
        rows = []
        for kind, body, size in plan:
            result = run_case(kind, folders[kind], body, size, sample)
            rows.append({"handler": "Lambda (HTTP event)" if kind == "lambda" else f"Azure ({CONCURRENT} concurrent)",
                         "body": body, **result})
    print(f"max_batch {config.get('max_batch')}, input shape {config['inputs'][0]['shape']}; goal: growth <= "
          f"{GOAL:g}x the bytes received + {ALLOWANCE_MB:g} MB\n")
    print("| handler | body | received MB | status | peak RSS growth MB | growth / received | ms | within goal |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['handler']} | {r['body']} | – | failed: {r['error']} | – | – | – | no |")
            continue
        ratio = r["growth_kb"] * 1024 / r["received_bytes"]
        r["ratio"] = round(ratio, 3)
        r["within_goal"] = r["growth_kb"] * 1024 <= GOAL * r["received_bytes"] + ALLOWANCE_MB * MB
        print(f"| {r['handler']} | {r['body']} | {r['received_bytes'] / MB:.3f} | {','.join(map(str, r['statuses']))} "
              f"| {r['growth_kb'] / 1024:.1f} | {ratio:.2f}x | {r['ms']:.0f} | {'yes' if r['within_goal'] else 'NO'} |")
    name = f"request-memory-{platform.node() or 'host'}{('-' + args.label) if args.label else ''}.json"
    out = ROOT / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                               "max_batch": config.get("max_batch"), "goal_ratio": GOAL,
                               "allowance_mb": ALLOWANCE_MB, "rows": rows},
                              indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
