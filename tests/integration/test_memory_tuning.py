"""Memory tuning on the digits example: the table, the chart, the recommendation in the SAM template."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from tests.helpers.builds import SMALL_MEASURE, write_digits_recipe

pytestmark = pytest.mark.slow


def test_memory_table_chart_and_auto_size(tmp_path):
    recipe = write_digits_recipe(
        tmp_path / "recipe.yaml", optimize={"variants": ["tflite-int8"]},
        measure={**SMALL_MEASURE, "memory": {"sizes_mb": [256, 1769], "runs": 50, "cold_runs": 2}},
        targets=[{"kind": "lambda-function", "memory_mb": "auto"}])
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    rows = {r["memory_mb"]: r for r in report["memory"]["rows"]}
    assert rows[256]["duty_cycled"] is True and rows[1769]["duty_cycled"] is False
    # A seventh of a vCPU makes the cold start (import, load, first run) clearly slower.
    assert rows[256]["cold_start_ms"] > 2 * rows[1769]["cold_start_ms"]
    assert "SIGSTOP" in report["memory"]["method"]
    rec = report["memory"]["recommendations"]
    assert rec["balanced"] in rows
    template = yaml.safe_load((out / "lambda" / "template.yaml").read_text())
    assert template["Resources"]["ModelFunction"]["Properties"]["MemorySize"] == rec["balanced"]
    md = (out / "report.md").read_text()
    assert "### Memory size and cost" in md and "CPU share emulated" in md and "memory.png" not in md
    assert "id='memory-chart'><img src='data:image/png;base64," in (out / "report.html").read_text()
    assert (out / "memory.png").read_bytes()[:4] == b"\x89PNG"
