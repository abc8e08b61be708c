"""A model big enough to take the large-model routes (one worker per conversion, ONNX without TensorFlow's weight
copies, TFLite in buffer-offset form and INT8 quantized in phases from the float32 variant) builds within bounded
memory, computes what the model computes, and report.json records the peak of every stage. The 0.5 GB and 1 GB
measurements live in benchmarks/large_model.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from modelpack import limits
from modelpack.files.output import zipped_size

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
STAGES = ["model", "inspect", "data", "source", "convert", "measure", "judge", "memory", "split", "report", "package"]

MAKE = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, keras
keras.utils.set_random_seed(0)
inp = keras.Input((64,), name="features")
x = inp
for _ in range(5):
    x = keras.layers.Dense(2048, activation="relu")(x)
keras.Model(inp, keras.layers.Dense(4, activation="softmax")(x)).save(sys.argv[1])
rng = np.random.default_rng(0)
np.savez(sys.argv[2], x=rng.normal(size=(60, 64)).astype("float32"), y=rng.integers(0, 4, 60))
"""


def test_a_large_model_builds_within_its_memory_bound_and_records_every_stage(tmp_path):
    model, data = tmp_path / "model.keras", tmp_path / "data.npz"
    subprocess.run([sys.executable, "-c", MAKE, str(model), str(data)], check=True, capture_output=True)
    size = model.stat().st_size
    assert size >= limits.LARGE_MODEL_BYTES  # the large-model routes, not the usual ones
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "large", "model": {"path": "model.keras"},
        "data": {"path": "data.npz", "inputs": "x", "labels": "y", "evaluation": 30, "calibration": 30},
        "optimize": {"variants": ["tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8"]},
        "measure": {"latency": {"warmup": 1, "runs": 5}, "cold_start": {"runs": 1}},
    }))
    out = subprocess.run([sys.executable, "-m", "modelpack", "-q", "build", str(recipe), "--out", str(tmp_path / "dist"),
                          "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads((tmp_path / "dist" / "report.json").read_text())
    variants = {v["name"]: v for v in report["variants"]}
    assert {n: v["status"] for n, v in variants.items()} == {"keras": "ok", "tflite-fp32": "ok", "tflite-int8": "ok",
                                                             "onnx-fp32": "ok", "onnx-int8": "ok"}
    # the large-model routes compute what Keras computes
    assert variants["onnx-fp32"]["fidelity"]["max_abs_err"] <= 1e-4
    assert variants["tflite-fp32"]["fidelity"]["max_abs_err"] <= 1e-4
    int8 = variants["tflite-int8"]
    assert int8["details"]["route"] == "in-phases" and int8["details"]["float_model"] == "tflite-fp32"
    assert int8["fidelity"]["agreement"] >= 0.9, int8["fidelity"]
    assert int8["size_bytes"] < variants["tflite-fp32"]["size_bytes"] / 3  # int8 weights, not float ones
    # ONNX INT8: pre-processed file to file, calibrated apart from quantizing (byte-identical to quantize_static's
    # own calibration, checked when this route was written)
    assert variants["onnx-int8"]["details"]["route"] == "in-phases"  # the ONNX file is big enough for that route
    assert variants["onnx-int8"]["fidelity"]["agreement"] >= 0.9, variants["onnx-int8"]["fidelity"]
    assert variants["onnx-int8"]["size_bytes"] < variants["onnx-fp32"]["size_bytes"] / 3
    for name in ("tflite-fp32", "tflite-int8"):  # deflated while the next variant converted, as its step named it
        as_converted = tmp_path / name / "model.tflite"
        as_converted.parent.mkdir()
        as_converted.symlink_to(tmp_path / "dist" / "variants" / f"{name}.tflite")
        assert variants[name]["zipped_bytes"] == zipped_size(as_converted)
    build = report["build"]
    # every stage that ran is recorded (a recipe without targets has nothing to package)
    assert set(build["peak_rss_mb"]) == set(build["seconds"])
    assert {"model", "inspect", "convert", "measure", "judge", "report"} <= set(build["peak_rss_mb"]) <= set(STAGES)
    bound = 3 * size / MIB + 1536
    assert 0 < build["peak_rss_mb_max"] <= bound, build
    assert build["peak_rss_mb"]["convert"] > size / MIB  # the record sees the worker, not just the CLI
