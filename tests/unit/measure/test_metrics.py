"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from modelpack.measure import metrics


def test_classification_accuracy_top1_and_topk():
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    labels = np.array([1, 1, 2, 1])
    assert metrics.accuracy([probs], labels, "classification") == pytest.approx(0.5)
    assert metrics.accuracy([probs], labels, "classification", top_k=2) == pytest.approx(1.0)


def test_binary_sigmoid_accuracy():
    assert metrics.accuracy([np.array([[0.9], [0.2], [0.6]])], np.array([1, 0, 0]), "classification") == pytest.approx(2 / 3)


def test_regression_score_is_negative_mae():
    out = [np.array([[1.0], [2.0], [4.0]])]
    labels = np.array([[1.0], [3.0], [2.0]])
    assert metrics.accuracy(out, labels, "regression") == pytest.approx(-1.0)
    # Residuals 0, -1, 2 around labels whose mean is 2: R² = 1 - 5 / 2.
    assert metrics.regression_errors(out, labels) == pytest.approx({"mae": 1.0, "rmse": np.sqrt(5 / 3), "r2": -1.5})
    assert metrics.regression_errors(out, np.full((3, 1), 2.0))["r2"] is None  # constant labels: undefined


def test_no_labels_no_accuracy():
    assert metrics.accuracy([np.zeros((2, 3))], None, "classification") is None


def test_fidelity_agreement_and_errors():
    ref = [np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])]
    out = [np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])]
    f = metrics.fidelity(out, ref, "classification")
    assert f["agreement"] == pytest.approx(2 / 3)
    assert f["max_abs_err"] == pytest.approx(0.2)
    assert f["mean_abs_err"] == pytest.approx((0.1 * 4 + 0.2 * 2) / 6)


def test_fidelity_nan_is_infinite_error():
    f = metrics.fidelity([np.array([[np.nan, 1.0]])], [np.array([[0.0, 1.0]])], "regression")
    assert f["max_abs_err"] == float("inf")
    assert f["agreement"] is None


def test_latency_percentiles():
    stats = metrics.latency_stats(list(range(1, 101)))
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p99"] == pytest.approx(99.01)
    assert stats["min"] == 1 and stats["max"] == 100 and stats["runs"] == 100


def test_median_of_cold_runs():
    runs = [{"total_ms": 10.0, "load_ms": 1.0}, {"total_ms": 30.0, "load_ms": 3.0}, {"total_ms": 20.0, "load_ms": 2.0}]
    assert metrics.median_of(runs) == {"total_ms": 20.0, "load_ms": 2.0}
