"""Handler options end to end under the Lambda runtime emulator: the model from S3 (a real S3-compatible
server, moto in standalone mode, on loopback) and the result cache (in memory, and a real redis-server)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelpack.host.interpreters import host_arch, host_python
from modelpack.local.lambda_emulator import LambdaEmulator
from tests.helpers.builds import run_build, write_digits_recipe
from tests.helpers.paths import DIGITS
from tests.helpers.processes import free_port, wait_for_port
from tests.helpers.services import need
from tests.helpers.serving import serving_module

pytestmark = pytest.mark.slow
SOURCE = "s3://models/digits/model.tflite"



@pytest.fixture(scope="module")
def s3():
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    env = {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    client = boto3.client("s3")
    client.create_bucket(Bucket="models")
    yield client
    server.stop()
    for k, v in saved.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture
def redis_server():
    """A real redis-server on loopback; returns (url, stop)."""
    port = free_port()
    proc = subprocess.Popen([need("redis-server", "the result cache tests"), "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, 10)

    def stop():
        proc.terminate()
        proc.wait(10)

    yield f"redis://127.0.0.1:{port}/0", stop
    if proc.poll() is None:
        stop()


def _build(tmp: Path, cache: dict, name: str, shared_cache: Path) -> tuple[Path, dict]:
    """The session build's recipe (same variant, same layer) with the model in S3 and a result cache; built with
    the session's cache, so only the function is new."""
    recipe = write_digits_recipe(tmp / f"{name}.yaml", optimize={"variants": ["tflite-fp32"]}, targets=[
        {"kind": "lambda-layer", "python": host_python(), "arch": host_arch()},
        {"kind": "lambda-function", "model_source": SOURCE, "upload": True, "cache": cache}])
    out = tmp / name
    return out, run_build(recipe, out, shared_cache)


@pytest.fixture(scope="module")
def built(s3, digits_dist, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("options")
    memory = _build(tmp, {"kind": "memory", "max_items": 8, "ttl_s": 1}, "memory", digits_dist.cache)
    redis = _build(tmp, {"kind": "redis", "ttl_s": 2}, "redis", digits_dist.cache)
    return {"memory": memory, "redis": redis}


def _x(i: int = 0) -> list:
    with np.load(DIGITS / "digits.npz") as npz:
        return npz["x"][i : i + 1].tolist()


def _expected(out: Path, x: list) -> np.ndarray:
    return serving_module("model_runtime").load(str(out / "variants" / "tflite-fp32.tflite")).predict({"image": np.asarray(x, np.float32)})[0]


def _log_lines(emu: LambdaEmulator) -> list[dict]:
    lines = []
    for line in emu.logs().splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


def _restore(s3, out: Path) -> None:
    s3.put_object(Bucket="models", Key="digits/model.tflite", Body=(out / "variants" / "tflite-fp32.tflite").read_bytes())


def test_package_leaves_the_model_and_boto3_out_and_uploads_it(built, s3):
    import zipfile

    out, report = built["memory"]
    fn = report["artifacts"][[a["path"] for a in report["artifacts"]].index("lambda/function.zip")]
    assert fn["details"]["model_in"] == "source" and fn["details"]["upload"]["uploaded"] is True
    with zipfile.ZipFile(out / "lambda" / "function.zip") as zf:
        names = zf.namelist()
        config = json.loads(zf.read("modelpack.json"))
    assert not [n for n in names if n.startswith("model/")]
    assert config["model"]["source"] == SOURCE and config["cache"] == {"kind": "memory", "max_items": 8, "ttl_s": 1}
    for archive in ("function.zip", "layer.zip"):
        with zipfile.ZipFile(out / "lambda" / archive) as zf:
            assert not [n for n in zf.namelist() if "boto3/" in n or "botocore/" in n], archive
    import hashlib

    body = s3.get_object(Bucket="models", Key="digits/model.tflite")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == config["model"]["sha256"]
    template = yaml.safe_load((out / "lambda" / "template.yaml").read_text())
    props = template["Resources"]["ModelFunction"]["Properties"]
    assert props["Policies"] == [{"S3ReadPolicy": {"BucketName": "models"}}]
    assert props["Environment"]["Variables"]["MODELPACK_MODEL_SOURCE"] == SOURCE


def test_cold_start_downloads_verifies_keeps_and_caches(built, tmp_path, monkeypatch):
    out, _ = built["memory"]
    model_dir = tmp_path / "model-dir"
    monkeypatch.setenv("MODELPACK_MODEL_DIR", str(model_dir))
    x, y = _x(0), _x(1)
    with LambdaEmulator(out, tmp_path / "env") as emu:
        first, _ = emu.invoke({"instances": x})
        again, _ = emu.invoke({"instances": x})
        other, _ = emu.invoke({"instances": y})
        time.sleep(1.3)  # ttl_s: 1
        expired, _ = emu.invoke({"instances": x})
    logs = [r for r in _log_lines(emu) if "status" in r]
    assert np.max(np.abs(np.asarray(first["predictions"]) - _expected(out, x))) <= 1e-6
    assert again == first and "predictions" in other and expired == first
    assert [r["cache"] for r in logs] == ["miss", "hit", "miss", "miss"]
    assert [r["CacheHits"] for r in logs] == [0, 1, 1, 1] and logs[-1]["CacheMisses"] == 3
    assert logs[0]["ModelDownloadMs"] > 0 and logs[0]["ModelLoadMs"] > 0 and "ModelDownloadMs" not in logs[1]
    assert {m["Name"] for m in logs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]} >= {"ModelDownloadMs", "CacheHits"}
    assert [p.suffix for p in model_dir.iterdir()] == [".tflite"]  # kept, no partial file left


