"""report.md, report.html and the charts, rendered from a stored report.json of the digits example."""

from __future__ import annotations

import copy
import html
import json
import re

import pytest

from modelpack.report import charts
from modelpack.report.html import to_html
from modelpack.report.markdown import to_markdown
from tests.helpers.paths import FIXTURES

DOC = json.loads((FIXTURES / "reports" / "digits.json").read_text())


@pytest.fixture
def doc() -> dict:
    return copy.deepcopy(DOC)


def failing(doc: dict) -> dict:
    """The same report with onnx-dynamic over a p95 budget and the build failed."""
    v = next(v for v in doc["variants"] if v["name"] == "onnx-dynamic")
    v["budgets_passed"] = False
    v["budgets"] = [{**b, "passed": b["name"] != "max_p95_ms"} for b in v["budgets"]]
    doc["budgets"][-1]["passed"] = False
    doc["passed"] = False
    return doc


def test_markdown_is_safe_for_a_step_summary_and_has_every_section(doc):
    md = to_markdown(doc)
    assert "![" not in md and not re.search(r"\]\((?!https?:)", md)  # no image, no link to a file beside it
    for title in ("| variant |", "### Budgets (tflite-dynamic)", "### INT8 accuracy search (onnx-int8)",
                  "### Memory size and cost (tflite-dynamic)", "### Artifacts", "Cold start: 3,619 ms (Keras) → 70 ms"):
        assert title in md
    header = next(line for line in md.splitlines() if line.startswith("| variant |"))
    assert "| p50 ms | p95 ms | p99 ms |" in header  # the example sets max_p95_ms
    row = next(line for line in md.splitlines() if line.startswith("| tflite-dynamic |"))
    assert row.count("|") == header.count("|")


def test_markdown_names_the_failed_budget(doc):
    md = to_markdown(failing(doc))
    assert "**FAILED**" in md and "FAIL: max_p95_ms" in md and "| max_p95_ms | 20 | 0.004775 | FAIL |" in md


def test_html_is_self_contained_and_marks_pass_fail_and_selection(doc, tmp_path):
    written = charts.write_charts(doc, tmp_path)
    page = to_html(failing(doc), written)
    assert sorted(written) == ["cold.png", "memory.png", "report.png"]
    srcs = re.findall(r"(?:src|href)='([^']*)'", page)
    assert srcs and all(s.startswith("data:") for s in srcs)
    # Nothing fetched from anywhere; the Next steps' commands (curl https://...) are text to copy, not resources.
    markup = re.sub(r"<pre><code>.*?</code></pre>", "", page, flags=re.S)
    assert "<pre><code>" in page and "http" not in markup.replace("http://www.w3.org", "")
    assert page.count("data:image/png;base64,") == 3
    assert "<tr class='selected'><td>tflite-dynamic</td>" in page
    assert "<td class='fail'>FAIL: max_p95_ms</td>" in page and "<td class='pass'>pass</td>" in page
    assert "class='status fail'>FAILED<" in page and "@media print" in page and "name='viewport'" in page
    for section in ("Budgets", "INT8 accuracy search", "Memory size and cost", "Artifacts", "Cold start:"):
        assert section in page


def test_scatter_colours_by_budget_and_keeps_far_budgets_off_the_axes(doc):
    data = charts.scatter_data(failing(doc))
    status = {p["name"]: p["status"] for p in data["points"]}
    assert status["keras"] == "baseline" and status["onnx-dynamic"] == "fail" and status["tflite-int8"] == "pass"
    assert data["budgets"] == {"max_zip_mb": 50.0, "max_p95_ms": 20.0}
    variants = [p for p in data["points"] if p["status"] != "baseline"]
    lo, hi = charts._linear_range([p["mb"] for p in variants], [50.0])
    assert lo == 0 and hi < 1 < 50  # the 50 MB budget stays an arrow instead of squashing every variant
    top = max(p["mb"] for p in variants)
    lo, hi = charts._linear_range([p["mb"] for p in variants], [top * 2])
    assert top * 2 < hi < top * 2.5  # a budget near the data is drawn inside the frame, with a margin beyond it
    assert not charts._accuracy_varies(data["points"])  # every variant has accuracy 0.9882: no colour bar


