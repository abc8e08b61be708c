"""Knowledge distillation against the goals of optimize.distill: parameters, accuracy, INT8 size and build time.

For each model, two measuring builds (`modelpack.bench`: convert, measure, judge; no packaging) run on an empty
cache: the plain one (variants tflite-fp32 and tflite-int8) and the same recipe with optimize.distill. The added
seconds are the difference of their wall times on this machine. Sizes are model files as the variants write them;
accuracies are on the recipe's evaluation samples (labels), the student's as a Keras model and as INT8.

    python benchmarks/distill.py                  # digits and MobileNetV2 (alpha 0.35, 32x32, brief training)
    python benchmarks/distill.py --models digits

The MobileNetV2 is keras.applications' own (weights=None, batch-norm momentum 0.9), trained for a few epochs on
generated images whose class is a fixed random pattern under noise, so it has something to teach; it is not among
the developers' fixtures, and it distils through the same recipe section with no model-specific code. Writes
benchmarks/results/distill-<host>.json (rows of models not run this time are kept, each with its date) and prints
the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, run_py  # noqa: E402

DIGITS = ROOT / "recipes" / "digits"
VARIANTS = ["tflite-fp32", "tflite-int8"]
MEASURE = {"latency": {"warmup": 2, "runs": 20}, "cold_start": {"runs": 1}}
SETTINGS = {"digits": {"width": 0.4, "epochs": 80, "patience": 10},
            "mobilenetv2": {"width": 0.5, "epochs": 30, "patience": 5}}

# keras.applications.MobileNetV2 at alpha 0.35 and 32x32, 10 classes, trained briefly on patterned noise.
MNV2 = """
import sys, keras, numpy as np
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
patterns = rng.uniform(-1, 1, (10, 32, 32, 3)).astype('float32')
def draw(n):
    y = rng.integers(0, 10, n)
    return np.clip(0.6 * patterns[y] + rng.normal(0, 0.6, (n, 32, 32, 3)), -1, 1).astype('float32'), y
m = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)
for layer in m.layers:  # its batch statistics settle within a brief training (the default 0.999 needs thousands of steps)
    if isinstance(layer, keras.layers.BatchNormalization):
        layer.momentum = 0.9
