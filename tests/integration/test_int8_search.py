"""Accuracy-aware INT8 on a model built to break plain INT8 (tests/fixtures/outlier/make.py)."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from tests.helpers.paths import FIXTURES

pytestmark = pytest.mark.slow
OUTLIER = FIXTURES / "outlier"


def _build(tmp_path, budgets: dict, search: dict | None = None):
    recipe = {
        "name": "outlier",
        "model": {"path": str(OUTLIER / "model.keras")},
        "data": {"path": str(OUTLIER / "data.npz"), "calibration": 200, "evaluation": 400},
        "optimize": {"variants": ["tflite-int8", "onnx-int8"], **({"search": search} if search else {})},
        "measure": {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1}},
        "budgets": budgets,
        "targets": [{"kind": "lambda-function"}],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    report = json.loads((out / "report.json").read_text())
    return result, report, out


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("tight"), {"max_accuracy_drop": 0.03, "min_agreement": 0.95})


def test_plain_int8_breaks_the_budget(tight):
    _, report, _ = tight
    by = {v["name"]: v for v in report["variants"]}
    for plain in ("tflite-int8", "onnx-int8"):
        assert by[plain]["accuracy_drop"] > 0.5 and not by[plain]["budgets_passed"]


@pytest.mark.parametrize("plain", ["onnx-int8", "tflite-int8"])
def test_mixed_variant_meets_the_budget_with_few_float_ops(tight, plain):
    result, report, _ = tight
    assert result.exit_code == 0, result.output
    search = next(s for s in report["search"] if s["variant"] == plain)
    mixed = {v["name"]: v for v in report["variants"]}[f"{plain}-mixed"]
    assert search["passed"] is True and search["result"] == f"{plain}-mixed"
    assert 1 <= len(search["float_nodes"]) <= 3, search["float_nodes"]
    assert any("outlier" in n for n in search["float_nodes"])  # the layer with the extreme channel
    # The variant was fully measured like any other and meets every budget on its own measurement.
    assert mixed["status"] == "ok" and mixed["budgets_passed"] and mixed["accuracy_drop"] <= 0.03
    assert mixed["details"]["float_nodes"] == search["float_nodes"]
    # Every trial is recorded; float operations stop being added once the budgets hold.
    trials = search["trials"]
    assert [t["trial"] for t in trials] == list(range(len(trials)))
    assert all({"accuracy", "agreement", "size_bytes", "p50_ms", "passed"} <= set(t) for t in trials)
    passing = [t for t in trials if t["passed"]]
    assert min(len(t["float_nodes"]) for t in passing) == len(search["float_nodes"])
    fewer = [t for t in trials if t["float_nodes"] and len(t["float_nodes"]) < len(search["float_nodes"])]
    assert all(not t["passed"] for t in fewer)
    assert not any(t["passed"] for t in trials if not t["float_nodes"])  # calibration alone cannot fix it
    if plain == "tflite-int8":  # int16 activations (16x8) are tried after calibration, before float operations
        int16 = [t for t in trials if t.get("activations") == "int16"]
        assert len(int16) == 1 and not int16[0]["float_nodes"] and "refused" not in int16[0]
        assert int16[0]["accuracy"] is not None and int16[0]["size_bytes"] > 0 and not int16[0]["passed"]
        assert all(t["trial"] > int16[0]["trial"] for t in trials if t["float_nodes"])
        assert all(t["activations"] == "int8" for t in trials if t["float_nodes"])


def test_selected_mixed_variant_is_packaged(tight):
    _, report, out = tight
    assert report["selected"].endswith("-int8-mixed")
    assert (out / "variants" / f"{report['selected']}{'.onnx' if 'onnx' in report['selected'] else '.tflite'}").exists()
    assert any(a["target"] == "lambda-function" for a in report["artifacts"])
    md = (out / "report.md").read_text()
    assert "INT8 accuracy search (onnx-int8)" in md and "Kept in float:" in md
    assert "| activations |" in md and "| int16 |" in md  # the 16x8 trial in the search table


def test_search_out_of_trials_reports_the_closest(tmp_path):
    result, report, _ = _build(tmp_path, {"max_accuracy_drop": 0.0},
                               {"max_trials": 2, "calibration_methods": ["minmax"], "per_channel": [True]})
    assert result.exit_code == 1, result.output  # no variant meets the budget: reported, not crashed
    assert "Traceback" not in result.output
    for search in report["search"]:
        assert search["passed"] is False and len(search["trials"]) == 2
        assert search["stopped"] == "stopped at max_trials (2)"
        assert "no trial met the accuracy budgets" in search["outcome"] and "closest trial" in search["outcome"]
    tflite = next(s for s in report["search"] if s["variant"] == "tflite-int8")
    assert [t.get("activations") for t in tflite["trials"]] == ["int8", "int16"]  # try_16x8 is on by default
    names = {v["name"] for v in report["variants"]}
    assert {"onnx-int8-mixed", "tflite-int8-mixed"} <= names
    assert report["selected"] is None and report["closest"]
