"""The conformance suite's quick matrix runs end to end: every cell is ok or says why, no build is an internal
error, and every built model served one real sample through its generated Lambda handler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_zoo_quick(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "zoo.py"), "--quick", "--out", str(tmp_path),
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "zoo.json").read_text())
    assert [m["model"] for m in results["models"]] == ["two-outputs", "conv1d-varlen"]
    for model in results["models"]:
        assert model["build_exit"] == 0, model["reason"]
        assert model["served"] is True, model["serve_reason"]
        assert {c["variant"] for c in model["cells"]} == set(results["variants"])
        for cell in model["cells"]:
            if cell["ok"]:
                assert cell["size_bytes"] > 0 and cell["p50_ms"] > 0 and cell["max_abs_err"] <= 1e-4
            else:
                assert cell["reason"] and "\n" not in cell["reason"]
    two = next(m for m in results["models"] if m["model"] == "two-outputs")
    assert all(c["outputs"] == 2 for c in two["cells"] if c["ok"])
    assert two["serve_format"] == "outputs"  # a columnar request to a two-output model: TF Serving's "outputs"
    assert (tmp_path / "zoo.md").read_text().startswith("| model | framework | build |")
