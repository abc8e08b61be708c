"""Budget checks and every selection policy on hand-made variant records."""

from __future__ import annotations

import pytest

from modelpack.judge.budgets import check
from modelpack.judge.select import select
from modelpack.recipe.models import Budgets


def variant(name, *, zipped, p50, cold, acc, drop=0.0, agreement=1.0, status="ok"):
    return {
        "name": name, "status": status, "size_bytes": zipped * 2, "zipped_bytes": zipped, "accuracy": acc,
        "accuracy_drop": drop, "fidelity": {"agreement": agreement, "max_abs_err": 0.0},
        "latency_ms": {"p50": p50, "p95": p50 * 1.5, "p99": p50 * 2}, "cold_start_ms": {"p50": cold},
        "peak_rss_mb": 60.0,
    }


def judged(variants, budgets):
    for v in variants:
        v["budgets"] = check(v, budgets)
        v["budgets_passed"] = v["status"] == "ok" and all(b["passed"] for b in v["budgets"])
    return variants


VARIANTS = lambda: [  # noqa: E731
    variant("keras", zipped=900_000, p50=0.1, cold=3000, acc=0.99),
    variant("a-small", zipped=10_000, p50=5.0, cold=90, acc=0.97, drop=0.02, agreement=0.96),
    variant("b-fast", zipped=80_000, p50=1.0, cold=120, acc=0.985, drop=0.005),
    variant("c-cold", zipped=50_000, p50=2.0, cold=60, acc=0.99, drop=0.0),
]


def test_budget_rows_only_for_set_budgets():
    rows = check(VARIANTS()[1], Budgets(max_zip_mb=0.05, max_accuracy_drop=0.01))
    assert [(r["name"], r["passed"]) for r in rows] == [("max_accuracy_drop", False), ("max_zip_mb", True)]
    assert rows[1]["value"] == pytest.approx(0.01)


def test_lower_bound_budget():
    rows = check(VARIANTS()[1], Budgets(min_agreement=0.97))
    assert rows == [{"name": "min_agreement", "limit": 0.97, "value": 0.96, "passed": False}]


def test_unmeasured_value_fails_the_budget():
    v = VARIANTS()[1]
    v["accuracy_drop"] = None
    assert check(v, Budgets(max_accuracy_drop=0.5))[0]["passed"] is False


@pytest.mark.parametrize(
    "policy, winner",
    [("smallest", "a-small"), ("fastest", "b-fast"), ("coldest-start", "c-cold"), ("most-accurate", "c-cold")],
)
def test_each_policy_without_budgets(policy, winner):
    chosen, reason, closest = select(judged(VARIANTS(), Budgets()), policy)
    assert chosen == winner and closest is None
    assert winner in reason


def test_budgets_exclude_variants_and_baseline_never_wins():
    chosen, _, _ = select(judged(VARIANTS(), Budgets(max_accuracy_drop=0.01, max_p50_ms=1.5)), "smallest")
    assert chosen == "b-fast"  # a-small breaks the accuracy budget, c-cold the latency one; keras is never chosen


def test_no_variant_passes_names_closest():
    chosen, reason, closest = select(judged(VARIANTS(), Budgets(max_p50_ms=0.5, max_zip_mb=0.06)), "fastest")
    assert chosen is None and "no variant" in reason
    assert closest == "c-cold"  # breaks one budget (latency); b-fast breaks two


def test_failed_variants_are_ignored():
    vs = VARIANTS()
    vs[2]["status"] = "failed"
    chosen, _, _ = select(judged(vs, Budgets()), "fastest")
    assert chosen == "c-cold"


def test_near_ties_in_time_go_to_the_smaller_variant():
    vs = VARIANTS()
    vs[3]["latency_ms"]["p50"] = 1.03  # c-cold: 3 % slower than b-fast, and smaller
    chosen, reason, _ = select(judged(vs, Budgets()), "fastest")
    assert chosen == "c-cold" and "within 5%" in reason and "b-fast" in reason
    vs[3]["latency_ms"]["p50"] = 1.2  # 20 % slower: a real difference
    assert select(judged(vs, Budgets()), "fastest")[0] == "b-fast"


def test_near_ties_in_time_go_to_fidelity_before_size():
    """As on digits: INT8 (smaller, agreement 0.994) and dynamic-range (agreement 1.0) at the same latency."""
    vs = VARIANTS()
    vs[3].update(zipped_bytes=20_000, fidelity={"agreement": 0.994, "max_abs_err": 0.08})  # c-cold: the int8 one
    vs[3]["latency_ms"]["p50"] = 0.99
    vs[2]["fidelity"] = {"agreement": 1.0, "max_abs_err": 0.015}  # b-fast: 1 % slower, larger, faithful
    chosen, reason, _ = select(judged(vs, Budgets()), "fastest")
    assert chosen == "b-fast", reason
    assert "within 5% of the lowest median warm latency (c-cold" in reason
    assert "closest to the Keras model (agreement 1.0000" in reason and "next: c-cold, agreement 0.9940" in reason


def test_without_agreement_the_largest_output_error_decides_a_tie():
    vs = VARIANTS()
    for v, err in zip(vs, (0.0, 0.5, 0.2, 0.01)):
        v["fidelity"] = {"agreement": None, "max_abs_err": err}  # regression: no top-1 classes
    vs[2]["latency_ms"]["p50"] = 2.0  # b-fast and c-cold tie on latency
    chosen, reason, _ = select(judged(vs, Budgets()), "fastest")
    assert chosen == "c-cold" and "max abs error 1.00e-02" in reason


def test_equal_sizes_tie_under_smallest_and_fidelity_decides():
    vs = VARIANTS()
    vs[2].update(zipped_bytes=10_000)  # b-fast as small as a-small, and more faithful
    vs[1]["fidelity"] = {"agreement": 0.96, "max_abs_err": 0.3}
    chosen, reason, _ = select(judged(vs, Budgets()), "smallest")
    assert chosen == "b-fast" and "tied on the smallest zipped size" in reason
