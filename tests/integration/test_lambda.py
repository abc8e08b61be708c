"""Lambda targets end to end: layer and function zips for this machine's Python, run under the real
Lambda Runtime Interface Emulator, checked against the selected variant; concurrency, integrity,
determinism, SAM validation and the wrong-platform-wheel error."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.host.interpreters import host_arch, host_python
from modelpack.local.lambda_emulator import LambdaEmulator
from modelpack.local.unzip import safe_extract
from tests.helpers.builds import Dist, digits_samples, run_build, variant_predictions, write_digits_recipe
from tests.helpers.sam import sam_cli

pytestmark = pytest.mark.slow


def lambda_targets(**layer_opts) -> list[dict]:
    """The targets of the shared digits build (tests/conftest.py::digits_dist), Lambda only."""
    return [{"kind": "lambda-layer", "python": host_python(), "arch": host_arch(), **layer_opts},
            {"kind": "lambda-function", "top_k": 3, "max_batch": 16, "memory_mb": 512,
             "warmer_schedule": "rate(5 minutes)"}]


@pytest.fixture(scope="module")
def onnx_dist(tmp_path_factory) -> Dist:
    tmp = tmp_path_factory.mktemp("lambda-onnx")
    recipe = write_digits_recipe(tmp / "recipe.yaml", optimize={"variants": ["onnx-fp32"]}, targets=lambda_targets())
    return Dist(tmp / "out", recipe, tmp / "cache", run_build(recipe, tmp / "out", tmp / "cache"), "onnx-fp32")


@pytest.fixture(scope="module")
def int16_dist(tmp_path_factory) -> Dist:
    """The digits example as tflite-16x8 alone (int16 activations, int8 weights), for the Lambda targets."""
    tmp = tmp_path_factory.mktemp("lambda-16x8")
    recipe = write_digits_recipe(tmp / "recipe.yaml", optimize={"variants": ["tflite-16x8"]}, targets=lambda_targets())
    return Dist(tmp / "out", recipe, tmp / "cache", run_build(recipe, tmp / "out", tmp / "cache"), "tflite-16x8")


@pytest.fixture(params=["tflite", "onnx"])
def dist(request) -> Dist:
    return request.getfixturevalue("digits_dist" if request.param == "tflite" else "onnx_dist")


def test_layer_and_function_artifacts(dist):
    arts = {a["path"]: a for a in dist.report["artifacts"] if a["target"].startswith("lambda")}
    assert set(arts) == {"lambda/layer.zip", "lambda/function.zip", "lambda/template.yaml"}
    layer = arts["lambda/layer.zip"]["details"]
    runtime = "litert" if dist.variant.startswith("tflite") else "onnxruntime"
    assert layer["runtime"] == runtime and layer["verified"] is True
    assert layer["bytecode"] > 50  # sourceless .pyc for the modules inference imports
    assert arts["lambda/layer.zip"]["unzipped_bytes"] < layer["naive_unzipped_bytes"]
    fn = arts["lambda/function.zip"]["details"]
    assert fn["handler_check"]["max_abs_err_vs_variant"] <= 1e-5
    assert fn["handler_check"]["model_loads"] == 1
    assert 0 < fn["handler_cold_start_ms"]["total_ms"] < 5000
    import zipfile

    with zipfile.ZipFile(dist.out / "lambda" / "layer.zip") as zf:
        names = zf.namelist()
    assert all(n.startswith("python/") for n in names)
    pkg = "ai_edge_litert" if runtime == "litert" else "onnxruntime"
    assert f"python/{pkg}/__init__.pyc" in names and f"python/{pkg}/__init__.py" not in names
    assert not any("/tests/" in n or n.endswith(".pyi") for n in names)


def test_invoke_under_emulator_matches_variant(dist, tmp_path):
    x = digits_samples(5)
    expected = variant_predictions(dist, x)
    http = {"version": "2.0", "routeKey": "POST /predict", "rawPath": "/predict", "isBase64Encoded": True,
            "headers": {"content-type": "application/json"}, "requestContext": {"http": {"method": "POST"}},
            "body": base64.b64encode(json.dumps({"inputs": x[:2].tolist()}).encode()).decode()}
    with LambdaEmulator(dist.out, tmp_path) as emu:
        warm, _ = emu.invoke({"warmer": True})
        direct, _ = emu.invoke({"instances": x.tolist()})
        via_http, _ = emu.invoke(http)
        bad_shape, _ = emu.invoke({"instances": [[1, 2, 3]]})
        bad_json, _ = emu.invoke({**http, "isBase64Encoded": False, "body": "{not json"})
        bad_b64, _ = emu.invoke({**http, "body": "@@@"})
        too_big, _ = emu.invoke({**http, "isBase64Encoded": False, "body": " " * 6_000_001})
        batch, _ = emu.invoke({"instances": digits_samples(17).tolist()})
        after, _ = emu.invoke({"instances": x[:1].tolist()})
    assert warm == {"warmed": True, "model": "digits"}
    assert np.max(np.abs(np.asarray(direct["predictions"]) - expected)) <= 1e-6
    assert direct["model"]["name"] == "digits" and len(direct["model"]["sha256"]) == 64
    assert [t[0]["class"] for t in direct["top_k"]] == list(np.argmax(expected, axis=1))
    assert via_http["statusCode"] == 200
    assert np.allclose(json.loads(via_http["body"])["predictions"], expected[:2], atol=1e-6)
    assert bad_shape["statusCode"] == 400 and "expected [batch, 8, 8, 1]" in bad_shape["error"]
    assert bad_json["statusCode"] == 400 and "not valid JSON" in json.loads(bad_json["body"])["error"]
    assert bad_b64["statusCode"] == 400 and "base64" in json.loads(bad_b64["body"])["error"]
    assert too_big["statusCode"] == 413
    assert batch["statusCode"] == 413 and "limit of 16" in batch["error"]
    assert "predictions" in after  # still serving after bad requests


def test_16x8_variant_is_checked_at_build_and_served_by_the_lambda_handler(int16_dist, tmp_path):
    report = int16_dist.report
    assert report["selected"] == "tflite-16x8"
    row = {v["name"]: v for v in report["variants"]}["tflite-16x8"]
    assert row["status"] == "ok" and row["quantization"] == "int16x8" and row["budgets_passed"]
    assert "LiteRT" in row["details"]["runtime_check"]  # one calibration sample ran in the handlers' runtime
    keras_bytes = {v["name"]: v for v in report["variants"]}["keras"]["size_bytes"]
    assert row["size_bytes"] < keras_bytes / 3  # int8 weights
    assert row["accuracy_drop"] <= 0.01 and row["fidelity"]["agreement"] >= 0.97
    fn = next(a for a in report["artifacts"] if a["path"] == "lambda/function.zip")["details"]
    assert fn["handler_check"]["max_abs_err_vs_variant"] <= 1e-5  # the packaged handler answers as measured
    x = digits_samples(4)
    expected = variant_predictions(int16_dist, x)
    with LambdaEmulator(int16_dist.out, tmp_path) as emu:
        answer, _ = emu.invoke({"instances": x.tolist()})
    assert np.max(np.abs(np.asarray(answer["predictions"]) - expected)) <= 1e-6
    assert answer["model"]["name"] == "digits"
    assert [t[0]["class"] for t in answer["top_k"]] == list(np.argmax(expected, axis=1))
    layer = int16_dist.artifact("lambda-layer")
    assert layer["details"]["runtime"] == "litert" and layer["details"]["verified"] is True
    assert "| tflite-16x8 |" in (int16_dist.out / "report.md").read_text()


def _run_in_handler_env(function_dir: Path, layer_dir: Path, code: str) -> dict:
    from modelpack.targets.handler_check import handler_env

    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=function_dir,
                          env=handler_env(function_dir, layer_dir), timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"result": json.loads(proc.stdout.strip().splitlines()[-1]), "stdout": proc.stdout}


def extracted(dist, tmp_path) -> tuple[Path, Path]:
    task, opt = tmp_path / "task", tmp_path / "opt"
    safe_extract(dist.out / "lambda" / "function.zip", task)
    safe_extract(dist.out / "lambda" / "layer.zip", opt)
    return task, opt


def test_32_concurrent_cold_requests_load_once(dist, tmp_path):
    """32 threads hit a cold environment at once with different samples and batch sizes (so some take the
    one-sample path and some resize the interpreter): one load, and every thread gets its own answer."""
    task, opt = extracted(dist, tmp_path)
    x = digits_samples(40)
    batches = [(i, 1 + i % 3) for i in range(32)]
    events = json.dumps([{"instances": x[i : i + n].tolist()} for i, n in batches])
    code = f"""
