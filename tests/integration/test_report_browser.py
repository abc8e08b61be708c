"""report.html in a real browser (headless Chromium): it loads with no request besides itself, renders every section,
and its charts read true in the screenshot a person would see: bars from 0 on a linear axis, budget lines inside
the chart's frame, the selected variant ringed without hiding another."""

from __future__ import annotations

import copy
import json
import re

import pytest

from modelpack.report import charts
from modelpack.report.charts import write_charts
from modelpack.report.html import to_html
from tests.helpers.browser import bars, check_in_browser, solid_runs, visit
from tests.helpers.paths import FIXTURES

pytestmark = pytest.mark.slow
DOC = json.loads((FIXTURES / "reports" / "digits.json").read_text())
REASON = ("StepError: the model cannot run inputs of shape image (1, 8, 8, 3) (too short for its layers?): "
          "tensorflow/lite/kernels/pooling.cc:80 the window is larger than the input. Node number 41 (AVERAGE_POOL_2D) "
          "failed to prepare.")


def test_stored_digits_report_in_chromium(tmp_path):
    doc = json.loads((FIXTURES / "reports" / "digits.json").read_text())
    page = tmp_path / "report.html"
    page.write_text(to_html(doc, write_charts(doc, tmp_path)))
    check_in_browser(page, tmp_path)


def _report(tmp_path) -> tuple[dict, dict]:
    """The digits report with one variant failed and a p95 budget just above the variants' latencies."""
    doc = copy.deepcopy(DOC)
    failed = next(v for v in doc["variants"] if v["name"] == "onnx-dynamic")
    failed.update(status="failed", error=REASON, latency_ms=None, cold_start_ms=None)
    top = max((v["latency_ms"] or {}).get("p95", 0) for v in doc["variants"] if v["name"] != "keras")
    for v in doc["variants"]:
        for b in v.get("budgets") or []:
            if b["name"] == "max_p95_ms":
                b["limit"] = round(top * 1.4, 4)
    for b in doc["budgets"]:
        if b["name"] == "max_p95_ms":
            b["limit"] = round(top * 1.4, 4)
    doc["notes"] = ["Data: 171 evaluation samples, fewer than asked."]
    return doc, write_charts(doc, tmp_path)


def test_what_a_person_sees_in_the_report(tmp_path):
    doc, drawn = _report(tmp_path)
    page = tmp_path / "report.html"
    page.write_text(to_html(doc, drawn))
    seen = visit(page, tmp_path, width=1280, height=4200)
    print(f"\nscreenshot: {seen.screenshot}")
    # Every section of report.md is on the page, the whole failure reason and the next steps included.
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", seen.dom))
    for heading in ("Variants", "Failures", "Budgets", "INT8 accuracy search", "Memory size and cost", "Artifacts",
                    "Notes", "Next steps"):
        assert f"{heading}" in text, heading
    assert "Node number 41 (AVERAGE_POOL_2D) failed to prepare." in text and "sam deploy --template-file" in text

    # cold.png: bars start at one x (the axis' 0) and their lengths are in the ratio of their times.
    cold = charts.cold_data(doc)["bars"]
    keras_ms = cold[0]["ms"]
    handler_ms = cold[-1]["ms"]
    (base,) = bars(seen.screenshot, charts.BASE, min_height=8)
    (handler,) = bars(seen.screenshot, charts.HANDLER, min_height=8)
    assert base[2] == handler[2], (base, handler)  # a common left edge: both bars start at 0
    ratio = (handler[3] - handler[2] + 1) / (base[3] - base[2] + 1)
    assert ratio == pytest.approx(handler_ms / keras_ms, abs=2 / (base[3] - base[2])), (ratio, handler_ms / keras_ms)

    # report.png: the p95 budget is a dashed line inside the frame, not on its border.
    purple = solid_runs(seen.screenshot, "#8250df", min_width=4, tolerance=20)  # anti-aliased dashes
    rows = {}
    for y, x0, x1 in purple:
        rows[y] = rows.get(y, 0) + x1 - x0 + 1
    line_y = max(rows, key=rows.get)
    assert rows[line_y] > 200  # dashes across the plot's width
    frame = [y for y, x0, x1 in solid_runs(seen.screenshot, "#000000", min_width=300, tolerance=40)
             if y < line_y]
    top = max(frame)  # the frame's top edge above the line
    assert line_y - top >= 5, (line_y, top)
