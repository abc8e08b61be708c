"""tf-keras recurrent configs are made readable by Keras 3: a default `time_major: false` is dropped, nothing else."""

from __future__ import annotations

import json

import h5py

from modelpack.steps.port import _drop_default_time_major


def _config(time_major) -> dict:
    lstm = {"class_name": "LSTM", "config": {"name": "lstm", "units": 6, "time_major": time_major}}
    wrapped = {"class_name": "Bidirectional", "config": {"layer": {"class_name": "GRU",
                                                                   "config": {"time_major": time_major}}}}
    return {"class_name": "Functional", "config": {"layers": [lstm, wrapped]}}


def test_default_time_major_is_dropped_at_every_depth(tmp_path):
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(_config(False))
    _drop_default_time_major(path)
    with h5py.File(path, "r") as f:
        text = f.attrs["model_config"]
    assert "time_major" not in text and json.loads(text)["config"]["layers"][0]["config"]["units"] == 6


def test_true_time_major_is_kept_for_keras3_to_refuse(tmp_path):
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(_config(True))
    _drop_default_time_major(path)
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["model_config"]) == _config(True)