import json, threading, handler
events = json.loads({events!r})
barrier = threading.Barrier(32)
results = [None] * 32
def call(k):
    barrier.wait()
    for _ in range(20):
        results[k] = handler.handler(events[k], None)
threads = [threading.Thread(target=call, args=(k,)) for k in range(32)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps({{"loads": handler.HOLDER.loads, "predictions": [r.get("predictions") for r in results]}}))
"""
    out = _run_in_handler_env(task, opt, code)["result"]
    assert out["loads"] == 1
    expected = variant_predictions(dist, x)
    for (i, n), got in zip(batches, out["predictions"]):
        assert got is not None
        assert np.abs(np.asarray(got, np.float32) - expected[i : i + n]).max() <= 1e-5, (i, n)


def test_tampered_model_is_refused(dist, tmp_path):
    task, opt = extracted(dist, tmp_path)
    model = next((task / "model").iterdir())
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    code = f"""
import json, handler
print(json.dumps(handler.handler({{"instances": {digits_samples(1).tolist()!r}}}, None)))
"""
    run = _run_in_handler_env(task, opt, code)
    assert run["result"]["statusCode"] == 500 and "integrity" in run["result"]["error"]
    assert '"refused"' in run["stdout"] and "build manifest" in run["stdout"]


def test_log_line_is_embedded_metric_format(dist, tmp_path):
    task, opt = extracted(dist, tmp_path)
    code = f"""
