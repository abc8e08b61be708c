"""Run a generated handler in fresh processes, as a Lambda cold start would, and time it."""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from modelpack import served
from modelpack.childproc import read, scrubbed_env, write_source
from modelpack.errors import TargetError

# How far a packaged handler's answer may be from the variant the build measured (float32 rounding).
TOLERANCE = 1e-5
MARKER = "MODELPACK_HANDLER"

_RUN = r"""
import json, sys, time
with open(sys.argv[1]) as f:  # decoded before the clock starts, as Lambda's runtime does outside the handler
    event = json.load(f)
t0 = time.perf_counter()
import handler
t1 = time.perf_counter()
result = handler.handler(event, None)
t2 = time.perf_counter()
timings = {"import_ms": (t1 - t0) * 1e3, "first_ms": (t2 - t1) * 1e3, "total_ms": (t2 - t0) * 1e3,
           "result": result, "loads": handler.HOLDER.loads, "load_ms": handler.HOLDER.load_ms}
""" + write_source(MARKER, "timings") + "\n"


def handler_env(function_dir: Path, layer_dir: Path) -> dict:
    """The environment of a Lambda execution: task root and /opt/python only, no bytecode writing."""
    return scrubbed_env([str(function_dir), str(layer_dir / "python")], MODELPACK_OPT_DIR=str(layer_dir),
                        LAMBDA_TASK_ROOT=str(function_dir))


def event(sample: dict[str, np.ndarray]) -> dict:
    """The request a check sends: the first evaluation sample(s) as named JSON inputs."""
    return {"inputs": {k: np.asarray(v).tolist() for k, v in sample.items()}}


def agree(answer: dict, names: list[str], expected: list[np.ndarray] | None, what: str, reference: str) -> float | None:
    """The largest difference between a handler's `answer` and `expected` (None without a reference);
    more than TOLERANCE is a TargetError: `what` differs from `reference`, the package does not behave as measured."""
    err = served.max_abs_err(served.response_outputs(answer, names), expected)
    if err is not None and not err <= TOLERANCE:
        raise TargetError(f"{what} differs from {reference} by {err:.2e}; the packaged model does not behave as "
                          "measured.")
    return err


def first_error_line(stderr: str) -> str:
    """The first line of the exception a traceback ends with (its message may span lines), else the last line."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent call last)")]
    if starts:
        rest = lines[starts[-1] + 1:]
        return next((ln for ln in rest if not ln.startswith(" ")), rest[-1] if rest else "no output")
    return lines[-1] if lines else "no output"


def _parse(proc: subprocess.CompletedProcess) -> dict:
    value = read(proc.stdout, MARKER)
    if value is None:
        raise RuntimeError(f"the handler failed in a fresh process: {first_error_line(proc.stderr)[:300]}")
    return value


def cold_start(function_dir: Path, layer_dir: Path, interpreter: str, sample: dict[str, np.ndarray],
               runs: int = 3, extra_env: dict | None = None) -> dict:
    """Median import and first-invocation time of the handler, and its prediction for `sample`."""
    results = []
    # The event goes through a file: one image as JSON can exceed the kernel's limit for an argument.
    with tempfile.NamedTemporaryFile("w", suffix=".json") as request:
        # dumps, not dump: dump streams through the pure-Python encoder, 0.6 s for one 224x224x3 image.
        # The samples were refused at load if non-finite, so strict output needs no walk over them.
        request.write(json.dumps(event(sample), allow_nan=False))
        request.flush()
        for _ in range(runs):
            proc = subprocess.run([interpreter, "-S", "-c", _RUN, request.name], capture_output=True, text=True,
                                  env={**handler_env(function_dir, layer_dir), **(extra_env or {})},
                                  cwd=function_dir, timeout=300, check=False)
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
