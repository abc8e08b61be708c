"""How samples are shared out (evaluation and calibration never overlap unless the recipe allows it) and which array
feeds which input (arrays named after the model's inputs must follow its order): plain numpy, no model."""

from __future__ import annotations

import numpy as np
import pytest

from modelpack.errors import InputError
from modelpack.inputs.data import TensorSpec, prepare, split_counts
from modelpack.recipe.models import DataSpec

X = TensorSpec("x", (None, 3), "float32")


def spec(**fields) -> DataSpec:
    return DataSpec.model_validate({"path": "d.npz", **fields}, context={"check_files": False})


def arrays(n: int = 171) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((n, 3)).astype("float32"), "y": rng.integers(0, 3, n)}


def test_counts_that_do_not_fit_are_refused_with_the_numbers():
    with pytest.raises(InputError) as err:
        split_counts(spec(evaluation=400, calibration=200), 171, calibrates=True, origin="r.yaml")
    message = str(err.value)
    assert "has 171 samples, but data.evaluation asks for 400 and data.calibration for 200 (600 in all)" in message
    assert "must not overlap" in message and "evaluation: 114, calibration: 57" in message
    assert "data.allow_overlap: true" in message


def test_overlap_only_when_allowed_and_then_said():
    counts = split_counts(spec(evaluation=150, calibration=100, allow_overlap=True), 171, True, "r.yaml")
    assert (counts.evaluation, counts.calibration, counts.overlap) == (150, 100, 79)
    assert "79 of the 100 calibration samples are evaluation samples too" in counts.note
    samples = prepare(spec(evaluation=150, calibration=100, allow_overlap=True), [X], "r.yaml", arrays=arrays())
    evaluated = {row.tobytes() for row in samples.eval_x[0]}
    assert sum(row.tobytes() in evaluated for row in samples.calib_x[0]) == 79 == samples.overlap
    assert samples.notes and "judged partly on the samples they were calibrated on" in samples.notes[0]


def test_defaults_that_do_not_fit_share_the_samples_and_say_so():
    counts = split_counts(spec(), 171, calibrates=True, origin="r.yaml")
    assert (counts.evaluation, counts.calibration, counts.overlap) == (114, 57, 0)
    assert "fewer than the default 400 evaluation + 200 calibration" in counts.note
    samples = prepare(spec(), [X], "r.yaml", arrays=arrays())
    evaluated = {row.tobytes() for row in samples.eval_x[0]}
    assert not any(row.tobytes() in evaluated for row in samples.calib_x[0])


def test_without_a_calibrating_variant_every_sample_may_evaluate():
    counts = split_counts(spec(evaluation=400), 171, calibrates=False, origin="r.yaml")
    assert (counts.evaluation, counts.calibration) == (171, 0) and "all of which evaluate" in counts.note
    assert split_counts(spec(evaluation=100, calibration=50), 171, True, "r.yaml").note is None


TWO = [TensorSpec("a", (None, 4), "float32"), TensorSpec("b", (None, 4), "float32")]
DICT = [TensorSpec("cat", (None, 1), "int32"), TensorSpec("num", (None, 4), "float32")]


def test_arrays_named_after_inputs_in_another_order_are_refused():
    data = {"a": np.zeros((20, 4), "float32"), "b": np.ones((20, 4), "float32"), "y": np.zeros(20, "int64")}
    with pytest.raises(InputError, match=r"lists b, a, so array 'b' feeds input 1 \('a'\), but the model's input 'b' "
                                         r"is input 2.*a \[batch, 4\] float32, b \[batch, 4\] float32 \(a model built "
                                         r"from a dict of inputs takes them sorted by key\)"):
        prepare(spec(inputs=["b", "a"], evaluation=10, calibration=5), TWO, "r.yaml", arrays=data)
    samples = prepare(spec(inputs=["a", "b"], evaluation=10, calibration=5), TWO, "r.yaml", arrays=data)
    assert samples.notes == []


def test_same_shaped_inputs_fed_by_arrays_named_otherwise_get_a_warning():
    data = {"x1": np.zeros((20, 4), "float32"), "x2": np.ones((20, 4), "float32"), "y": np.zeros(20, "int64")}
    samples = prepare(spec(inputs=["x1", "x2"], evaluation=10, calibration=5), TWO, "r.yaml", arrays=data)
    assert len(samples.notes) == 1 and "inputs 'a' and 'b' have the same shape and dtype" in samples.notes[0]


def test_a_wrong_array_for_a_dict_input_model_names_the_order_the_model_expects():
    data = {"num": np.zeros((20, 4), "float32"), "cat": np.zeros((20, 1), "int32"), "y": np.zeros(20, "int64")}
    with pytest.raises(InputError, match=r"model's input 'num' is input 2.*cat \[batch, 1\] int32, num \[batch, 4\]"):
        prepare(spec(inputs=["num", "cat"], evaluation=10, calibration=5), DICT, "r.yaml", arrays=data)
    data["numbers"], data["category"] = data.pop("num"), data.pop("cat")
    with pytest.raises(InputError, match=r"per-sample shape \(4,\) but model input 'cat' expects \(1,\).*in this "
                                         r"order: cat \[batch, 1\] int32, num \[batch, 4\] float32"):
        prepare(spec(inputs=["numbers", "category"], evaluation=10, calibration=5), DICT, "r.yaml", arrays=data)
    with pytest.raises(InputError, match=r"names 1 array\(s\) but the model has 2 input\(s\).*in this order: cat"):
        prepare(spec(inputs=["category"], evaluation=10, calibration=5), DICT, "r.yaml", arrays=data)