def test_tampered_object_is_refused(built, s3, tmp_path, monkeypatch):
    out, _ = built["memory"]
    monkeypatch.setenv("MODELPACK_MODEL_DIR", str(tmp_path / "model-dir"))
    data = bytearray((out / "variants" / "tflite-fp32.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    s3.put_object(Bucket="models", Key="digits/model.tflite", Body=bytes(data))
    try:
        with LambdaEmulator(out, tmp_path / "env") as emu:
            first, _ = emu.invoke({"instances": _x()})
            second, _ = emu.invoke({"instances": _x()})
    finally:
        _restore(s3, out)
    for r in (first, second):
        assert r["statusCode"] == 500 and "integrity" in r["error"]
    assert not list((tmp_path / "model-dir").iterdir())  # the tampered bytes were not kept
    assert any("build manifest says" in json.dumps(r) for r in _log_lines(emu))


def test_missing_object_is_a_clear_error_without_a_crash_loop(built, s3, tmp_path, monkeypatch):
    out, _ = built["memory"]
    monkeypatch.setenv("MODELPACK_MODEL_DIR", str(tmp_path / "model-dir"))
    s3.delete_object(Bucket="models", Key="digits/model.tflite")
    try:
        with LambdaEmulator(out, tmp_path / "env") as emu:
            first, _ = emu.invoke({"instances": _x()})
            second, _ = emu.invoke({"instances": _x()})
            _restore(s3, out)
            recovered, _ = emu.invoke({"instances": _x()})
    finally:
        _restore(s3, out)
    for r in (first, second):
        assert r["statusCode"] == 503 and "does not exist" in r["error"] and SOURCE in r["error"]
    assert "predictions" in recovered  # the same environment retried and now serves


def test_redis_cache_is_shared_across_environments_and_honours_ttl(built, tmp_path, monkeypatch, redis_server):
    out, report = built["redis"]
    url, _ = redis_server
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("MODELPACK_MODEL_DIR", str(tmp_path / "model-dir"))
    fn = next(a for a in report["artifacts"] if a["path"] == "lambda/function.zip")
    assert fn["details"]["packages_added"] == ["redis==8.1.0"]
    with LambdaEmulator(out, tmp_path / "env1") as one:
        a, _ = one.invoke({"instances": _x()})
    with LambdaEmulator(out, tmp_path / "env2") as two:
        b, _ = two.invoke({"instances": _x()})
        time.sleep(2.5)  # ttl_s: 2
        c, _ = two.invoke({"instances": _x()})
    assert a == b == c and "predictions" in a
    assert [r["cache"] for r in _log_lines(one) if "status" in r] == ["miss"]
    assert [r["cache"] for r in _log_lines(two) if "status" in r] == ["hit", "miss"]


def test_redis_outage_degrades_to_no_cache_with_a_warning(built, tmp_path, monkeypatch, redis_server):
    out, _ = built["redis"]
    url, stop = redis_server
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("MODELPACK_MODEL_DIR", str(tmp_path / "model-dir"))
    with LambdaEmulator(out, tmp_path / "env") as emu:
        before, _ = emu.invoke({"instances": _x()})
        stop()
        during = [emu.invoke({"instances": _x(i)})[0] for i in range(3)]
    assert "predictions" in before and all("predictions" in r for r in during)
    lines = _log_lines(emu)
    assert [r["status"] for r in lines if "status" in r] == [200] * 4
    warnings = [r for r in lines if r.get("level") == "WARNING"]
    assert warnings and "result cache unavailable" in warnings[0]["message"]
    assert len(warnings) == 1  # left alone for a while after a failure: one warning, no timeout per request
