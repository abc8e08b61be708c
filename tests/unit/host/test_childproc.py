"""The child-process helpers: scrubbed environment, the marker protocol both ways, pip, and the shared checks."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from modelpack.errors import TargetError
from modelpack.host import childproc
from modelpack.recipe.targets import AzureImageSpec, LambdaFunctionSpec, LambdaSplitSpec, ResponseSpec
from modelpack.targets import handler_check, lambda_limits


def test_scrubbed_env_drops_the_build_interpreter_and_sets_the_child_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/leak")
    monkeypatch.setenv("PYTHONHOME", "/leak")
    monkeypatch.setenv("VIRTUAL_ENV", "/leak")
    monkeypatch.setenv("MODELPACK_KEEP", "yes")
    env = childproc.scrubbed_env(["/a", "/b"], OMP_NUM_THREADS="4")
    assert env["PYTHONPATH"] == "/a:/b" and "PYTHONHOME" not in env and "VIRTUAL_ENV" not in env
    assert env["MODELPACK_KEEP"] == "yes" and env["OMP_NUM_THREADS"] == "4"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONNOUSERSITE"] == "1"
    assert "PYTHONPATH" not in childproc.scrubbed_env()


def test_a_child_written_marker_line_is_read_back_among_noise():
    script = "import json\nprint('warming up {not json')\nvalue = {'a': [1, 2.5], 'b': 'x'}\n" + \
        childproc.write_source("MODELPACK_T", "value") + "\nprint('MODELPACK_TX 1')\n"
    out = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, check=True).stdout
    assert childproc.read(out, "MODELPACK_T") == {"a": [1, 2.5], "b": "x"}
    assert childproc.read(out, "MODELPACK_OTHER") is None


def test_read_finds_a_prefixed_marker_and_picks_first_or_last(capsys):
    childproc.write("M", 1)
    childproc.write("M", 2)
    out = "INFO: " + capsys.readouterr().out
    assert childproc.read(out, "M") == 1 and childproc.read(out, "M", last=True) == 2


def test_pip_runs_the_given_interpreter_and_reports_its_failure():
    assert childproc.pip(["--version"]).returncode == 0
    failed = childproc.pip(["install", "--no-index", "--quiet", "no-such-package-modelpack-test"])
    assert failed.returncode != 0 and "no-such-package-modelpack-test" in childproc.pip_tail(failed)


def test_agree_passes_within_tolerance_and_names_both_sides_beyond_it():
    expected = [np.array([[0.25, 0.75]])]
    assert handler_check.agree({"predictions": [[0.25, 0.75 + 5e-6]]}, ["p"], expected, "x", "y") <= 1e-5
    assert handler_check.agree({"predictions": [[0.0, 1.0]]}, ["p"], None, "x", "y") is None
    with pytest.raises(TargetError, match=r"the handler differs from the variant's by 1\.00e-01"):
        handler_check.agree({"predictions": [[0.35, 0.75]]}, ["p"], expected, "the handler", "the variant's")
    assert handler_check.event({"x": np.zeros((1, 2), np.float32)}) == {"inputs": {"x": [[0.0, 0.0]]}}


def test_enforce_stops_on_the_first_error_and_notes_warnings():
    ctx = SimpleNamespace(report=SimpleNamespace(notes=[]))
    lambda_limits.enforce(ctx, "lambda-function", 10, {"function.zip": 60_000_000}, layers=1)
    assert len(ctx.report.notes) == 1 and ctx.report.notes[0].startswith("lambda-function: function.zip is 60.0 MB")
    with pytest.raises(TargetError, match=r"^lambda-split: part 2: 6 layers"):
        lambda_limits.enforce(ctx, "lambda-split: part 2", 10, {}, layers=6)


def test_every_serving_spec_takes_its_response_fields_from_one_base():
    for spec in (LambdaFunctionSpec(kind="lambda-function", top_k=3), LambdaSplitSpec(kind="lambda-split", top_k=3),
                 AzureImageSpec(kind="azure-image", top_k=3)):
        assert isinstance(spec, ResponseSpec) and spec.response_options() == {"top_k": 3, "max_batch": 64}


def test_children_finds_only_this_process_children_by_command_line():
    from tests.helpers.processes import children

    marker = b"modelpack-children-test"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker.decode()])
    try:
        assert children(os.getpid(), marker) == [proc.pid]
        assert children(os.getpid(), b"no-such-command-line-here") == []
        assert proc.pid not in children(1, marker)
    finally:
        proc.kill()
        proc.wait()
