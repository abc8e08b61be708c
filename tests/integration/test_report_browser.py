"""report.html in a real browser (headless Chromium): it loads with no request besides itself, and renders."""

from __future__ import annotations

import json

import pytest

from modelpack.report.charts import write_charts
from modelpack.report.html import to_html
from tests.helpers.browser import check_in_browser
from tests.helpers.paths import FIXTURES

pytestmark = pytest.mark.slow


def test_stored_digits_report_in_chromium(tmp_path):
    doc = json.loads((FIXTURES / "reports" / "digits.json").read_text())
    page = tmp_path / "report.html"
    page.write_text(to_html(doc, write_charts(doc, tmp_path)))
    check_in_browser(page, tmp_path)
