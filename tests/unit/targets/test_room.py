"""What the targets can carry, known before packaging: a variant no target can package is never selected, the
report says what fits and how a big one could be served, and a target over its limit still leaves a report."""

from __future__ import annotations

from modelpack import limits
from modelpack.errors import PackageLimitError
from modelpack.judge.select import select
from modelpack.pipeline.stages.judge import check_budgets, misfit_notes
from modelpack.pipeline.stages.package import over_limit
from modelpack.recipe.models import Budgets
from modelpack.recipe.targets import LambdaFunctionSpec, LambdaImageSpec, LambdaLayerSpec
from modelpack.report.build_report import BuildReport
from modelpack.report.records import VariantRecord
from modelpack.targets import lambda_limits, room

MB = limits.MB


def function(**options) -> LambdaFunctionSpec:
    return LambdaFunctionSpec(kind="lambda-function", **options)


def test_rooms_of_the_targets_with_hard_limits():
    layer = LambdaLayerSpec(kind="lambda-layer", python="3.12", arch="x86_64")
    image = LambdaImageSpec(kind="lambda-image", python="3.12")
    assert room.rooms([layer, function(), image]) == [("lambda-function", limits.LAMBDA_UNZIPPED_TOTAL_BYTES),
                                                      (image.identity(), limits.LAMBDA_IMAGE_BYTES)]
    # A model downloaded at cold start is not packaged: no limit.
    assert room.rooms([function(model_source="s3://bucket/model.tflite")]) == []
    in_layer = LambdaLayerSpec(kind="lambda-layer", python="3.12", arch="x86_64", model_in="layer")
    assert room.rooms([in_layer]) == [(in_layer.identity(), limits.LAMBDA_UNZIPPED_TOTAL_BYTES)]


def variant(name: str, size_mb: float, accuracy: float) -> VariantRecord:
    return VariantRecord(name, "tflite", "none", size_bytes=int(size_mb * MB), zipped_bytes=int(size_mb * MB),
                         accuracy=accuracy, latency_ms={"p50": 10.0}, cold_start_ms={"p50": 100.0})


def test_the_most_accurate_variant_that_does_not_fit_is_passed_over_and_the_report_says_why():
    rooms = room.rooms([function()])
    big, small = variant("onnx-fp32", 484.0, 0.91), variant("onnx-int8", 121.0, 0.90)
    for v in (big, small):
        check_budgets(v, Budgets(), rooms)
    assert [(b["name"], b["passed"]) for b in big.budgets] == [("fits lambda-function", False)]
    assert small.budgets_passed and not big.budgets_passed
    chosen, reason, _ = select([big, small], "most-accurate")
    assert chosen == "onnx-int8"
    [note] = misfit_notes([big, small])
    assert "onnx-fp32 (484.0 MB) is larger than lambda-function can carry" in note
    assert "variants whose model file fits (the runtime beside it is checked when the target is built): onnx-int8 (121.0 MB)" in note and "lambda-image" in note and "model_source" in note


def test_nothing_fits_selects_nothing_and_names_the_closest():
    rooms = room.rooms([function()])
    variants = [variant("tflite-fp32", 484.0, 0.91), variant("tflite-int8", 300.0, 0.90)]
    for v in variants:
        check_budgets(v, Budgets(), rooms)
    chosen, reason, closest = select(variants, "smallest")
    assert chosen is None and closest == "tflite-int8" and reason == "no variant meets every budget"
    assert "checked when the target is built): none of the variants" in misfit_notes(variants)[0]


def test_a_variant_over_its_own_budget_gets_no_misfit_note():
    rooms = room.rooms([function()])
    big = variant("onnx-fp32", 484.0, 0.91)
    check_budgets(big, Budgets(max_model_mb=100), rooms)
    assert misfit_notes([big]) == []  # it fails the recipe's own budget anyway


def test_over_a_platform_limit_is_a_failed_budget_and_a_note_not_a_crash():
    try:
        lambda_limits.enforce(None, "lambda-function", 300 * MB, {"function.zip": 1}, layers=1)
    except PackageLimitError as exc:
        error = exc
    report = BuildReport("0", "r.yaml", "big", {}, {}, selected="tflite-fp32")
    over_limit(report, "lambda-function", error)
    assert not report.passed
    assert report.budgets == [{"name": "fits lambda-function", "limit": limits.LAMBDA_UNZIPPED_TOTAL_BYTES / MB,
                               "value": 300.0, "passed": False}]
    assert "over Lambda's limit" in report.notes[0] and "lambda-image" in report.notes[0]