def test_every_latency_budget_is_drawn(doc, tmp_path):
    for v in doc["variants"]:
        v["budgets"] = v.get("budgets", []) + [{"name": "max_p50_ms", "limit": 0.01, "passed": True, "value": 0},
                                               {"name": "max_p99_ms", "limit": 0.05, "passed": True, "value": 0}]
    data = charts.scatter_data(doc)
    assert set(data["budgets"]) == {"max_zip_mb", "max_p50_ms", "max_p95_ms", "max_p99_ms"}
    charts.draw_scatter(data, tmp_path / "report.png")
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_cold_start_chart_has_baseline_variants_and_handler(doc):
    bars = charts.cold_data(doc)["bars"]
    assert bars[0] == {"name": "keras", "ms": pytest.approx(3619.38, abs=0.01), "kind": "baseline"}
    assert [b["kind"] for b in bars].count("selected") == 1
    assert bars[-1]["kind"] == "handler" and bars[-1]["ms"] == pytest.approx(83.52)


def test_charts_are_deterministic_and_cached(doc, tmp_path):
    from modelpack.files.cache import Cache

    cache = Cache(tmp_path / "cache")
    drawn = []
    for name, use in (("drawn", cache), ("from-cache", cache), ("drawn-again", None)):
        (tmp_path / name).mkdir()
        drawn.append({n: p.read_bytes() for n, p in charts.write_charts(doc, tmp_path / name, use).items()})
    assert drawn[0] == drawn[1] == drawn[2] and len(drawn[0]) == 3
    assert len(list((tmp_path / "cache").rglob("*.png"))) == 3


def test_a_failed_variant_shows_its_whole_reason_in_both_reports(doc):
    reason = ("StepError: the model cannot run inputs of shape image (1, 8, 8, 3) (too short for its layers?): "
              "tensorflow/lite/kernels/conv.cc:350 input->dims->data[1] >= filter height was not true. Node "
              "number 3 (CONV_2D) failed to prepare.")
    v = next(v for v in doc["variants"] if v["name"] == "onnx-int8")
    v.update(status="failed", error=reason)
    md, page = to_markdown(doc), to_html(doc, {})
    row = next(line for line in md.splitlines() if line.startswith("| onnx-int8 |"))
    assert row.endswith("... (see Failures) |") and reason not in row
    # report.md writes <, > and & as entities (GitHub shows them as the characters), so the reason reads whole.
    assert "### Failures" in md and f"- `onnx-int8`: {html.escape(reason, quote=False)}" in md
    assert "<h2 id='failures'>Failures</h2>" in page and "failed to prepare." in page


def test_html_has_every_section_of_markdown_next_steps_included(doc):
    from modelpack.report.next_steps import with_next_steps

    md, page = with_next_steps(to_markdown(doc), doc), to_html(doc, {})
    titles = [line.lstrip("#").strip() for line in md.splitlines() if line.startswith("## ") or
              line.startswith("### ")][1:]  # the first is the page title, the html's h1
    assert "Next steps" in titles
    for title in titles:
        assert re.sub(r"[`]", "", title) in re.sub(r"<[^>]+>", "", page), title
    assert "sam deploy --template-file" in page and "<pre><code>" in page


def test_regression_reports_name_their_metrics(doc):
    doc["task"] = {"name": "regression", "inferred": True, "why": "labels 'y' are fractional numbers",
                   "score": "negative mean absolute error (higher is better; regression.mae has the error itself)"}
    for i, v in enumerate(doc["variants"]):
        v["regression"] = {"mae": 1.5 + i / 100, "rmse": 2.0, "r2": 0.8, "mae_increase": i / 100}
    md = to_markdown(doc)
    header = next(line for line in md.splitlines() if line.startswith("| variant |"))
    assert "| MAE | Δ MAE | RMSE | R² | max err vs Keras |" in header and "accuracy" not in header
    row = next(line for line in md.splitlines() if line.startswith("| tflite-fp32 |"))
    assert "| 1.51 | +0.01 | 2 | 0.8000 |" in row
    assert "Task: **regression** (inferred from the labels" in md and "negative mean absolute error" in md
