"""The benchmark script runs (reduced) so it cannot rot, and writes the JSON it promises."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.paths import ROOT

pytestmark = pytest.mark.slow


def test_quick_benchmark_writes_results(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-readme",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| digits |" in proc.stdout
    (result,) = tmp_path.glob("*-quick.json")
    data = json.loads(result.read_text())
    digits = data["models"][0]
    assert digits["selected"] and digits["latency_ms"]["handler_inference_p50"] > 0
    assert digits["cold_start_ms"]["modelpack_handler"] < digits["cold_start_ms"]["keras_handler"]
    assert 0 < digits["build_s"]["cached"] < digits["build_s"]["cold"]
