"""Handlers route by the configured route, segment by segment, never by the substring /v2/: `route: ml/v2/predict`
predicts, an API stage named v2 in front of the path changes nothing, the Open Inference Protocol keeps its own
paths; routes that cannot work are refused by `modelpack validate` with the reason; the build's handler check
POSTs its sample through the configured route."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers.handlers import (
    GOOD,
    azure_caller,
    check_strict,
    event,
    function_dir,
    oip_json,
    with_azure_app,
)
from tests.helpers.paths import DIGITS

BODY = json.dumps({"instances": GOOD})


def post(handler, path: str, body: str = BODY, method: str = "POST"):
    result = handler.handler(event(body, "application/json", path, method), None)
    status, answer = check_strict(result)
    return status, answer, result.get("headers", {})


def test_a_route_holding_v2_predicts_and_the_protocol_keeps_its_paths(tmp_path, import_fresh, capsys):
    handler = import_fresh(function_dir(tmp_path / "fn", route="ml/v2/predict"), "handler")
    status, answer, _ = post(handler, "/ml/v2/predict")
    assert status == 200 and len(answer["predictions"]) == 1, answer
    status, answer, _ = post(handler, "/prod/ml/v2/predict")  # behind a stage or base path
    assert status == 200, answer
    status, answer, _ = post(handler, "/", BODY)  # a function URL's root
    assert status == 200, answer
    status, answer, _ = post(handler, "/v2/models/tiny/infer", oip_json(np.array(GOOD, np.float32)))
    assert status == 200 and answer["model_name"] == "tiny", answer
    status, answer, _ = post(handler, "/predict")
    assert status == 404 and "/ml/v2/predict" in answer["error"], answer
    status, answer, headers = post(handler, "/ml/v2/predict", "", "GET")
    assert status == 405 and headers.get("Allow") == "POST", (answer, headers)
    capsys.readouterr()


def test_an_api_stage_named_v2_changes_nothing(tmp_path, import_fresh, capsys):
    """An HTTP API stage named v2 puts /v2 in front of every path (rawPath /v2/predict)."""
    handler = import_fresh(function_dir(tmp_path / "fn"), "handler")
    status, answer, _ = post(handler, "/v2/predict")
    assert status == 200 and "predictions" in answer, answer
    status, answer, _ = post(handler, "/v2/v2/models/tiny/infer", oip_json(np.array(GOOD, np.float32)))
    assert status == 200 and answer["model_name"] == "tiny", answer
    status, answer, _ = post(handler, "/v2/v2/health/ready", "", "GET")
    assert status == 200 and answer == {"ready": True}
    capsys.readouterr()


def test_the_azure_app_predicts_on_a_route_holding_v2(tmp_path, import_fresh):
    call = azure_caller(import_fresh(with_azure_app(function_dir(tmp_path / "fn"), route="ml/v2/predict"),
                                     "function_app"))
    status, _, body = call("POST", "/api/ml/v2/predict", BODY, {"content-type": "application/json"})
    assert status == 200 and len(json.loads(body)["predictions"]) == 1, body
    status, _, body = call("GET", "/api/v2/models/tiny")
    assert status == 200 and json.loads(body)["name"] == "tiny"


def validate(tmp_path: Path, targets: list[dict]) -> subprocess.CompletedProcess:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "routes", "model": {"path": str(DIGITS / "model.keras")},
                                      "data": {"path": str(DIGITS / "digits.npz")}, "targets": targets}))
    return subprocess.run([sys.executable, "-m", "modelpack", "validate", str(recipe)], capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, "GITHUB_ACTIONS": "false"})


@pytest.mark.parametrize("target,reason", [
    ({"kind": "lambda-function", "route": "v2/models/digits/infer"}, "Open Inference Protocol path"),
    ({"kind": "lambda-function", "endpoint": "http-api", "route": "api/v2"}, "Open Inference Protocol path"),
    ({"kind": "lambda-split", "route": "v2/health/ready"}, "Open Inference Protocol path"),
    ({"kind": "lambda-function", "route": "predict/"}, "empty path segment"),
    ({"kind": "azure-functions", "route": "v2/predict"}, "under /api/v2/"),
    ({"kind": "azure-functions", "route": "health"}, "health check"),
    ({"kind": "azure-image", "route": "v2/score"}, "under /api/v2/"),
])
def test_validate_refuses_routes_that_cannot_work(tmp_path, target, reason):
    proc = validate(tmp_path, [target])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    text = " ".join(proc.stderr.split())
    assert "route" in text and reason in text and "Traceback" not in text, text


def test_validate_takes_routes_that_work(tmp_path):
    proc = validate(tmp_path, [{"kind": "lambda-function", "route": "ml/v2/predict"},
                               {"kind": "azure-functions", "route": "ml/v2/score"}])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_handler_check_posts_through_the_configured_route(tmp_path):
    """cold_start() sends its sample as a Function URL event to /<route>: a handler that does not predict there
    fails the check instead of passing it with a direct invocation."""
    import sysconfig

    from modelpack.targets import handler_check

    opt = tmp_path / "opt"
    opt.mkdir()
    (opt / "python").symlink_to(sysconfig.get_paths()["purelib"], target_is_directory=True)
    sample = {"x": np.array(GOOD, np.float32)}
    fn = function_dir(tmp_path / "fn", route="ml/v2/predict")
    check = handler_check.cold_start(fn, opt, sys.executable, sample, runs=1, route="ml/v2/predict")
    assert len(check["response"]["predictions"]) == 1
    with pytest.raises(RuntimeError, match=r"POST /score with status 404"):
        handler_check.cold_start(fn, opt, sys.executable, sample, runs=1, route="score")
