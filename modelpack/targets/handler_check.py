"""Run a generated handler in fresh processes, as a Lambda cold start would, and time it."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np

_RUN = r"""
import json, sys, time
with open(sys.argv[1]) as f:  # decoded before the clock starts, as Lambda's runtime does outside the handler
    event = json.load(f)
t0 = time.perf_counter()
import handler
t1 = time.perf_counter()
result = handler.handler(event, None)
t2 = time.perf_counter()
print("MODELPACK_HANDLER " + json.dumps({"import_ms": (t1 - t0) * 1e3, "first_ms": (t2 - t1) * 1e3,
      "total_ms": (t2 - t0) * 1e3, "result": result, "loads": handler.HOLDER.loads,
      "load_ms": handler.HOLDER.load_ms}))
"""


def handler_env(function_dir: Path, layer_dir: Path) -> dict:
    """The environment of a Lambda execution: task root and /opt/python only, no bytecode writing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=os.pathsep.join([str(function_dir), str(layer_dir / "python")]),
               MODELPACK_OPT_DIR=str(layer_dir), LAMBDA_TASK_ROOT=str(function_dir),
               PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", OMP_NUM_THREADS="1")
    return env


def first_error_line(stderr: str) -> str:
    """The first line of the exception a traceback ends with (its message may span lines), else the last line."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent call last)")]
    if starts:
        rest = lines[starts[-1] + 1:]
        return next((ln for ln in rest if not ln.startswith(" ")), rest[-1] if rest else "no output")
    return lines[-1] if lines else "no output"


def _parse(proc: subprocess.CompletedProcess) -> dict:
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("MODELPACK_HANDLER ")), None)
    if line is None:
        raise RuntimeError(f"the handler failed in a fresh process: {first_error_line(proc.stderr)[:300]}")
    return json.loads(line[len("MODELPACK_HANDLER "):])


def cold_start(function_dir: Path, layer_dir: Path, interpreter: str, sample: dict[str, np.ndarray],
               runs: int = 3, extra_env: dict | None = None) -> dict:
    """Median import and first-invocation time of the handler, and its prediction for `sample`."""
    results = []
    # The event goes through a file: one image as JSON can exceed the kernel's limit for an argument.
    with tempfile.NamedTemporaryFile("w", suffix=".json") as event:
        # dumps, not dump: dump streams through the pure-Python encoder, 0.6 s for one 224x224x3 image.
        # The samples were refused at load if non-finite, so strict output needs no walk over them.
        event.write(json.dumps({"inputs": {k: v.tolist() for k, v in sample.items()}}, allow_nan=False))
        event.flush()
        for _ in range(runs):
            proc = subprocess.run([interpreter, "-S", "-c", _RUN, event.name], capture_output=True, text=True,
                                  env={**handler_env(function_dir, layer_dir), **(extra_env or {})},
                                  cwd=function_dir, timeout=300,
                                  check=False)
            results.append(_parse(proc))
    result = results[0]["result"]
    if "predictions" not in result and "outputs" not in result:  # columnar answers of several outputs: "outputs"
        raise RuntimeError(f"the handler answered {str(result)[:300]}")
    return {
        "cold_start_ms": {k: round(statistics.median(r[k] for r in results), 2)
                          for k in ("import_ms", "first_ms", "total_ms")},
        "runs": runs,
        "bytecode_writing": "disabled",
        "response": result,
        "model_loads": results[0]["loads"],
        "model_load_ms": round(statistics.median(r["load_ms"] for r in results), 2),
    }
