"""SnapStart's build-time checks and the sample the handler answers before the snapshot."""

from __future__ import annotations

import numpy as np
import pytest

from modelpack.errors import TargetError
from modelpack.targets import snapstart


def test_python_before_3_12_and_tmp_over_512_mb_are_refused_with_the_reason():
    snapstart.check("3.12", None)
    snapstart.check("3.13", snapstart.tmp_needed_mb(200_000_000))
    with pytest.raises(TargetError, match="python3.12 or later; this function runs python3.11"):
        snapstart.check("3.11", None)
    with pytest.raises(TargetError, match="at most 512 MB of /tmp, but downloading this model from model_source "
                                          "needs 600 MB"):
        snapstart.check("3.12", snapstart.tmp_needed_mb(300_000_000))


def test_the_sample_is_byte_for_byte_the_same_and_loads_without_pickle(tmp_path):
    arrays = {"x": np.arange(12, dtype=np.float32).reshape(1, 3, 4), "ids": np.array([[1, 2]], dtype=np.int32)}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = snapstart.write_sample(tmp_path / "a", arrays).read_bytes()
    assert first == snapstart.write_sample(tmp_path / "b", dict(reversed(arrays.items()))).read_bytes()
    with np.load(tmp_path / "a" / snapstart.SAMPLE, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["ids", "x"] and np.array_equal(npz["x"], arrays["x"])
