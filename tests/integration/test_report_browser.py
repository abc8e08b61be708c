"""report.html in a real browser (headless Chromium): it loads with no request besides itself, and renders."""

from __future__ import annotations

import json

import pytest

from modelpack.render.charts import write_charts
from modelpack.render.html import to_html
from tests.browser import visit
from tests.conftest import FIXTURES

pytestmark = pytest.mark.slow


def check_in_browser(page, tmp_path, charts=("report", "cold", "memory")) -> None:
    """Chromium loads `page` asking for nothing but the page itself, renders every section and chart, prints."""
    seen = visit(page, tmp_path)
    print(f"\nreport.html screenshot: {seen.screenshot}\nprinted: {seen.pdf}")
    assert seen.requests == [f"GET http://report.test/{page.name}"] * 3, seen.requests  # no other, none failed
    sections = ["variants", "budgets", "artifacts"] + (["memory"] if "memory" in charts else [])
    for anchor in [f'id="{s}"' for s in sections] + [f'id="{c}-chart"' for c in charts]:
        assert anchor in seen.dom
    assert seen.dom.count("src=\"data:image/png;base64,") == len(charts)
    assert seen.screenshot.read_bytes()[:4] == b"\x89PNG" and seen.screenshot.stat().st_size > 50_000
    assert seen.pdf.read_bytes()[:5] == b"%PDF-"


def test_stored_digits_report_in_chromium(tmp_path):
    doc = json.loads((FIXTURES / "reports" / "digits.json").read_text())
    page = tmp_path / "report.html"
    page.write_text(to_html(doc, write_charts(doc, tmp_path)))
    check_in_browser(page, tmp_path)
