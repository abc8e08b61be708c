"""Zipped sizes started early give what zipped_size gives, once each, and close leaves nothing running."""

from __future__ import annotations

import os

from modelpack.files.output import zipped_size
from modelpack.files.zipsizes import ZippedSizes


def test_a_size_started_early_is_the_files_zipped_size_and_is_taken_once(tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(os.urandom(300_000) + bytes(300_000))
    sizes = ZippedSizes()
    sizes.start(model)
    sizes.start(model)  # started once
    assert sizes.take(model) == zipped_size(model)
    assert sizes.take(model) is None  # taken: the measure stage deflates it itself if it asks again
    assert sizes.take(tmp_path / "never-started") is None
    sizes.close()


def test_a_missing_file_is_not_started_and_close_cancels_what_is_queued(tmp_path):
    sizes = ZippedSizes()
    sizes.start(tmp_path / "absent.onnx")
    assert sizes.take(tmp_path / "absent.onnx") is None
    files = []
    for i in range(4):
        files.append(tmp_path / f"m{i}.onnx")
        files[-1].write_bytes(os.urandom(2_000_000))
        sizes.start(files[-1])
    sizes.close()  # waits for the one being deflated, drops the rest
    assert all(sizes.take(f) is None for f in files)
    assert sizes._pool is None
