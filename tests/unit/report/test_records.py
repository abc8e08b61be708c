"""The typed records keep report.json's form: optional keys absent when unset, internal fields never written."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpack.errors import PruneError, SplitError
from modelpack.recipe.models import Int8Spec
from modelpack.report.build_report import SCHEMA_VERSION, BuildReport
from modelpack.report.records import ArtifactRecord, Int8Setting, StepResult, VariantRecord


def test_a_failed_variant_has_no_measurement_or_path_keys():
    v = VariantRecord("onnx-int8", "onnx", "int8", file=Path("/work/model.onnx"))
    v.fail("ValueError: no")
    d = v.to_json()
    assert d["status"] == "failed" and d["error"] == "ValueError: no"
    assert not {"measurement", "accuracy_top_k", "regression", "path", "file"} & set(d)
    assert d["fidelity"] == {"agreement": None, "max_abs_err": None, "mean_abs_err": None}
    with pytest.raises(KeyError):
        v["file"]
    assert v.get("path") is None and "path" not in v and "status" in v
    assert VariantRecord.from_json(d).to_json() == d


def test_a_variant_reads_like_its_json():
    v = VariantRecord("tflite-int8", "tflite", "int8", latency_ms={"p50": 0.5}, path="variants/tflite-int8.tflite")
    assert v["latency_ms"]["p50"] == v.p50_ms == 0.5 and v["path"] == v.to_json()["path"]


def test_report_json_carries_its_schema_version():
    report = BuildReport("0.1.0", "recipe.yaml", "x", {}, {}, variants=[VariantRecord("keras", "keras", "none")])
    d = report.to_json()
    assert d["schema_version"] == SCHEMA_VERSION and d["steps"] == [] and d["passed"] is False
    assert d["variants"][0]["name"] == "keras"
    assert BuildReport.from_json(d).to_json() == d


def test_step_results_name_their_error_type():
    res = StepResult.from_json({"ok": False, "error": "SplitError: no cut", "error_type": "SplitError",
                                "message": "no cut"})
    assert res.is_error(SplitError) and not res.is_error(PruneError) and res.message == "no cut"
    legacy = StepResult.from_json({"ok": False, "error": "crashed"})  # a crash, or a result from before `message`
    assert legacy.message == "crashed" and legacy.error_type is None
    ok = StepResult.from_json({"ok": True, "details": {"a": 1}}, "/cache/x", cached=True)
    assert ok.dir == Path("/cache/x") and ok.cached and not ok.is_error(SplitError)


def test_one_int8_setting_from_recipe_to_step_and_trial():
    setting = Int8Setting.from_recipe(Int8Spec(calibration_method="entropy", per_channel=False))
    assert setting.to_options() == {"method": "entropy", "per_channel": False}  # a plain variant's details
    assert setting.to_trial() == {"calibration": "entropy", "per_channel": False}  # a search trial
    assert Int8Setting.from_options(setting.to_options()) == setting == Int8Setting.from_trial(setting.to_trial())
    # TFLite has no calibration choice; its trials name their activations (int16: the search's 16x8 trial).
    assert Int8Setting(None, True).to_trial() == {"per_channel": True, "activations": "int8"}
    int16 = Int8Setting(None, True, "int16")
    assert Int8Setting.from_trial(int16.to_trial()) == int16 and int16.to_trial()["activations"] == "int16"


def test_artifacts_keep_details_only_when_there_are_some():
    bare = ArtifactRecord("lambda-function", "lambda/template.yaml", "0" * 64, 10)
    assert "details" not in bare.to_json() and ArtifactRecord.from_json(bare.to_json()) == bare
