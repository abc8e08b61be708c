"""Azure Functions package end to end: v2 app contents, calls through azure.functions.HttpRequest in a clean
interpreter, HTTP error semantics, one model load under concurrency, deterministic zip."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.local.azure_app import AzureApp
from tests.helpers.builds import digits_samples, variant_predictions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(digits_dist):
    """The shared digits build: its azure-functions target serves route `score`, top_k 2, at most 8 samples
    and 0.05 MB a request."""
    return digits_dist


@pytest.fixture(scope="module")
def app(dist, tmp_path_factory):
    return AzureApp(dist.out, tmp_path_factory.mktemp("wwwroot"))


def test_package_layout(dist):
    art = dist.artifact("azure-functions")
    assert art["path"] == "azure/functionapp.zip" and art["details"]["verified"] is True
    assert art["details"]["bytecode"] > 50 and art["details"]["route"] == "/api/score"
    assert set(art["details"]["flex_instance_fits"]) == {"512", "2048", "4096"}
    with zipfile.ZipFile(dist.out / art["path"]) as zf:
        names = set(zf.namelist())
        host = json.loads(zf.read("host.json"))
        reqs = zf.read("requirements.txt").decode().splitlines()
    for name in ("function_app.py", "host.json", "requirements.txt", ".funcignore", "serving.py", "model_runtime.py",
                 "modelpack.json", "model/model.tflite", ".python_packages/lib/site-packages/numpy/__init__.pyc"):
        assert name in names, name
    assert "local.settings.json" not in names
    assert (dist.out / "azure" / "functionapp" / "local.settings.json").exists()
    assert host["version"] == "2.0" and host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert any(r.startswith("numpy==") for r in reqs) and any(r.startswith("ai-edge-litert==") for r in reqs)
    assert any(r.startswith("azure-functions==") for r in reqs)
    settings = json.loads((dist.out / "azure" / "functionapp" / "local.settings.json").read_text())
    assert "AzureWebJobsFeatureFlags" not in settings["Values"]
    site = ".python_packages/lib/site-packages/"
    assert not any(n.startswith((site + "tensorflow/", site + "keras/", site + "modelpack/")) for n in names)


def test_predictions_match_variant_and_health(dist, app):
    x = digits_samples(4)
    expected = variant_predictions(dist, x)
    out = app.call([
        {"function": "health", "method": "GET", "route": "health"},
        {"route": "score", "body": {"instances": x.tolist()}},
        {"route": "score", "body": {"inputs": {"image": x[:1].tolist()}}},
    ])
    health, rows, columnar = out["results"]
    assert out["functions"] == ["health", "inference_protocol", "predict"]
    assert health["status"] == 200 and health["body"]["status"] == "ok"
    assert rows["status"] == 200 and rows["mimetype"] == "application/json"
    assert np.max(np.abs(np.asarray(rows["body"]["predictions"]) - expected)) <= 1e-6
    assert len(rows["body"]["top_k"][0]) == 2
    assert np.allclose(columnar["body"]["predictions"], expected[:1], atol=1e-6)
    assert out["loads"] == 1


def test_http_errors_are_json(app):
    out = app.call([
        {"route": "score", "body": "{not json"},
        {"route": "score", "body": {"instances": [[1, 2, 3]]}},
        {"route": "score", "body": {"instances": digits_samples(1).tolist(), "inputs": 1}},
        {"route": "score", "body": {"instances": [[[[float("nan")]] * 8] * 8]}},
        {"route": "score", "body": " " * 60_000},
        {"route": "score", "body": {"instances": digits_samples(9).tolist()}},
        {"route": "score", "body": "x", "headers": {"content-type": "text/plain"}},
        {"route": "score", "body": {"instances": digits_samples(1).tolist()}},
    ])["results"]
    statuses = [r["status"] for r in out]
    assert statuses == [400, 400, 400, 400, 413, 413, 415, 200]
    assert all(isinstance(r["body"], dict) for r in out)
    assert "not valid JSON" in out[0]["body"]["error"] and "expected [batch, 8, 8, 1]" in out[1]["body"]["error"]
    assert "NaN" in out[3]["body"]["error"]


def test_concurrent_first_requests_load_once(app):
    out = app.call([{"route": "score", "body": {"instances": digits_samples(1).tolist()}, "concurrent": 32}])
    assert out["loads"] == 1
    assert [r["status"] for r in out["results"]] == [200] * 32


def test_two_clean_builds_give_the_same_zip(dist, digits_rebuild):
    again = next(a for a in digits_rebuild["artifacts"] if a["target"] == "azure-functions")
    assert again["sha256"] == dist.artifact("azure-functions")["sha256"]


def test_invoke_cli_for_azure(dist, tmp_path):
    event = tmp_path / "body.json"
    event.write_text(json.dumps({"instances": digits_samples(1).tolist()}))
    result = CliRunner().invoke(cli, ["invoke", str(dist.out), "--target", "azure", "--event", str(event)])
    assert result.exit_code == 0, result.output
    assert "HTTP 200" in result.output and '"predictions"' in result.output
