"""float32 replies written short (modelpack/serving/common/numtext.py): the shortest decimal that reads back as the
same float32, for every kind of float32 (subnormals, extremes, negative zero), both ways of computing it agreeing,
and read back bit for bit by json.loads and a cast."""

from __future__ import annotations

import json

import numpy as np

from tests.helpers.serving import serving_module

numtext = serving_module("numtext")
SPECIAL = np.array([0.001, 0.1, -0.0, 0.0, 1e-45, -1e-45, 1.17549435e-38, 3.4028235e38, -3.4028235e38, 1 / 3,
                    16777216, 1e10, 123456789, 2 ** -126, 9.999999e-39], dtype=np.float32)


def random_float32(count: int, seed: int = 0) -> np.ndarray:
    """Uniform over bit patterns (so every exponent, subnormals included), the non-finite ones dropped."""
    raw = np.random.default_rng(seed).integers(0, 2 ** 32, count, dtype=np.uint64).astype(np.uint32)
    values = raw.view(np.float32)
    return np.concatenate([values[np.isfinite(values)], SPECIAL])


def read_back(values: np.ndarray) -> np.ndarray:
    text = json.dumps(values.tolist(), allow_nan=False)
    return np.array(json.loads(text), dtype=np.float64).astype(np.float32)


def bits(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def test_both_ways_give_the_same_shortest_numbers_and_read_back_bit_for_bit():
    values = random_float32(100_000)
    fast = numtext.rounded(values)
    assert np.array_equal(numtext.written(values), fast)  # numpy's own shortest float32 text
    assert np.array_equal(fast, values.astype(str).astype(np.float64))
    assert np.array_equal(bits(read_back(fast)), bits(values))
    assert np.array_equal(numtext.shortest(values), fast)  # big: the vectorised way
    small = values[:numtext.SMALL].reshape(4, -1)
    assert numtext.shortest(small).shape == small.shape
    assert np.array_equal(bits(read_back(numtext.shortest(small))), bits(small))


def test_written_as_short_as_float32_allows():
    text = json.dumps(numtext.shortest(SPECIAL).tolist())
    assert text == ("[0.001, 0.1, -0.0, 0.0, 1e-45, -1e-45, 1.1754944e-38, 3.4028235e+38, -3.4028235e+38, 0.33333334, "
                    "16777216.0, 10000000000.0, 123456790.0, 1.1754944e-38, 1e-38]")  # 9.999999e-39: a subnormal
    assert json.dumps(numtext.rounded(SPECIAL).tolist()) == text
    # the float64 digits a plain tolist() writes
    assert json.dumps(SPECIAL[:1].tolist()) == "[0.0010000000474974513]"


def test_other_dtypes_are_written_as_they_are():
    assert numtext.shortest(np.array([0.1], dtype=np.float64)).tolist() == [0.1]
    assert numtext.shortest(np.array([[3]], dtype=np.int64)).tolist() == [[3]]
    assert numtext.shortest(np.float32(0.25)).tolist() == 0.25
