"""The accuracy-aware INT8 search's pieces that need no converter: the sensitivity metric and the k search."""

from __future__ import annotations

import numpy as np
import pytest
from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio

from modelpack.steps.int8_search import Backend, Search, channel_sqnr_db


def _int8_per_tensor(x: np.ndarray) -> np.ndarray:
    scale = np.abs(x).max() / 127
    return np.round(x / scale).clip(-128, 127) * scale


def test_channel_sqnr_sees_the_outlier_channel_that_whole_tensor_sqnr_hides():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 32))
    x[:, 0] *= 5000  # one channel sets the scale; the other 31 round to zero
    q = _int8_per_tensor(x)
    assert compute_signal_to_quantization_noice_ratio(x, q) > 35  # looks fine as a whole
    assert channel_sqnr_db(x, q) < 1  # the median channel is lost
    clean = rng.normal(size=(200, 32))
    assert channel_sqnr_db(clean, _int8_per_tensor(clean)) > 30


def test_channel_sqnr_ignores_dead_channels_and_checks_nchw():
    x = np.zeros((4, 8, 5, 5))
    x[:, 1] = np.random.default_rng(1).normal(size=(4, 5, 5))
    assert channel_sqnr_db(x, x) == 60.0  # identical: capped, dead channels skipped
    y = x.copy()
    y[:, 1] = 0  # the only live channel (axis 1) lost
    assert channel_sqnr_db(x, y) < 1


class _Toy(Backend):
    """A quantizer whose model passes once the units named in `needed` are all kept in float."""

    def __init__(self, needed: set[str], units: int = 10, settings: int = 2):
        self.needed, self.n, self.count = needed, units, settings
        self.last: list[str] = []

    def settings(self):
        return [{"per_channel": bool(i % 2 == 0), "calibration": f"m{i}"} for i in range(self.count)]

    def quantize(self, setting, keep_float, dest):
        self.last = keep_float
        dest.write_bytes(b"x" * (100 + len(keep_float)))

    def sensitivity(self, setting):
        return [{"tensor": f"t{i}", "nodes": [f"n{i}"], "score_db": i, "damage_db": 40 - i} for i in range(self.n)]


class _Judge:
    def __init__(self, backend):
        self.backend = backend

    def __call__(self, path):
        ok = self.backend.needed <= set(self.backend.last)
        return {"accuracy": 0.9 if ok else 0.1, "accuracy_drop": 0.0 if ok else 0.8, "agreement": None,
                "passed": ok, "shortfall": 0.0 if ok else 0.8 - 0.01 * len(self.backend.last),
                "size_bytes": path.stat().st_size, "p50_ms": 1.0}


@pytest.mark.parametrize("k", [1, 2, 3, 5, 6, 7, 10])
def test_search_finds_the_fewest_float_units(tmp_path, k):
    backend = _Toy({f"n{i}" for i in range(k)})
    result = Search(backend, _Judge(backend), max_trials=50, max_minutes=5, tmp=tmp_path).run()
    assert result["passed"] and result["float_nodes"] == [f"n{i}" for i in range(k)]
    counts = [len(t["float_nodes"]) for t in result["trials"]]
    assert counts[:2] == [0, 0]  # calibration settings first
    assert max(counts) < 2 * k or k == 10  # doubling overshoots at most to the next power of two
    assert len(result["trials"]) <= 2 + 2 * 4  # log-many trials, not one per unit


def test_search_stops_at_max_trials_and_returns_the_closest(tmp_path):
    backend = _Toy({"n9"}, units=10)
    result = Search(backend, _Judge(backend), max_trials=4, max_minutes=5, tmp=tmp_path).run()
    assert not result["passed"] and len(result["trials"]) == 4
    assert result["stopped"] == "stopped at max_trials (4)"
    assert result["chosen_trial"] == 3  # the trial with the smallest shortfall


def test_search_returns_the_passing_calibration_setting_without_float_units(tmp_path):
    backend = _Toy(set())
    result = Search(backend, _Judge(backend), max_trials=10, max_minutes=5, tmp=tmp_path).run()
    assert result["passed"] and result["float_nodes"] == [] and len(result["trials"]) == 2
    assert result["sensitivity"] == []


class _Refusing(_Toy):
    """A quantizer whose last setting is refused for this model (as a 16x8 trial whose op has no int16 form)."""

    refusals = (ValueError,)

    def settings(self):
        return [*super().settings(), {"per_channel": True, "calibration": "int16"}]

    def keeps_float(self, setting):
        return setting["calibration"] != "int16"

    def quantize(self, setting, keep_float, dest):
        if setting["calibration"] == "int16":
            raise ValueError("no int16 form of op NEG")
        super().quantize(setting, keep_float, dest)


def test_a_refused_setting_is_recorded_with_its_reason_and_the_search_goes_on(tmp_path):
    backend = _Refusing({"n0", "n1"})
    result = Search(backend, _Judge(backend), max_trials=20, max_minutes=5, tmp=tmp_path).run()
    refused = result["trials"][2]
    assert refused["refused"] == "no int16 form of op NEG" and refused["passed"] is False
    assert refused["accuracy"] is None and refused["shortfall"] is None  # strict JSON: no infinity
    assert result["passed"] and result["float_nodes"] == ["n0", "n1"]
    grown = [t for t in result["trials"] if t["float_nodes"]]
    assert grown and all(t["calibration"] != "int16" for t in grown)  # float units are kept from a made setting


def test_a_setting_that_cannot_keep_float_passes_before_any_float_unit(tmp_path):
    class Passing16x8(_Refusing):
        def quantize(self, setting, keep_float, dest):
            self.last = sorted(self.needed) if setting["calibration"] == "int16" else keep_float
            dest.write_bytes(b"x" * 100)

    backend = Passing16x8({"n0"})
    result = Search(backend, _Judge(backend), max_trials=20, max_minutes=5, tmp=tmp_path).run()
    assert result["passed"] and result["setting"]["calibration"] == "int16" and result["float_nodes"] == []
    assert len(result["trials"]) == 3  # no sensitivity ranking, no float unit tried
