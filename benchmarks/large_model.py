"""Building big models within bounded memory: peak resident memory of the whole build (every process it starts),
build time cold and cached, and the artifacts, for generated Dense models of about 0.5 GB and 1 GB.

Run: python benchmarks/large_model.py [--sizes 0.5,1.0] [--keep DIR]
Prints a table and writes benchmarks/results/large-model-<host>.json.

Each model is made here (random float32 weights, seeded; never committed): a 256-wide input, Dense layers of
4,096 units (2,048 below 0.25 GB) until the size is reached, 10 classes. The recipe asks for tflite-fp32,
tflite-int8, onnx-fp32 and onnx-int8 and a Lambda layer and function, `select: most-accurate` (so the float
variants, which no zip function can carry, must be passed over; from 1 GB the function takes its model from S3,
since no variant fits beside the runtime), and the build runs through the CLI in a fresh
process. Peak memory is sampled from /proc every 0.2 s over the build's whole process tree, independently of the
`build.peak_rss_mb` record the build writes into report.json (both are reported). Goals: peak ≤ 3 × the model
file + 1.5 GB; a cached rebuild ≤ 5 % of the cold build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modelpack.host.memory import tree_rss_bytes  # noqa: E402

MIB = 1024 * 1024
GOAL_FACTOR, GOAL_ALLOWANCE_MB = 3.0, 1536

_MAKE = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, keras
gb, out = float(sys.argv[1]), sys.argv[2]
width = 2048 if gb < 0.25 else 4096
layers = max(1, round(gb * 1e9 / 4 / (width * width)))
keras.utils.set_random_seed(0)
inp = keras.Input((256,), name="features")
x = keras.layers.Dense(width, activation="relu")(inp)
for _ in range(layers - 1):
    x = keras.layers.Dense(width, activation="relu")(x)
model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x))
model.save(out)
rng = np.random.default_rng(0)
np.savez(os.path.join(os.path.dirname(out), "data.npz"), x=rng.normal(size=(200, 256)).astype("float32"),
         y=rng.integers(0, 10, 200))
print(model.count_params())
"""


def make_model(folder: Path, gb: float) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([sys.executable, "-c", _MAKE, str(gb), str(folder / "model.keras")], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


# From this size on no INT8 variant fits a zip function beside its runtime (237 MB + the layer > 262 MB), so the
# recipe does what the build proposes for it: the function downloads the model from S3 at cold start (the build
# checks the handler against a local copy and needs no bucket).
MODEL_FROM_S3_GB = 1.0


def write_recipe(folder: Path, python: str, arch: str, gb: float) -> Path:
    function = {"kind": "lambda-function"}
    if gb >= MODEL_FROM_S3_GB:
        function["model_source"] = f"s3://modelpack-models/{folder.name}/model"
    recipe = {
        "name": folder.name, "model": {"path": "model.keras"},
        "data": {"path": "data.npz", "inputs": "x", "labels": "y", "evaluation": 100, "calibration": 100},
        "optimize": {"variants": ["tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8"]},
        "measure": {"latency": {"warmup": 1, "runs": 5}, "cold_start": {"runs": 1}},
        "select": "most-accurate",
        "targets": [{"kind": "lambda-layer", "python": python, "arch": arch}, function],
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


# The default cache cap (2 GB) would evict a float32 variant of the 1 GB model before the cached rebuild;
# a user with models this big raises it the same way.
CACHE_MAX_SIZE = "20GB"


def timed_build(recipe: Path, out: Path, cache: Path) -> dict:
    """The build in a fresh process; its exit code, seconds and the sampled peak of its process tree."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "modelpack", "-q", "build", str(recipe), "--out", str(out),
                             "--cache-dir", str(cache), "--cache-max-size", CACHE_MAX_SIZE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_bytes(proc.pid))
        time.sleep(0.2)
    output = proc.stdout.read() if proc.stdout else ""
    return {"exit": proc.returncode, "seconds": round(time.monotonic() - start, 1), "peak_rss_mb": round(peak / MIB),
            "output": output.strip().splitlines()[-3:]}


def measure(gb: float, work: Path) -> dict:
    from modelpack.host.interpreters import host_arch, host_python

    folder = work / f"large-{gb:g}gb"
    params = make_model(folder, gb)
    model_mb = (folder / "model.keras").stat().st_size / MIB
    recipe = write_recipe(folder, host_python(), host_arch(), gb)
    cold = timed_build(recipe, folder / "dist", folder / "cache")
    cold_report = folder / "cold-report.json"
    if (folder / "dist" / "report.json").exists():
        shutil.copyfile(folder / "dist" / "report.json", cold_report)
    cached = timed_build(recipe, folder / "dist", folder / "cache")
    row = {"gb": gb, "params": params, "model_mb": round(model_mb), "cold": cold, "cached": cached,
           "goal_peak_mb": round(GOAL_FACTOR * model_mb + GOAL_ALLOWANCE_MB)}
    if cold_report.exists():
        report = json.loads(cold_report.read_text())
        row.update(selected=report.get("selected"), passed=report.get("passed"), build=report.get("build"),
                   variants={v["name"]: {"status": v["status"], "size_mb": round((v.get("size_bytes") or 0) / MIB)}
                             for v in report["variants"]},
                   artifacts={a["path"]: round(a["size_bytes"] / MIB, 1) for a in report["artifacts"]},
                   notes=report.get("notes", []))
    row["peak_within_goal"] = cold["peak_rss_mb"] <= row["goal_peak_mb"]
    row["cached_share"] = round(cached["seconds"] / cold["seconds"], 3) if cold["seconds"] else None
    return row


def table(rows: list[dict]) -> str:
    lines = ["| model | params | file MB | selected | exit | peak MB (sampled / report) | goal MB "
             "| build s cold / cached | cached share | artifacts |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        recorded = (r.get("build") or {}).get("peak_rss_mb_max")
        arts = ", ".join(f"{k} {v} MB" for k, v in (r.get("artifacts") or {}).items() if k.endswith(".zip"))
        lines.append(f"| {r['gb']:g} GB Dense | {r['params']:,} | {r['model_mb']} | {r.get('selected')} | {r['cold']['exit']} "
                     f"| {r['cold']['peak_rss_mb']} / {recorded} | {r['goal_peak_mb']} "
                     f"| {r['cold']['seconds']} / {r['cached']['seconds']} | {r['cached_share']} | {arts} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.5,1.0", help="model sizes in GB, comma-separated")
    parser.add_argument("--keep", type=Path, help="build here and keep the models and dists")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="modelpack-large-"))
    try:
        rows = [measure(float(s), work) for s in args.sizes.split(",")]
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    host = "vm" if os.environ.get("MODELPACK_BENCH_HOST") is None else os.environ["MODELPACK_BENCH_HOST"]
    out = ROOT / "benchmarks" / "results" / f"large-model-{host}.json"
    out.write_text(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                               "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
