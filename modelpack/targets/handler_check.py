"""Run a generated handler in fresh processes, as a Lambda cold start would, time it, and compare its answers
with the variant the build measured, on real evaluation samples."""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from modelpack.errors import TargetError
from modelpack.host.childproc import read, scrubbed_env, write_source

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


def event(sample: dict[str, np.ndarray], route: str | None = None) -> dict:
    """The request a check sends: the first evaluation sample(s) as named JSON inputs; with a `route`, as the
    body of a Function URL event POSTed to /<route>, so the check goes through the handler's routing as a
    deployed endpoint's requests do."""
    body = {"inputs": {k: np.asarray(v).tolist() for k, v in sample.items()}}
    if route is None:
        return body
    path = "/" + route
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": {"content-type": "application/json"}, "isBase64Encoded": False,
            "requestContext": {"http": {"method": "POST", "path": path}}, "body": json.dumps(body, allow_nan=False)}


def http_answer(result: object, route: str) -> dict:
    """The JSON body of a handler's answer to a routed check event; anything but a 200 is a RuntimeError."""
    if not isinstance(result, dict) or result.get("statusCode") != 200:
        status = result.get("statusCode") if isinstance(result, dict) else None
        body = result.get("body") if isinstance(result, dict) else result
        raise RuntimeError(f"the handler answered POST /{route} with status {status}: {str(body)[:300]}")
    return json.loads(result["body"])


def agree(answer: dict, names: list[str], expected: list[np.ndarray] | None, what: str, reference: str) -> float | None:
    """The largest difference between a handler's `answer` and `expected` (None without a reference);
    more than TOLERANCE is a TargetError: `what` differs from `reference`, the package does not behave as measured."""
    got = response_outputs(answer, names)
    if expected is not None and len(expected) == len(got):
        # A float32 output is written in its shortest form that reads back as the same float32: read it so
        # (as a client does), and a handler that serves the variant's outputs differs from them by 0.
        with np.errstate(over="ignore"):
            got = [g.astype(np.float32) if np.asarray(e).dtype == np.float32 else g for g, e in zip(got, expected)]
    err = max_abs_err(got, expected)
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
               runs: int = 3, extra_env: dict | None = None, route: str | None = None) -> dict:
    """Median import and first-invocation time of the handler, and its prediction for `sample` (POSTed to
    /<route> as a Function URL event when a route is given, else as a direct invocation)."""
    results = []
    # The event goes through a file: one image as JSON can exceed the kernel's limit for an argument.
    with tempfile.NamedTemporaryFile("w", suffix=".json") as request:
        # dumps, not dump: dump streams through the pure-Python encoder, 0.6 s for one 224x224x3 image.
        # The samples were refused at load if non-finite, so strict output needs no walk over them.
        request.write(json.dumps(event(sample, route), allow_nan=False))
        request.flush()
        for _ in range(runs):
            proc = subprocess.run([interpreter, "-S", "-c", _RUN, request.name], capture_output=True, text=True,
                                  env={**handler_env(function_dir, layer_dir), **(extra_env or {})},
                                  cwd=function_dir, timeout=300, check=False)
            results.append(_parse(proc))
    result = results[0]["result"]
    if route is not None:
        result = http_answer(result, route)
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


def sample(ctx: Any, n: int = 1) -> dict[str, np.ndarray]:
    """The first `n` evaluation samples, one array per model input, as the build measured them.

    Checks serve these rather than a synthetic guess: free dimensions (a variable-length time axis) then
    have the sizes the model really sees."""
    return {spec["name"]: np.asarray(x[:n]) for spec, x in zip(ctx.info["inputs"], ctx.samples.eval_x)}


def request_sample(ctx: Any, n: int = 1) -> dict[str, np.ndarray]:
    """What a check sends through a handler: a text model's evaluation texts (so the handler's own vocabulary
    lookup runs), else `sample`."""
    text = ctx.info.get("text")
    if text and ctx.samples.texts is not None:
        return {text["input"]: np.asarray(ctx.samples.texts[:n])}
    return sample(ctx, n)


def shapes(arrays: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """{input name: shape} of what a check served, for the report."""
    return {name: [int(d) for d in np.shape(a)] for name, a in arrays.items()}


def response_outputs(body: dict, names: list[str]) -> list[np.ndarray]:
    """A handler's answer as one array per model output, from any of its response formats.

    One output: `predictions` is the output itself. Several: `predictions` is one {output: value} object per
    row (row format), or `outputs` is {output: values} (columnar format)."""
    if "outputs" in body:
        outs = body["outputs"]
        return [np.asarray(outs[n], dtype=np.float64) for n in names] if isinstance(outs, dict) \
            else [np.asarray(outs, dtype=np.float64)]
    predictions = body["predictions"]
    if len(names) > 1:
        return [np.asarray([row[n] for row in predictions], dtype=np.float64) for n in names]
    return [np.asarray(predictions, dtype=np.float64)]


def max_abs_err(got: list[np.ndarray], expected: list[np.ndarray] | None) -> float | None:
    """Largest absolute difference over every output (None without a reference); NaN counts as infinite."""
    if expected is None or len(expected) != len(got):
        return None
    worst = 0.0
    for g, e in zip(got, expected):
        if np.size(g) != np.size(e):
            return float("inf")
        d = np.abs(np.asarray(g, dtype=np.float64).reshape(np.shape(e)) - np.asarray(e, dtype=np.float64))
        worst = max(worst, float(np.inf if np.isnan(d).any() else np.max(d, initial=0.0)))
    return worst

