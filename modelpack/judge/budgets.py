"""Check each variant against the recipe's budgets; one table maps a budget to the measurement it limits."""

from __future__ import annotations

from collections.abc import Callable

from modelpack.limits import MB
from modelpack.recipe.models import Budgets

# budget name -> (what it reads from a variant record, True if the limit is an upper bound)
BUDGET_METRICS: dict[str, tuple[Callable[[dict], float | None], bool]] = {
    "max_accuracy_drop": (lambda v: v.get("accuracy_drop"), True),
    "max_mae_increase": (lambda v: (v.get("regression") or {}).get("mae_increase"), True),
    "min_agreement": (lambda v: (v.get("fidelity") or {}).get("agreement"), False),
    "max_model_mb": (lambda v: v["size_bytes"] / MB if v.get("size_bytes") is not None else None, True),
    "max_zip_mb": (lambda v: v["zipped_bytes"] / MB if v.get("zipped_bytes") is not None else None, True),
    "max_p50_ms": (lambda v: (v.get("latency_ms") or {}).get("p50"), True),
    "max_p95_ms": (lambda v: (v.get("latency_ms") or {}).get("p95"), True),
    "max_p99_ms": (lambda v: (v.get("latency_ms") or {}).get("p99"), True),
    "max_cold_start_ms": (lambda v: (v.get("cold_start_ms") or {}).get("p50"), True),
    "max_peak_rss_mb": (lambda v: v.get("peak_rss_mb"), True),
}


def check(variant: dict, budgets: Budgets) -> list[dict]:
    """One row per budget the recipe sets: limit, measured value, passed. Unmeasurable counts as failed."""
    rows = []
    for name, limit in budgets.model_dump().items():
        if limit is None:
            continue
        read, upper = BUDGET_METRICS[name]
        value = read(variant) if variant.get("status") == "ok" else None
        passed = value is not None and (value <= limit if upper else value >= limit)
        rows.append({"name": name, "limit": float(limit), "value": value, "passed": bool(passed)})
    return rows
