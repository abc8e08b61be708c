"""The task from the labels (inferred when the recipe has none), the labels checked against the task and the scored
output, budgets checked against the task, class names: plain numpy, no model."""

from __future__ import annotations

import numpy as np
import pytest

from modelpack.errors import InputError
from modelpack.inputs import task
from modelpack.recipe.models import Budgets

# Like the diabetes targets of scikit-learn: whole numbers such as 151.0, each seen about twice.
DIABETES_LIKE = np.random.default_rng(0).integers(25, 346, 442).astype("float64")
DIGITS_LIKE = np.random.default_rng(1).integers(0, 10, 540)


def test_inference_from_the_labels():
    assert task.infer(DIGITS_LIKE).task == "classification"
    assert "in 10 classes" in task.infer(DIGITS_LIKE, "y").why
    assert task.infer(DIABETES_LIKE).task == "regression"
    assert f"from {DIABETES_LIKE.min():g} to {DIABETES_LIKE.max():g} with" in task.infer(DIABETES_LIKE, "target").why
    assert task.infer(np.repeat(np.arange(100), 2)).task == "classification"  # 0..99, all present: class indices
    assert task.infer(np.array([0.5, 1.25, 3.0])).task == "regression"
    assert task.infer(np.array([0.0, 1.0, 1.0, 0.0])).task == "classification"  # whole floats in two classes
    assert task.infer(np.array([-3, 2, 5, -1])).task == "regression"  # negative: not class indices
    assert task.infer(np.zeros((4, 3))).task == "regression"  # several numbers per sample
    assert task.infer(None).task == "classification" and "no labels" in task.infer(None).why
    assert task.infer(np.eye(3)).task == "classification"  # one-hot: classes, refused below with the fix


def test_classification_with_continuous_labels_is_refused_with_the_fix():
    with pytest.raises(InputError, match=r"r.yaml: task is classification, but data.labels 'target' looks like a "
                                         r"measured quantity.*set `task: regression`.*y.astype"):
        task.decide("classification", DIABETES_LIKE, "target", "r.yaml")
    with pytest.raises(InputError, match=r"fractional values.*set `task: regression`.*MAE, RMSE and R²"):
        task.decide("classification", np.array([0.5, 1.5, 2.0]), "y", "r.yaml")
    with pytest.raises(InputError, match="negative values"):
        task.decide("classification", np.array([-1, 0, 1]), "y", "r.yaml")
    with pytest.raises(InputError, match=r"one-hot rows.*argmax"):
        task.decide(None, np.eye(4), "y", "r.yaml")
    with pytest.raises(InputError, match="holds text"):
        task.decide("classification", np.array(["spam", "ham"]), "y", "r.yaml")
    with pytest.raises(InputError, match="looks like a measured quantity"):
        task.decide("classification", np.arange(2000), "y", "r.yaml")  # more classes than any class index list
    # Integer labels with many values are the user's call under an explicit classification (the output decides).
    assert task.decide("classification", DIABETES_LIKE.astype("int64"), "y", "r.yaml").task == "classification"
    assert task.decide("regression", DIGITS_LIKE, "y", "r.yaml").task == "regression"


def test_decision_says_where_it_came_from():
    inferred = task.decide(None, DIABETES_LIKE, "target", "r.yaml")
    assert inferred.to_json()["inferred"] is True and inferred.task == "regression"
    assert inferred.sentence().startswith("Task: regression (inferred, set `task` to override): labels 'target'")
    assert "negative mean absolute error" in inferred.score
    given = task.decide("classification", DIGITS_LIKE, "y", "r.yaml")
    assert given.to_json() | {"why": ""} == {"name": "classification", "inferred": False, "why": "",
                                             "score": given.score}


def test_labels_are_checked_against_the_scored_output():
    softmax10 = {"name": "probs", "shape": [None, 10], "dtype": "float32"}
    one_unit = {"name": "value", "shape": [None, 1], "dtype": "float32"}
    task.check_outputs("classification", DIGITS_LIKE, "y", softmax10, "r.yaml")
    task.check_outputs("classification", np.array([0, 1, 1]), "y", one_unit, "r.yaml")
    task.check_outputs("regression", DIABETES_LIKE, "y", one_unit, "r.yaml")
    with pytest.raises(InputError, match=r"single unit.*go up to 345.*set `task: regression`"):
        task.check_outputs("classification", DIABETES_LIKE.astype("int64"), "y", one_unit, "r.yaml")
    with pytest.raises(InputError, match=r"10 classes in output 'probs'.*up to 12: labels must be class indices 0..9"):
        task.check_outputs("classification", np.array([0, 12]), "y", softmax10, "r.yaml")


def test_budgets_must_measure_the_task():
    with pytest.raises(InputError, match=r"min_agreement compares top-1 classes.*inferred.*max_mae_increase"):
        task.check_budgets("regression", Budgets(min_agreement=0.9), "r.yaml", inferred=True)
    with pytest.raises(InputError, match="max_mae_increase limits a regression error, but the task is classification"):
        task.check_budgets("classification", Budgets(max_mae_increase=0.5), "r.yaml", inferred=False)
    task.check_budgets("regression", Budgets(max_mae_increase=0.5, max_accuracy_drop=0.1), "r.yaml", inferred=False)


def test_class_names_one_per_class(tmp_path):
    softmax3 = {"name": "probs", "shape": [None, 3], "dtype": "float32"}
    assert task.class_names(["a", "b", "c"], "classification", softmax3, "r.yaml") == ["a", "b", "c"]
    names = tmp_path / "labels.txt"
    names.write_text("negative\npositive\n\n")
    one_unit = {"name": "p", "shape": [None, 1], "dtype": "float32"}
    assert task.class_names(str(names), "classification", one_unit, "r.yaml") == ["negative", "positive"]
    with pytest.raises(InputError, match=r"serving.labels has 2 name\(s\) but output 'probs' has 3 classes"):
        task.class_names(["a", "b"], "classification", softmax3, "r.yaml")
    with pytest.raises(InputError, match="but the task is regression"):
        task.class_names(["a", "b"], "regression", one_unit, "r.yaml")
    assert task.class_names(None, "regression", one_unit, "r.yaml") is None
