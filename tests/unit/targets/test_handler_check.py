"""Several outputs and free dimensions without TensorFlow: per-output fidelity, the scored output, reading a
handler's answer in every response format, and synthetic sizes of free dimensions."""

from __future__ import annotations

import numpy as np
import pytest

from modelpack.errors import InputError
from modelpack.inputs.data import TensorSpec, prepare
from modelpack.inputs.task import scored_output
from modelpack.measure import metrics
from modelpack.recipe.models import DataSpec
from modelpack.targets import handler_check

OUTPUTS = [{"name": "cls", "shape": [None, 3], "dtype": "float32"}, {"name": "reg", "shape": [None, 1], "dtype": "float32"}]


def test_fidelity_is_reported_per_output_with_the_scored_one_as_headline():
    cls_ref = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    reg_ref = np.array([[1.0], [2.0]])
    cls_out = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])  # second row flips its class
    reg_out = np.array([[1.5], [2.0]])
    f = metrics.fidelity([cls_out, reg_out], [cls_ref, reg_ref], "classification", 0, ["cls", "reg"])
    assert f["agreement"] == 0.5 and f["max_abs_err"] == pytest.approx(0.4)
    assert [o["name"] for o in f["outputs"]] == ["cls", "reg"] and [o["scored"] for o in f["outputs"]] == [True, False]
    assert f["outputs"][1] == {"name": "reg", "scored": False, "agreement": None, "max_abs_err": 0.5,
                               "mean_abs_err": 0.25}
    on_reg = metrics.fidelity([cls_out, reg_out], [cls_ref, reg_ref], "regression", 1, ["cls", "reg"])
    assert on_reg["max_abs_err"] == 0.5 and on_reg["agreement"] is None
    assert "outputs" not in metrics.fidelity([cls_out], [cls_ref], "classification")


def test_accuracy_scores_the_named_output():
    cls = np.array([[0.9, 0.1], [0.2, 0.8]])
    reg = np.array([[1.0], [3.0]])
    assert metrics.accuracy([cls, reg], np.array([0, 1]), "classification") == 1.0
    assert metrics.accuracy([cls, reg], np.array([[1.0], [1.0]]), "regression", scored=1) == -1.0


def test_task_output_must_name_a_model_output():
    assert scored_output(None, OUTPUTS, "r.yaml") == 0
    assert scored_output("reg", OUTPUTS, "r.yaml") == 1
    with pytest.raises(InputError) as err:
        scored_output("value", OUTPUTS, "r.yaml")
    assert "r.yaml: task_output is 'value'" in str(err.value) and "cls, reg" in str(err.value)


def test_handler_answers_are_read_in_every_format():
    names = ["cls", "reg"]
    rows = {"predictions": [{"cls": [0.1, 0.9], "reg": [2.0]}, {"cls": [0.8, 0.2], "reg": [3.0]}]}
    columns = {"outputs": {"cls": [[0.1, 0.9], [0.8, 0.2]], "reg": [[2.0], [3.0]]}}
    a, b = handler_check.response_outputs(rows, names), handler_check.response_outputs(columns, names)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and a[1].tolist() == [[2.0], [3.0]]
    single = handler_check.response_outputs({"predictions": [[0.5, 0.5]]}, ["out"])
    assert single[0].shape == (1, 2)
    assert handler_check.max_abs_err(a, [np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([[2.0], [3.5]])]) == 0.5
    assert handler_check.max_abs_err(a, [np.zeros((2, 2)), np.zeros((3, 1))]) == float("inf")
    assert handler_check.max_abs_err(a, None) is None


def test_synthetic_data_gives_free_dimensions_a_usable_size():
    spec = DataSpec(synthetic=True, evaluation=4, calibration=2)
    samples = prepare(spec, [TensorSpec("series", (None, None, 3), "float32")], "r.yaml")
    assert samples.eval_x[0].shape == (4, 8, 3) and samples.calib_x[0].shape == (2, 8, 3)
    assert handler_check.shapes({"series": samples.eval_x[0][:1]}) == {"series": [1, 8, 3]}


def test_a_failed_check_quotes_the_first_line_of_the_runtime_error():
    from modelpack.targets.handler_check import first_error_line

    trace = "noise\nTraceback (most recent call last):\n  File \"h.py\", line 3\n    run()\nValueError: bad shape {1,1}\nmore\n"
    assert first_error_line(trace) == "ValueError: bad shape {1,1}"
    assert first_error_line("just this\n") == "just this" and first_error_line("") == "no output"


def test_a_short_float32_reply_agrees_with_the_variant_exactly():
    # The handler writes 0.1f as 0.1 (not 0.10000000149011612): read back as float32 it is the variant's output.
    expected = [np.array([[0.1, 1 / 3, 1e-45, -0.0]], dtype=np.float32)]
    short = {"predictions": [[0.1, 0.33333334, 1e-45, -0.0]]}
    assert handler_check.agree(short, ["y"], expected, "served", "variant") == 0.0
    off = {"predictions": [[0.1, 0.33333337, 1e-45, -0.0]]}  # one float32 step away
    assert handler_check.agree(off, ["y"], expected, "served", "variant") == pytest.approx(2.98e-8, rel=0.01)
