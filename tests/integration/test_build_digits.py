"""End to end on the shipped digits example: build, report contract, cache reuse, budgets and exit codes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.files.output import sha256_file
from tests.helpers.builds import write_digits_recipe
from tests.helpers.paths import DIGITS, FIXTURES
from tests.helpers.report_shape import differences, shape

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("digits")
    # The shipped recipe whole (every variant and target), with fewer measurement runs.
    recipe = write_digits_recipe(tmp / "recipe.yaml",
                                 measure={"latency": {"warmup": 2, "runs": 20}, "cold_start": {"runs": 1}})
    out, cache = tmp / "out", tmp / "cache"
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--cache-dir", str(cache)])
    return {"result": result, "out": out, "cache": cache, "recipe": recipe, "tmp": tmp}


def test_build_exit_0_and_outputs(built):
    assert built["result"].exit_code == 0, built["result"].output
    out = built["out"]
    assert {"report.json", "report.md", "manifest.json"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in built["tmp"].iterdir() if p.name.startswith(".out")] == []  # no staging left


def test_report_shows_the_int8_search_ending_at_once(built):
    """Plain INT8 already meets the digits budgets: the search is shown, with the plain variant as its only trial."""
    report = json.loads((built["out"] / "report.json").read_text())
    by = {s["variant"]: s for s in report["search"]}
    assert set(by) == {"tflite-int8", "onnx-int8"}
    for name, search in by.items():
        assert search["outcome"].startswith(f"ended at once: plain {name} already meets")
        assert search["result"] is None and search["passed"] is True
        assert [t["trial"] for t in search["trials"]] == [0] and search["trials"][0]["passed"] is True
    assert "INT8 accuracy search (onnx-int8)" in (built["out"] / "report.md").read_text()


def test_report_contract(built):
    report = json.loads((built["out"] / "report.json").read_text())
    for key in ("modelpack_version", "recipe", "passed", "selected", "model", "variants", "budgets", "artifacts"):
        assert key in report
    assert report["passed"] is True
    assert report["model"]["format"] == "keras3" and report["model"]["params"] == 34394
    assert len(report["model"]["sha256"]) == 64
    names = [v["name"] for v in report["variants"]]
    assert names[0] == "keras" and set(names[1:]) == {
        "tflite-fp32", "tflite-dynamic", "tflite-fp16", "tflite-int8", "onnx-fp32", "onnx-dynamic", "onnx-int8"}
    for v in report["variants"]:
        assert v["status"] == "ok", v
        for key in ("format", "quantization", "pruned", "size_bytes", "zipped_bytes", "accuracy", "fidelity",
                    "latency_ms", "cold_start_ms", "peak_rss_mb", "budgets_passed"):
            assert key in v
        assert {"p50", "p90", "p99"} <= set(v["latency_ms"])
        assert v["zipped_bytes"] > 0 and v["accuracy"] > 0.9
    by = {v["name"]: v for v in report["variants"]}
    assert by["keras"]["accuracy"] > 0.97
    for fp32 in ("tflite-fp32", "onnx-fp32"):
        assert by[fp32]["fidelity"]["max_abs_err"] < 1e-4
    for int8 in ("tflite-int8", "onnx-int8"):
        assert by[int8]["fidelity"]["agreement"] >= 0.95
        assert by[int8]["zipped_bytes"] < by["tflite-fp32"]["zipped_bytes"] / 2
    assert report["selected"] in by and report["selected"] != "keras"
    assert report["selected"] and by[report["selected"]]["budgets_passed"]
    names = {b["name"] for b in report["budgets"]}
    assert {n for n in names if not n.startswith("fits ")} == {"max_accuracy_drop", "min_agreement", "max_zip_mb",
                                                                "max_p95_ms"}
    # one row per target with a hard platform limit: what the selected model file can be carried by
    assert {n for n in names if n.startswith("fits ")} == {"fits lambda-function", "fits lambda-image(3.12)"}


def test_report_keeps_its_shape(built):
    """report.json of the shipped example, timings, sizes and digests aside, matches the committed golden file:
    a renamed, dropped or added key, or a changed non-timing value, fails here. After an intended change, write
    the new golden file with `tests.report_shape.shape(report)` and say why in the commit."""
    report = json.loads((built["out"] / "report.json").read_text())
    golden = json.loads((FIXTURES / "reports" / "digits.golden.json").read_text())
    assert differences(golden, shape(report)) == []


def test_report_matches_its_json_schema(built):
    import jsonschema

    from modelpack.report.build_report import SCHEMA_FILE, SCHEMA_VERSION

    report = json.loads((built["out"] / "report.json").read_text())
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert report["schema_version"] == SCHEMA_VERSION == schema["properties"]["schema_version"]["const"]
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    broken = {**report, "variants": [{**report["variants"][0], "latency_ms": "fast"}]}
    assert not jsonschema.Draft202012Validator(schema).is_valid(broken)


def test_report_reads_back_into_records(built):
    from modelpack.report.build_report import BuildReport

    report = json.loads((built["out"] / "report.json").read_text())
    assert BuildReport.from_json(report).to_json() == report


def test_manifest_matches_files(built):
    manifest = json.loads((built["out"] / "manifest.json").read_text())["files"]
    assert "report.json" in manifest
    for rel, entry in manifest.items():
        assert sha256_file(built["out"] / rel) == entry["sha256"]


def test_report_md_for_people(built):
    md = (built["out"] / "report.md").read_text()
    assert md.startswith("## modelpack: digits")
    assert "| variant | MB | zip MB |" in md and "| tflite-int8 |" in md and "### Budgets" in md


def test_rebuild_reuses_cache(built):
    out2 = built["tmp"] / "out2"
    result = CliRunner().invoke(cli, ["build", str(built["recipe"]), "--out", str(out2), "--cache-dir", str(built["cache"])])
    assert result.exit_code == 0, result.output
    assert "reused cached" in result.output
    for variant in ("tflite-int8.tflite", "onnx-int8.onnx"):
        assert sha256_file(built["out"] / "variants" / variant) == sha256_file(out2 / "variants" / variant)
    # Sizes come back with the cached measurements, unchanged.
    first = {v["name"]: v for v in json.loads((built["out"] / "report.json").read_text())["variants"]}
    again = json.loads((out2 / "report.json").read_text())["variants"]
    assert all(v["measurement"] == "reused from cache" for v in again if v["status"] == "ok")
    assert {v["name"]: (v["size_bytes"], v["zipped_bytes"]) for v in again} == {
        n: (v["size_bytes"], v["zipped_bytes"]) for n, v in first.items()}


def test_budget_failure_exit_1_report_written(built, tmp_path):
    import yaml

    data = yaml.safe_load(built["recipe"].read_text())
    data["budgets"] = {"max_p50_ms": 0.000001, "max_zip_mb": 0.045}
    data["optimize"] = {"variants": ["tflite-fp32", "tflite-int8"]}
    recipe = tmp_path / "tight.yaml"
    recipe.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--cache-dir", str(built["cache"])])
    assert result.exit_code == 1, result.output
    assert "budgets failed (max_p50_ms)" in result.output and "closest: tflite-int8" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is False and report["selected"] is None and report["closest"] == "tflite-int8"
    assert {b["name"]: b["passed"] for b in report["budgets"] if not b["name"].startswith("fits ")} == {
        "max_p50_ms": False, "max_zip_mb": True}


def test_bad_data_leaves_previous_output(built, tmp_path):
    import numpy as np
    import yaml

    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((10, 4, 4, 1), "float32"), y=np.zeros(10, "int64"))
    data = yaml.safe_load(built["recipe"].read_text())
    data["data"] = {"path": str(bad)}
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump(data))
    before = {p.name: sha256_file(p) for p in built["out"].iterdir() if p.is_file()}
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(built["out"]), "--cache-dir", str(built["cache"])])
    assert result.exit_code == 2, result.output
    assert "per-sample shape (4, 4, 1)" in result.output and "expects (8, 8, 1)" in result.output
    assert {p.name: sha256_file(p) for p in built["out"].iterdir() if p.is_file()} == before


def test_int8_io_is_dequantized_before_comparison(built, tmp_path):
    import yaml
    from ai_edge_litert.interpreter import Interpreter

    data = yaml.safe_load(built["recipe"].read_text())
    data["optimize"] = {"variants": ["tflite-int8"], "int8": {"io": "int8"}}
    data["budgets"] = {"min_agreement": 0.95}
    recipe = tmp_path / "int8io.yaml"
    recipe.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--cache-dir", str(built["cache"])])
    assert result.exit_code == 0, result.output
    interp = Interpreter(model_path=str(out / "variants" / "tflite-int8.tflite"))
    assert interp.get_input_details()[0]["dtype"].__name__ == "int8"
    assert interp.get_output_details()[0]["dtype"].__name__ == "int8"
    v = json.loads((out / "report.json").read_text())["variants"][1]
    assert v["fidelity"]["agreement"] >= 0.95 and v["fidelity"]["max_abs_err"] < 0.2


def test_bench_model_without_recipe(built):

    result = CliRunner().invoke(cli, ["bench", str(DIGITS / "model.keras"), "--data", str(DIGITS / "digits.npz"),
                                      "--variants", "tflite-int8,onnx-fp32", "--json",
                                      "--cache-dir", str(built["cache"])])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{"):])
    names = [v["name"] for v in payload["variants"]]
    assert names == ["keras", "tflite-int8", "onnx-fp32"]
    assert all(v["accuracy"] > 0.95 for v in payload["variants"])
    assert payload["selected"] in ("tflite-int8", "onnx-fp32")


def test_bench_table_and_bad_variant(built):

    bad = CliRunner().invoke(cli, ["bench", str(DIGITS / "model.keras"), "--variants", "tflite-int4"])
    assert bad.exit_code == 2 and "'tflite-int4' is not one of" in bad.output


def test_html_report_and_chart(built, tmp_path):
    from tests.helpers.browser import check_in_browser

    page = (built["out"] / "report.html").read_text()
    assert "<img src='data:image/png;base64," in page and "<td>tflite-int8</td>" in page
    for chart in ("report.png", "cold.png"):  # memory.png needs measure.memory, which this build leaves out
        assert (built["out"] / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    check_in_browser(built["out"] / "report.html", tmp_path, charts=("report", "cold"))  # the example's own