m.compile(optimizer=keras.optimizers.Adam(2e-3), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
x_train, y_train = draw(3000)
m.fit(x_train, y_train, epochs=6, batch_size=64, verbose=0)
x, y = draw(600)
m.save(sys.argv[1] + '/mnv2.keras')
np.savez(sys.argv[1] + '/mnv2.npz', x=x, y=y, x_train=x_train, y_train=y_train)
print('RESULT {}')
"""


def recipe(work: Path, name: str, model: Path, data: Path, evaluation: int, distill: dict | None) -> Path:
    optimize: dict = {"variants": VARIANTS}
    if distill is not None:
        optimize["distill"] = distill
    doc = {"name": name, "model": {"path": str(model)},
           "data": {"path": str(data), "inputs": "x", "labels": "y", "evaluation": evaluation, "calibration": 200,
                    "train": {"inputs": "x_train", "labels": "y_train"}},
           "task": "classification", "optimize": optimize, "measure": MEASURE}
    path = work / f"{name}-{'distill' if distill else 'plain'}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def timed_bench(path: Path, cache: Path) -> tuple[dict, float]:
    from modelpack import bench
    from modelpack.console.progress import Reporter

    t = time.perf_counter()
    report = bench(path, cache_dir=cache, reporter=Reporter(quiet=True))
    return report.to_json(), time.perf_counter() - t


def measure(name: str, model: Path, data: Path, evaluation: int, work: Path) -> dict:
    settings = SETTINGS[name]
    plain, plain_s = timed_bench(recipe(work, name, model, data, evaluation, None), work / f"{name}-cache-plain")
    doc, distill_s = timed_bench(recipe(work, name, model, data, evaluation, settings), work / f"{name}-cache")
    by = {v["name"]: v for v in doc["variants"]}
    failed = [f"{n}: {v['error']}" for n, v in by.items() if v["status"] != "ok"]
    if failed:
        raise SystemExit(f"{name}: variants failed: {failed}")
    d = doc["distill"]
    teacher_fp32, student_int8 = by["tflite-fp32"]["size_bytes"], by["distilled-tflite-int8"]["size_bytes"]
    return {
        "model": name, "settings": settings, "teacher_params": d["teacher"]["params"],
        "student_params": d["student"]["params"], "params_ratio": d["teacher"]["params"] / d["student"]["params"],
        "teacher_accuracy": d["teacher"]["accuracy"], "student_accuracy": d["student"]["accuracy"],
        "student_int8_accuracy": by["distilled-tflite-int8"]["accuracy"],
        "accuracy_drop_points": 100 * (d["teacher"]["accuracy"] - d["student"]["accuracy"]),
        "int8_accuracy_drop_points": 100 * by["distilled-tflite-int8"]["accuracy_drop"],
        "student_agreement": d["student"]["agreement"], "teacher_keras_bytes": d["teacher"]["size_bytes"],
        "teacher_tflite_fp32_bytes": teacher_fp32, "teacher_tflite_int8_bytes": by["tflite-int8"]["size_bytes"],
        "student_tflite_int8_bytes": student_int8, "int8_vs_float_teacher": teacher_fp32 / student_int8,
        "epochs_run": d["epochs_run"], "best_epoch": d["best_epoch"], "training_s": d["seconds"],
        "build_s": {"plain": plain_s, "distill": distill_s, "added": distill_s - plain_s},
        "plain_int8_accuracy": {v["name"]: v["accuracy"] for v in plain["variants"]}.get("tflite-int8"),
    }


def table(rows: list[dict]) -> str:
    out = ["| model | params: model / student (x fewer) | accuracy: model / student / student INT8 (drop, points) "
           "| model fp32 .tflite / student INT8 .tflite (x smaller) | epochs (best) | added build s (training s) |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['teacher_params']:,} / {r['student_params']:,} ({r['params_ratio']:.1f}x) | "
                   f"{r['teacher_accuracy']:.4f} / {r['student_accuracy']:.4f} / {r['student_int8_accuracy']:.4f} "
                   f"({r['accuracy_drop_points']:.2f} / {r['int8_accuracy_drop_points']:.2f}) | "
                   f"{r['teacher_tflite_fp32_bytes'] / 1e3:.1f} KB / {r['student_tflite_int8_bytes'] / 1e3:.1f} KB "
                   f"({r['int8_vs_float_teacher']:.1f}x) | {r['epochs_run']} ({r['best_epoch']}) | "
                   f"{r['build_s']['added']:.1f} ({r['training_s']:.1f}) |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="digits,mobilenetv2")
    ap.add_argument("--host", default="vm", help="names the results file: results/distill-HOST.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="distill-bench-") as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            if name == "digits":
                rows.append(measure("digits", DIGITS / "model.keras", DIGITS / "digits.npz", 340, work))
            elif name == "mobilenetv2":
                run_py(MNV2, str(work), flags=())
                rows.append(measure("mobilenetv2", work / "mnv2.keras", work / "mnv2.npz", 400, work))
            else:
                raise SystemExit(f"unknown model {name}: digits or mobilenetv2")
            print(table(rows[-1:]), flush=True)
    out = ROOT / "benchmarks" / "results" / f"distill-{args.host}.json"
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for r in rows:
        r["date"] = now
    earlier = json.loads(out.read_text())["models"] if out.exists() else []
    fresh = {r["model"] for r in rows}
    rows = [r for r in earlier if r["model"] not in fresh] + rows
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "command": "python benchmarks/distill.py", "models": rows}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(rows))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
