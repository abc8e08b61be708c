"""Hostile input and faults: fuzzed requests against the generated handlers, builds killed at random points,
secrets in the environment, an output directory that cannot be written."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelpack.cli.main import cli
from modelpack.files.output import sha256_file
from modelpack.local.unzip import safe_extract
from tests.helpers.builds import Dist, copy_dist, digits_samples, tree_digest
from tests.helpers.serving import fresh_import

pytestmark = pytest.mark.slow
STATUSES = {200, 400, 413, 415}
CASES = {"lambda": 0, "azure": 0}


@pytest.fixture(scope="module")
def built(digits_dist) -> Dist:
    """The session's digits build (read-only); the tests that rebuild write elsewhere."""
    return digits_dist


@pytest.fixture(scope="module")
def lambda_handler(built, tmp_path_factory):
    task = tmp_path_factory.mktemp("task")
    safe_extract(built.out / "lambda" / "function.zip", task)
    with fresh_import(task, "handler") as module:
        yield module


@pytest.fixture(scope="module")
def azure_app(built, tmp_path_factory):
    """The Azure app exactly as the build generated it (function_app.py and the shipped serving files), the
    runtime packages from this interpreter."""
    app = tmp_path_factory.mktemp("wwwroot")
    safe_extract(built.out / built.artifact("azure-functions")["path"], app)
    with fresh_import(app, "function_app") as module:
        yield module, {f.get_function_name(): f.get_user_function() for f in module.app.get_functions()}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=40,
)
PIXEL = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.integers(-300, 300) | st.text(max_size=3)
IMAGES = st.lists(st.lists(st.lists(st.lists(PIXEL, min_size=1, max_size=2), min_size=1, max_size=9),
                           min_size=1, max_size=9), min_size=0, max_size=3)
BODIES = st.one_of(
    JSON.map(json.dumps),
    JSON.map(lambda v: json.dumps({"instances": v})),
    JSON.map(lambda v: json.dumps({"inputs": v})),
    IMAGES.map(lambda v: json.dumps({"instances": v})),
    IMAGES.map(lambda v: json.dumps({"inputs": {"image": v}})),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["", "[" * 100_000, '{"instances": ' + "[" * 50_000 + "]" * 50_000 + "}", "null", "NaN",
                     '{"instances": [[[[1e400]]]]}', " " * 300_000]),
)
CONTENT_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "",
                                 "multipart/form-data", "APPLICATION/JSON"])


def _good():
    return {"instances": digits_samples(1).tolist()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(body=BODIES, b64=st.booleans(), ctype=CONTENT_TYPES, mangle=st.booleans())
def test_lambda_handler_survives_anything(lambda_handler, body, b64, ctype, mangle):
    payload = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode() if b64 else body
    if b64 and mangle:
        payload = payload[:-1] + "*"
    event = {"version": "2.0", "rawPath": "/predict", "requestContext": {"http": {"method": "POST"}},
             "headers": {"content-type": ctype}, "isBase64Encoded": b64, "body": payload}
    result = lambda_handler.handler(event, None)
    CASES["lambda"] += 1
    assert result["statusCode"] in STATUSES
    parsed = json.loads(result["body"])
    assert isinstance(parsed, dict) and (("predictions" in parsed) == (result["statusCode"] == 200))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=JSON)
def test_lambda_direct_invocation_survives_anything(lambda_handler, event):
    result = lambda_handler.handler(event, None)
    CASES["lambda"] += 1
    assert isinstance(result, dict)
    assert "predictions" in result or "warmed" in result or result["statusCode"] in STATUSES - {200}


def test_lambda_still_serves_after_fuzzing(lambda_handler):
    result = lambda_handler.handler(_good(), None)
    assert "predictions" in result and lambda_handler.HOLDER.loads == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(body=BODIES, ctype=CONTENT_TYPES)
def test_azure_function_survives_anything(azure_app, body, ctype):
    import azure.functions as func

    _, functions = azure_app
    req = func.HttpRequest(method="POST", url="/api/score", body=body.encode("utf-8", "surrogatepass"),
                           headers={"content-type": ctype})
    resp = functions["predict"](req)
    CASES["azure"] += 1
    assert resp.status_code in STATUSES
    parsed = json.loads(resp.get_body())
    assert isinstance(parsed, dict) and (("predictions" in parsed) == (resp.status_code == 200))


def test_azure_still_serves_after_fuzzing(azure_app):
    import azure.functions as func

    module, functions = azure_app
    req = func.HttpRequest(method="POST", url="/api/score", body=json.dumps(_good()).encode(),
                           headers={"content-type": "application/json"})
    assert functions["predict"](req).status_code == 200 and module.HOLDER.loads == 1
    print(f"fuzz cases: {CASES}")


def test_sigkill_at_random_points_leaves_previous_output(built, tmp_path):
    """Cold builds (--no-cache) killed at times drawn within the measured length of a cold build, so the kills
    land while the build works: the previous output stays byte for byte, and the next build clears up."""
    own = copy_dist(built, tmp_path, cache=False)
    out = own.out
    before = tree_digest(out)
    rng = random.Random(7)
    points = sorted(rng.uniform(0.05, 0.75) * built.seconds for _ in range(4))
    landed = 0
    for delay in points:
        proc = subprocess.Popen([sys.executable, "-m", "modelpack", "build", str(own.recipe), "--out", str(out),
                                 "--no-cache", "-q"], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            landed += 1
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        after = tree_digest(out)
        if proc.returncode == 0:  # the build completed before the kill: a new, complete output
            assert "manifest.json" in after and "report.json" in after
            before = after
        else:
            assert after == before, f"output changed after SIGKILL at {delay:.1f} s"
    print(f"cold build {built.seconds:.1f} s; SIGKILL at {[round(p, 1) for p in points]}; {landed} landed mid-build")
    assert landed >= len(points) - 1, "the kills must land while the build runs"
    # The next build completes and clears the staging directories the killed builds left.
    result = CliRunner().invoke(cli, ["build", str(own.recipe), "--out", str(out), "--cache-dir", str(built.cache)])
    assert result.exit_code == 0, result.output
    assert not list(out.parent.glob(".out.*.building"))
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    assert all(sha256_file(out / rel) == e["sha256"] for rel, e in manifest.items())


def test_secrets_in_environment_never_reach_outputs(built, tmp_path, monkeypatch):
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AZURE_STORAGE_KEY", secret)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(built.recipe), "--out", str(out), "--cache-dir", str(built.cache)])
    assert result.exit_code == 0
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".zip":
                import zipfile

                with zipfile.ZipFile(path) as zf:
                    data += b"".join(zf.read(n) for n in zf.namelist())
            assert secret.encode() not in data, path


def test_unwritable_output_is_a_clear_error(built, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(cli, ["build", str(built.recipe), "--out", str(blocker / "out"),
                                      "--cache-dir", str(built.cache)])
    assert result.exit_code == 3, result.output
    assert "cannot create the output directory" in result.output and "Traceback" not in result.output


def test_full_disk_is_a_clear_error_and_leaves_nothing(built, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(small)], check=True)
    try:
        result = CliRunner().invoke(cli, ["build", str(built.recipe), "--out", str(small / "out"),
                                          "--cache-dir", str(built.cache)])
        assert result.exit_code == 3, result.output
        assert "No space left on device" in result.output and "Traceback" not in result.output
        assert list(small.iterdir()) == []  # the staging directory was removed
    finally:
        subprocess.run(["umount", str(small)], check=False)
