"""`modelpack serve`'s handler process on small hand-written handlers: one that dies while it starts (a broken or
changed package, a process killed for memory) is a usage error naming how it died and what to do, not an internal
error; whatever a handler answers is served as strict JSON (a NaN is an error body, never a bare NaN)."""

from __future__ import annotations

import json
import sys

import pytest

from modelpack.errors import EXIT_USAGE, ModelpackError
from modelpack.local.handler_child import Package, Supervisor


@pytest.mark.parametrize("start,how", [("raise SystemExit(1)", "exit code 1"),
                                       ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
                                        "signal SIGKILL (killed: out of memory")])
def test_a_handler_that_dies_at_start_is_the_users_to_fix(tmp_path, start, how):
    (tmp_path / "handler.py").write_text(start + "\n")
    package = Package("lambda", sys.executable, {"PYTHONPATH": str(tmp_path)}, tmp_path, {})
    with pytest.raises(ModelpackError) as refused:
        Supervisor(package, log=lambda line: None)
    text = str(refused.value)
    assert refused.value.exit_code == EXIT_USAGE
    assert f"handler process died while starting ({how}" in text and "modelpack invoke" in text, text


def test_a_nan_in_what_the_handler_answers_is_a_strict_error_body(tmp_path):
    (tmp_path / "handler.py").write_text("def handler(event, context):\n    return {'score': float('nan')}\n")
    supervisor = Supervisor(Package("lambda", sys.executable, {"PYTHONPATH": str(tmp_path)}, tmp_path, {}),
                            log=lambda line: None)
    try:
        answer = supervisor.call("POST", "/predict", "", {"content-type": "application/json"}, b"{}")
    finally:
        supervisor.close()
    assert b"NaN" not in answer.body and answer.status == 500, answer
    assert "Out of range float values are not JSON compliant" in json.loads(answer.body)["error"]