import json, handler
handler.handler({{"instances": {digits_samples(1).tolist()!r}}}, None)
handler.handler({{"instances": {digits_samples(1).tolist()!r}}}, None)
print(json.dumps({{}}))
"""
    lines = [json.loads(ln) for ln in _run_in_handler_env(task, opt, code)["stdout"].splitlines()[:2]]
    cold, warm = lines
    assert cold["cold"] is True and cold["ColdStart"] == 1 and cold["ModelLoadMs"] > 0
    assert warm["cold"] is False and "ModelLoadMs" not in warm and warm["InferenceMs"] > 0
    metrics = {m["Name"] for m in cold["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert metrics == {"ColdStart", "ModelLoadMs", "InferenceMs"}


def test_sam_template_passes_cfn_lint(dist):
    template = dist.out / "lambda" / "template.yaml"
    proc = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(template)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fn = yaml.safe_load(template.read_text())["Resources"]["ModelFunction"]["Properties"]
    assert fn["MemorySize"] == 512 and fn["Runtime"] == f"python{host_python()}" and fn["Handler"] == "handler.handler"
    assert fn["Events"]["Warmer"]["Properties"]["Schedule"] == "rate(5 minutes)"
    assert fn["FunctionUrlConfig"] == {"AuthType": "AWS_IAM"}
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    proc = subprocess.run([sam_cli(), "validate", "--lint", "-t", str(template)], capture_output=True, text=True,
                          check=False, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_two_clean_builds_give_identical_zips(digits_dist, digits_rebuild):
    first = {a["path"]: a["sha256"] for a in digits_dist.report["artifacts"]}
    second = {a["path"]: a["sha256"] for a in digits_rebuild["artifacts"]}
    assert first == second and "lambda/layer.zip" in first and "azure/functionapp.zip" in first


def test_wrong_platform_wheel_names_newest_that_installs(onnx_dist, tmp_path):
    targets = lambda_targets(versions={"onnxruntime": "1.32.0"})
    targets[0]["python"] = "3.11"
    recipe = write_digits_recipe(tmp_path / "r.yaml", optimize={"variants": ["onnx-fp32"]}, targets=targets)
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp_path / "o"),
                                      "--cache-dir", str(onnx_dist.cache)])
    assert result.exit_code == 3, result.output
    assert "Amazon Linux 2" in result.output and "glibc 2.26" in result.output
    assert "onnxruntime==1.32.0 has no wheel for it; the newest that installs is 1.16.3" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_invoke_refuses_zip_slip(tmp_path):
    import zipfile

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "x")
    from modelpack.errors import UsageError

    with pytest.raises(UsageError, match="outside the extraction directory"):
        safe_extract(evil, Path(tempfile.mkdtemp(dir=tmp_path)))
    assert not (tmp_path / "outside.txt").exists()


def test_invoke_cli_json_lines_from_stdin_with_logs(digits_dist):
    """`invoke --json --logs --event -`: one JSON object per event on stdout (jq reads it), logs on stderr."""
    x = digits_samples(2).tolist()
    events = json.dumps({"instances": x[:1]}) + "\n" + json.dumps({"instances": x[1:]}) + "\n"
    result = CliRunner().invoke(cli, ["invoke", str(digits_dist.out), "--event", "-", "--json", "--logs"],
                                input=events)
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["event"] for a in answers] == ["stdin:1", "stdin:2"]
    assert [a["cold"] for a in answers] == [True, False] and all(a["status"] == "ok" for a in answers)
    assert all(a["ms"] > 0 and len(a["response"]["predictions"]) == 1 for a in answers)
    logged = [json.loads(line[5:]) for line in result.stderr.splitlines() if line.startswith("log: {")]
    assert [entry["cold"] for entry in logged] == [True, False]  # the handler's own metric lines
    assert "log: START RequestId" in result.stderr


def test_built_dist_publishes_to_loopback_aws(onnx_dist):
    """The real build: layer, function with the template's settings, version, alias and IAM function URL."""
    from tests.helpers.aws_loopback import client, modelpack, moto_server

    with moto_server() as aws:
        proc = modelpack("publish", str(onnx_dist.out), env=aws)
        assert proc.returncode == 0, proc.stderr
        lam = client("lambda", aws)
        conf = lam.get_function_configuration(FunctionName="digits", Qualifier="live")
        assert conf["MemorySize"] == 512 and conf["Handler"] == "handler.handler"
        assert conf["Layers"][0]["Arn"] in proc.stdout
        url = lam.get_function_url_config(FunctionName="digits", Qualifier="live")
        assert url["AuthType"] == "AWS_IAM" and f"endpoint: {url['FunctionUrl']}" in proc.stdout
    report_md = (onnx_dist.out / "report.md").read_text()
    assert "## Next steps" in report_md and "modelpack publish . --target lambda" in report_md
