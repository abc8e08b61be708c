"""Pruning reaches its target sparsity; a converter process that dies takes only its own job with it."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.steps import StepJob
from modelpack.steps.worker import run_jobs
from tests.helpers.paths import DIGITS
from tests.helpers.processes import children

pytestmark = pytest.mark.slow


def test_prune_reaches_target_and_shrinks_zip(digits_recipe, tmp_path):
    recipe = digits_recipe(optimize={"variants": ["tflite-fp32", "tflite-int8"],
                                     "prune": {"final_sparsity": 0.6, "epochs": 2}},
                           budgets={"max_accuracy_drop": 0.06})
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    layers = report["prune"]["sparsity_by_layer"]
    for name in ("conv2d", "conv2d_1", "dense", "probs"):
        assert abs(layers[name] - 0.6) <= 0.02, layers
    by = {v["name"]: v for v in report["variants"]}
    assert by["tflite-fp32"]["pruned"] is True and by["keras"]["pruned"] is False
    assert by["tflite-fp32"]["status"] == "ok"  # matches the pruned Keras model within 1e-4
    # Raw size barely moves; zipped size drops: the report states both.
    assert by["tflite-fp32"]["zipped_bytes"] < 0.75 * by["tflite-fp32"]["size_bytes"]
    assert "### Pruning" in (out / "report.md").read_text()


def test_prune_without_training_samples_is_a_recipe_error(digits_recipe, tmp_path):
    recipe = digits_recipe(data={"path": str(DIGITS / "digits.npz"), "evaluation": 0.7, "calibration": 0.3},
                           optimize={"variants": ["tflite-fp32"], "prune": {"final_sparsity": 0.5}})
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp_path / "o"), "--no-cache"])
    assert result.exit_code == 2, result.output
    assert "optimize.prune fine-tunes the model" in result.output and "data.train" in result.output
    assert not (tmp_path / "o").exists()


def test_killed_converter_fails_only_its_job(tmp_path):
    model = str(DIGITS / "model.keras")
    jobs = [StepJob("inspect", model, "keras3", str(tmp_path / name)) for name in ("first", "second")]
    results: dict = {}
    runner = threading.Thread(target=lambda: results.update(run_jobs(jobs, tmp_path / "worker.log")))
    runner.start()
    deadline = time.time() + 120
    while not (tmp_path / "first" / ".started").exists():
        assert time.time() < deadline
        time.sleep(0.05)
    workers = children(os.getpid(), b"modelpack.steps.worker")  # this test's own worker, no other process's
    assert len(workers) == 1, workers
    os.kill(workers[0], signal.SIGKILL)
    runner.join(300)
    first, second = results[jobs[0].out_dir], results[jobs[1].out_dir]
    assert first["ok"] is False and "crashed" in first["error"] and "-9" in first["error"]
    assert second["ok"] is True and second["details"]["params"] == 34394


def test_structured_pruning_entropy_calibration_and_data_function(digits_recipe, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "fixtures" / "pydata"))
    recipe = digits_recipe(
        data={"path": "digits_data:load", "inputs": "images", "labels": "digit", "evaluation": 300,
              "calibration": 100, "train": {"inputs": "train_images", "labels": "train_digit"}},
        optimize={"variants": ["onnx-int8"], "int8": {"calibration_method": "entropy", "per_channel": False},
                  "prune": {"final_sparsity": 0.5, "schedule": "constant", "m_by_n": "2:4", "epochs": 2}},
    )
    data = __import__("yaml").safe_load(recipe.read_text())
    data["measure"]["top_k"] = 3
    recipe.write_text(__import__("yaml").safe_dump(data))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["evaluation"] == 300
    layers = report["prune"]["sparsity_by_layer"]
    for name in ("conv2d_1", "dense", "probs"):  # 2:4 keeps two of every four weights along input channels
        assert abs(layers[name] - 0.5) <= 0.02, layers
    v = report["variants"][1]
    assert v["name"] == "onnx-int8" and v["status"] == "ok" and v["details"]["method"] == "entropy"
    assert v["accuracy_top_k"]["k"] == 3 and v["accuracy_top_k"]["value"] >= v["accuracy"]
