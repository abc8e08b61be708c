"""optimize.distill end to end on the digits model: refused without a training split; with one, a student derived at
half width is trained, converted to tflite-int8 beside the model's own, measured against the labels and the model,
selected, packaged, and answers through the built Lambda handler as its variant file does; training it again gives
the same weights."""

from __future__ import annotations

import json
import zipfile

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.host.interpreters import host_arch, host_python
from modelpack.recipe.loader import load_recipe
from modelpack.report.build_report import SCHEMA_FILE
from modelpack.steps import StepJob
from modelpack.steps.distill import DistillStep
from modelpack.steps.worker import run_jobs
from tests.helpers.builds import Dist, run_build, variant_predictions, write_digits_recipe
from tests.helpers.paths import DIGITS

pytestmark = pytest.mark.slow


def test_distilled_variant_is_built_selected_and_served(tmp_path):
    no_train = write_digits_recipe(tmp_path / "no-train.yaml", optimize={"variants": ["tflite-int8"],
                                                                         "distill": {"width": 0.5}},
                                   data={"path": str(DIGITS / "digits.npz"), "evaluation": 0.7, "calibration": 0.3})
    refused = CliRunner().invoke(cli, ["build", str(no_train), "--out", str(tmp_path / "o"), "--no-cache"])
    assert refused.exit_code == 2, refused.output
    assert "optimize.distill trains a student" in refused.output and "data.train" in refused.output

    targets = [{"kind": "lambda-layer", "python": host_python(), "arch": host_arch()},
               {"kind": "lambda-function", "memory_mb": 512}]
    recipe = write_digits_recipe(tmp_path / "recipe.yaml", targets=targets, select="smallest",
                                 optimize={"variants": ["tflite-int8"],
                                           "distill": {"width": 0.5, "epochs": 12, "patience": 3}},
                                 budgets={"max_accuracy_drop": 0.08, "min_agreement": 0.85})
    report = run_build(recipe, tmp_path / "out", tmp_path / "cache")
    jsonschema.validate(report, json.loads(SCHEMA_FILE.read_text()), cls=jsonschema.Draft202012Validator)
    by = {v["name"]: v for v in report["variants"]}
    student, plain = by["distilled-tflite-int8"], by["tflite-int8"]
    assert student["status"] == "ok" and student["format"] == "tflite" and student["quantization"] == "int8"
    d = report["distill"]
    assert d["teacher"]["params"] == 34394 and d["student"]["params"] * 3 < d["teacher"]["params"]
    assert d["variants"] == {"tflite-int8": "distilled-tflite-int8"}
    assert 1 <= d["epochs_run"] <= 12 and 1 <= d["best_epoch"] <= d["epochs_run"] == len(d["curve"])
    assert d["curve"][d["best_epoch"] - 1]["val_loss"] == min(c["val_loss"] for c in d["curve"])
    # Measured like any variant: accuracy against the labels, fidelity against the model (not the student).
    assert 0.9 <= student["accuracy"] <= 1 and student["accuracy_drop"] == pytest.approx(
        by["keras"]["accuracy"] - student["accuracy"])
    assert 0.85 <= student["fidelity"]["agreement"] < 1
    assert student["size_bytes"] < plain["size_bytes"] / 2
    assert report["selected"] == "distilled-tflite-int8"
    md = (tmp_path / "out" / "report.md").read_text()
    assert "### Distillation (width 0.5" in md and "| parameters | 34,394 |" in md
    assert (tmp_path / "out" / "distill.png").stat().st_size > 1000

    fn = next(a for a in report["artifacts"] if a["target"] == "lambda-function")["details"]
    assert fn["handler_check"]["max_abs_err_vs_variant"] <= 1e-5
    out = tmp_path / "out"
    event = out / "events" / "predict.json"
    result = CliRunner().invoke(cli, ["invoke", str(out), "-e", str(event), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.splitlines()[0])
    assert answer["http_status"] == 200, answer
    assert answer["response"]["model"]["name"] == "digits"  # a direct invocation: the handler's answer as it is
    served = np.asarray(answer["response"]["predictions"], dtype=np.float32)
    x = np.asarray(json.loads(event.read_text())["instances"], dtype=np.float32)
    dist = Dist(out, recipe, tmp_path / "cache", report, "distilled-tflite-int8")
    np.testing.assert_allclose(served, variant_predictions(dist, x), atol=1e-5)

    # Same recipe and data, same student: the step run twice more (in one worker) trains the very same weights.
    with np.load(DIGITS / "digits.npz") as npz:
        np.savez(tmp_path / "train.npz", in_0=npz["x_train"], labels=npz["y_train"])
    options = DistillStep().options(load_recipe(recipe))
    jobs = [StepJob("distill", str(DIGITS / "model.keras"), "keras3", str(tmp_path / name), options,
                    data={"training": str(tmp_path / "train.npz")}) for name in ("first", "second")]
    results = run_jobs(jobs, tmp_path / "worker.log")
    first, second = (results[j.out_dir] for j in jobs)
    losses = [[(c["loss"], c["val_loss"]) for c in r["details"]["curve"]] for r in (first, second)]
    assert first["ok"] and second["ok"] and losses[0] == losses[1], (first, second)
    with zipfile.ZipFile(tmp_path / "first" / "student.keras") as a, zipfile.ZipFile(
            tmp_path / "second" / "student.keras") as b:
        assert a.read("model.weights.h5") == b.read("model.weights.h5")
