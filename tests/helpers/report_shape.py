"""report.json reduced to what must not change between builds of the same recipe: every key, list lengths,
and the values that do not depend on timing, machine load or installed package versions."""

from __future__ import annotations

import math

# Keys whose values vary from run to run or machine to machine (the key itself must still be there).
VARYING = {
    # timings and memory
    "latency_ms", "cold_start_ms", "handler_cold_start_ms", "p50_ms", "peak_rss_mb", "peak_rss_mb_max", "seconds",
    "duration_ms",
    "verify_import_ms", "model_load_ms", "import_ms", "first_ms", "total_ms",
    # sizes and digests of converter output (ONNX files differ by a few bytes between runs)
    "size_bytes", "zipped_bytes", "unzipped_bytes", "naive_unzipped_bytes", "context_bytes", "unzipped_total_bytes",
    "sha256", "tag", "removed", "installed",
    # the cache's state and what the selection made of close timings
    "cached", "measurement", "selected", "selection_reason", "closest", "modelpack_version",
    # paths relative to where the test wrote its recipe
    "path", "description",
}
# Budget rows carry the measured value next to the limit.
VARYING_IN_BUDGETS = {"value"}
FLOAT_TOLERANCE = 0.01


def shape(value, key: str = "", in_budgets: bool = False):
    """`value` with every varying leaf replaced by "<varies>" (dicts keep their keys, lists their length)."""
    if key in VARYING or (in_budgets and key in VARYING_IN_BUDGETS):
        if isinstance(value, dict):
            return {k: "<varies>" for k in value} if key not in ("installed",) else "<varies>"
        return "<varies>"
    if isinstance(value, dict):
        return {k: shape(v, k, in_budgets or key == "budgets") for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, "", in_budgets or key == "budgets") for v in value]
    return value


def differences(expected, actual, where: str = "report") -> list[str]:
    """Where two shapes differ: a missing or extra key, another list length, another value."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{where}.{k}: missing" for k in expected if k not in actual]
        out += [f"{where}.{k}: not in the golden file" for k in actual if k not in expected]
        for k in expected:
            if k in actual:
                out += differences(expected[k], actual[k], f"{where}.{k}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(actual)} items, expected {len(expected)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{where}[{i}]")]
    both_numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (expected, actual))
    if both_numbers and (isinstance(expected, float) or isinstance(actual, float)):
        same = math.isclose(expected, actual, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
    else:
        same = expected == actual and type(expected) is type(actual)
    return [] if same else [f"{where}: {actual!r}, expected {expected!r}"]
