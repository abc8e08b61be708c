"""Hostile and careless events against every handler kind: strict JSON out, a 4xx for every malformed request,
out-of-range numbers refused in the model's own dtype, bounded memory per request, and a missing or tampered
model reported as JSON (never a crash loop).

Fast cases run the shipped handler files around tiny ONNX models built in code; the slow ones go through a
built package: the Lambda function under the runtime emulator and the generated Azure function app.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.handlers import (
    GOOD,
    check_strict,
    function_dir,
    hostile_body,
    http,
    log_lines,
    sha256,
    split_dir,
    strict,
)
from tests.helpers.paths import DIGITS


@pytest.fixture
def tiny(tmp_path, import_fresh):
    return import_fresh(function_dir(tmp_path / "fn"), "handler")


@pytest.fixture
def tiny_int(tmp_path, import_fresh):
    return import_fresh(function_dir(tmp_path / "fn", "int32"), "handler")


HOSTILE_HTTP = {
    "body is an object": http({"instances": GOOD}),
    "body is a list": http([1, 2]),
    "body is a number": http(7),
    "body is true": http(True),
    "body is None": http(None),
    "body holds a lone surrogate": http('{"instances": [[0.1, 0.2, 0.3, "\ud800"]]}'),
    "body is a lone surrogate": http("\udfff"),
    "headers is a list": http(json.dumps({"instances": GOOD}), headers=[["content-type", "application/json"]]),
    "headers is a string": http(json.dumps({"instances": GOOD}), headers="content-type: application/json"),
    "content-type is a list": http(json.dumps({"instances": GOOD}), headers={"content-type": ["application/json"]}),
    "header value is a number": http(json.dumps({"instances": GOOD}), headers={"content-type": 5}),
    "requestContext is a string": {**http(json.dumps({"instances": GOOD})), "requestContext": "x"},
    "requestContext is a list": {**http(json.dumps({"instances": GOOD})), "requestContext": [1]},
    "isBase64Encoded is a string": http(base64.b64encode(b"{}").decode(), isBase64Encoded="true"),
    "isBase64Encoded is a number": http(json.dumps({"instances": GOOD}), isBase64Encoded=1),
    "base64 body with a surrogate": http("e30\ud800", isBase64Encoded=True),
    "base64 body is a list": http([1], isBase64Encoded=True),
    "NaN literal": http('{"instances": [[NaN, 0, 0, 0]]}'),
    "Infinity literal": http('{"instances": [[Infinity, 0, 0, 0]]}'),
    "huge number literal": http('{"instances": [[1e400, 0, 0, 0]]}'),
    "huge integer literal": http('{"instances": [[' + "9" * 5000 + ", 0, 0, 0]]}"),
    "deeply nested lists": http('{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    "mixed instance types": http(json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4], {"x": [0, 0, 0, 0]}]})),
    "string leaves": http(json.dumps({"instances": [["a", "b", "c", "d"]]})),
    "null leaves": http(json.dumps({"instances": [[None, None, None, None]]})),
    "nested leaves": http(json.dumps({"instances": [[[0.1], [0.2], [0.3], [0.4]]]})),
    "ragged rows": http(json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4], [0.1]]})),
    "empty batch": http(json.dumps({"inputs": []})),
    "keys not input names": http(json.dumps({"inputs": {"1": [[0, 0, 0, 0]]}})),
    "oversize batch": http(json.dumps({"instances": GOOD * 9})),
    "text/plain": http(json.dumps({"instances": GOOD}), headers={"content-type": "text/plain"}),
}
HOSTILE_DIRECT = {
    "non-string keys": {1: 2, (3, 4): "x"},
    "instances is a number": {"instances": 5},
    "instances is an object with an int key": {"instances": [{7: [0, 0, 0, 0]}]},
    "instances hold a surrogate": {"instances": [["\ud800", 0, 0, 0]]},
    "inputs and instances": {"instances": GOOD, "inputs": GOOD},
    "non-finite in float64": {"instances": [[float("nan"), 0, 0, 0]]},
    "1e39 overflows float32": {"instances": [[1e39, 0, 0, 0]]},
    "integer past 64 bits": {"instances": [[10**30, 0, 0, 0]]},
    "two million empty rows": {"instances": [[]] * 2_000_000},
    "a set": {"instances": {1, 2}},
    "bytes": {"instances": [[b"\x00", 0, 0, 0]]},
    "warmer is a string": {"warmer": "yes", "instances": 1},
}


@pytest.mark.parametrize("case", sorted(HOSTILE_HTTP))
def test_every_malformed_http_event_is_a_4xx_strict_json_error(tiny, capsys, case):
    result = tiny.handler(HOSTILE_HTTP[case], None)
    status, body = check_strict(result)
    assert 400 <= status < 500 and isinstance(body.get("error"), str) and body["error"], (case, result)
    assert "predictions" not in body
    log_lines(capsys.readouterr().out)


@pytest.mark.parametrize("case", sorted(HOSTILE_DIRECT, key=str))
def test_every_malformed_direct_event_is_a_4xx(tiny, capsys, case):
    result = tiny.handler(HOSTILE_DIRECT[case], None)
    assert 400 <= result["statusCode"] < 500 and "predictions" not in result, (case, result)
    strict(json.dumps(result))
    log_lines(capsys.readouterr().out)


def test_still_serves_after_hostile_events(tiny):
    for event in list(HOSTILE_HTTP.values()) + list(HOSTILE_DIRECT.values()):
        tiny.handler(event, None)
    status, body = check_strict(tiny.handler(http(json.dumps({"instances": GOOD})), None))
    assert status == 200 and len(body["predictions"]) == 1 and tiny.HOLDER.loads == 1


def test_out_of_range_floats_are_judged_in_float32(tiny, capsys):
    row = lambda v: {"instances": [[v, 0.0, 0.0, 0.0]]}  # noqa: E731
    fine = tiny.handler(row(3.0e38), None)  # finite in float32, but x @ W overflows to infinity
    assert fine["statusCode"] == 500 and "NaN or infinity" in fine["error"]
    refused = tiny.handler(row(1e39), None)  # finite in float64, infinity in float32
    assert refused["statusCode"] == 400 and "not finite as float32" in refused["error"]
    via_http = tiny.handler(http(json.dumps(row(1e38))), None)
    assert via_http["statusCode"] == 500 and "NaN or infinity" in strict(via_http["body"])["error"]
    ok = tiny.handler(row(1e3), None)
    assert np.isfinite(ok["predictions"]).all() and ok["top_k"][0][0]["class"] in (0, 1, 2)
    logs = log_lines(capsys.readouterr().out)
    assert [r["status"] for r in logs if "status" in r] == [500, 400, 500, 200]


@pytest.mark.parametrize("value,reason", [(2**31, "outside the int32 range"), (-(2**31) - 1, "outside the int32 range"),
                                          (1.5, "must hold integers"), (1e10, "outside the int32 range"),
                                          (float("inf"), "must hold integers"), (10**30, "too large"),
                                          (1e400, "must hold integers")])
def test_out_of_range_integers_are_refused(tiny_int, value, reason):
    result = tiny_int.handler({"instances": [[value, 0, 0, 0]]}, None)
    assert result["statusCode"] == 400 and reason in result["error"], result


def test_integer_model_serves_its_range(tiny_int):
    result = tiny_int.handler({"instances": [[2**31 - 1, -(2**31), 7, True]]}, None)
    assert "predictions" in result and np.isfinite(result["predictions"]).all()


@pytest.mark.parametrize("make", ["empty lists", "empty objects", "flat numbers", "short strings", "oversize batch",
                                  "deep nesting"])
def test_hostile_bodies_are_refused_before_they_are_parsed(tiny, make):
    text = hostile_body(make, json.dumps(GOOD[0]))
    event = http(text)
    tiny.handler(http(json.dumps({"instances": GOOD})), None)  # loaded: only the request's own cost is traced
    tracemalloc.start()
    try:
        result = tiny.handler(event, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["statusCode"] == 413 and "batch within the limit of 8" in strict(result["body"])["error"]
    assert peak <= 64 * 1024, f"{make}: {peak} bytes traced for a {len(text)}-byte body (only counted, never copied)"


def test_a_full_valid_batch_stays_within_three_times_its_body(tiny):
    text = json.dumps({"instances": [[0.123456, -1.5, 2.25, 1e-3]] * 8})
    tiny.handler(http(text), None)
    tracemalloc.start()
    try:
        result = tiny.handler(http(text), None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["statusCode"] == 200 and peak <= 3 * len(text) + 64 * 1024


def test_missing_model_is_a_json_500_on_every_request_and_recovers(tmp_path, capsys, import_fresh):
    fn = function_dir(tmp_path / "fn")
    model = fn / "model" / "model.onnx"
    saved = model.read_bytes()
    model.unlink()
    handler = import_fresh(fn, "handler")
    answers = [handler.handler({"instances": GOOD}, None) for _ in range(2)]
    for a in answers:
        assert a["statusCode"] == 500 and "model.onnx cannot be read" in a["error"] and "redeploy" in a["error"]
    warm = handler.handler({"warmer": True}, None)
    assert warm["warmed"] is False and "model.onnx" in warm["error"]
    model.write_bytes(saved)
    assert "predictions" in handler.handler({"instances": GOOD}, None)
    logs = log_lines(capsys.readouterr().out)
    assert sum("model_error" in r for r in logs) == 2 and any("warmer_failed" in r for r in logs)


def test_init_load_of_a_missing_model_never_raises(tmp_path, capsys, import_fresh):
    fn = function_dir(tmp_path / "fn", load="init")
    (fn / "model" / "model.onnx").unlink()
    handler = import_fresh(fn, "handler")  # would raise FileNotFoundError at import before
    lines = log_lines(capsys.readouterr().out)
    assert len(lines) == 1 and "cannot be read" in lines[0]["init_load_failed"]
    status, body = check_strict(handler.handler(http(json.dumps({"instances": GOOD})), None))
    assert status == 500 and "model.onnx cannot be read" in body["error"]


def test_init_load_of_a_tampered_model_never_raises(tmp_path, capsys, import_fresh):
    fn = function_dir(tmp_path / "fn", load="init")
    model = fn / "model" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    handler = import_fresh(fn, "handler")
    lines = log_lines(capsys.readouterr().out)
    assert len(lines) == 1 and "build manifest says" in lines[0]["init_load_failed"]
    assert handler.handler({"warmer": True}, None) == {"warmed": False, "model": "tiny",
                                                       "error": "model integrity check failed; refusing to serve"}
    result = handler.handler({"instances": GOOD}, None)
    assert result["statusCode"] == 500 and "integrity" in result["error"]


def test_a_file_the_runtime_cannot_open_is_a_json_500(tmp_path, import_fresh):
    fn = function_dir(tmp_path / "fn")
    model = fn / "model" / "model.onnx"
    model.write_bytes(b"not an onnx model")
    config = json.loads((fn / "modelpack.json").read_text())
    config["model"]["sha256"] = sha256(model)  # a manifest that matches: only the runtime can object
    (fn / "modelpack.json").write_text(json.dumps(config))
    handler = import_fresh(fn, "handler")
    result = handler.handler({"instances": GOOD}, None)
    assert result["statusCode"] == 500 and "runtime could not open the model" in result["error"]


def test_unreadable_config_never_raises_at_import(tmp_path, capsys, import_fresh):
    fn = function_dir(tmp_path / "fn")
    (fn / "modelpack.json").write_text("{broken")
    handler = import_fresh(fn, "handler")
    assert "could not start" in log_lines(capsys.readouterr().out)[0]["init_failed"]
    status, body = check_strict(handler.handler(http(json.dumps({"instances": GOOD})), None))
    assert status == 500 and "JSONDecodeError" in body["error"]
    warm = handler.handler({"warmer": True}, None)
    assert warm["warmed"] is False and "could not start" in warm["error"]


def test_split_chain_handler_refuses_hostile_events_and_serves(tmp_path, capsys, import_fresh):
    handler = import_fresh(split_dir(tmp_path / "split"), "handler")
    for case in ("body is an object", "headers is a list", "body holds a lone surrogate", "ragged rows"):
        status, body = check_strict(handler.handler(HOSTILE_HTTP[case], None))
        assert 400 <= status < 500, case
    assert handler.handler({"instances": [[1e39, 0, 0, 0]]}, None)["statusCode"] == 400
    overflow = handler.handler({"instances": [[3e38, 3e38, 0, 0]]}, None)
    assert overflow["statusCode"] == 500 and "NaN or infinity" in overflow["error"]
    ok = handler.handler({"instances": GOOD * 2}, None)
    assert np.asarray(ok["predictions"]).shape == (2, 3) and handler.HOLDER.loads == 1
    log_lines(capsys.readouterr().out)


def test_split_chain_with_a_missing_part_reports_it(tmp_path, import_fresh):
    fn = split_dir(tmp_path / "split")
    (fn / "model" / "part2.onnx").unlink()
    handler = import_fresh(fn, "handler")
    result = handler.handler({"instances": GOOD}, None)
    assert result["statusCode"] == 500 and "part2.onnx cannot be read" in result["error"]
    assert handler.handler({"warmer": True}, None)["warmed"] is False


# The generated packages of the session's digits build: the Lambda function (under the emulator), the Azure app.


@pytest.fixture(scope="module")
def built(digits_dist) -> Path:
    """The session's digits build (tests/conftest.py): TFLite float32, a Lambda function taking at most 16
    samples and an Azure app taking at most 8 and 0.05 MB."""
    return digits_dist.out


def digit(n: int = 1, value: float | None = None) -> list:
    with np.load(DIGITS / "digits.npz") as npz:
        x = npz["x"][:n].astype(np.float64)  # float64, so 1e39 reaches the handler as 1e39
    if value is not None:  # every pixel: one 1e38 alone can still give a finite output
        x[:] = value
    return x.tolist()


@pytest.mark.slow
def test_lambda_function_under_the_emulator(built, tmp_path):
    from modelpack.local.lambda_emulator import LambdaEmulator

    with LambdaEmulator(built, tmp_path) as emu:
        answers = {name: emu.invoke(event)[0] for name, event in {
            "dict body": http({"instances": digit()}),
            "headers list": http(json.dumps({"instances": digit()}), headers=[1, 2]),
            "surrogate body": http('{"instances": "\ud800"}'),
            "isBase64Encoded string": http("e30=", isBase64Encoded="yes"),
            "NaN literal": http('{"instances": [NaN]}'),
            "empty lists": http('{"instances": [' + ",".join(["[]"] * 1_000_000) + "]}"),
            "1e39": {"instances": digit(1, 1e39)},
            "1e38": http(json.dumps({"instances": digit(1, 1e38)})),
            "warmer": {"warmer": True},
            "good": http(json.dumps({"instances": digit(2)})),
        }.items()}
    for name in ("dict body", "headers list", "surrogate body", "isBase64Encoded string", "NaN literal"):
        assert answers[name]["statusCode"] == 400, (name, answers[name])
        strict(answers[name]["body"])
    assert answers["empty lists"]["statusCode"] == 413
    assert answers["1e39"].get("statusCode") == 400 and "not finite as float32" in answers["1e39"]["error"]
    assert answers["1e38"]["statusCode"] == 500 and "NaN or infinity" in strict(answers["1e38"]["body"])["error"]
    assert answers["warmer"] == {"warmed": True, "model": "digits"}
    assert answers["good"]["statusCode"] == 200 and len(strict(answers["good"]["body"])["predictions"]) == 2
    log_lines("\n".join(ln for ln in emu.logs().splitlines() if ln.startswith("{")))


@pytest.mark.slow
def test_lambda_function_with_its_model_missing_under_the_emulator(built, tmp_path):
    from modelpack.local.lambda_emulator import LambdaEmulator

    emu = LambdaEmulator(built, tmp_path)
    (emu.task / "model" / "model.tflite").unlink()
    with emu:
        first, _ = emu.invoke({"instances": digit()})
        again, _ = emu.invoke(http(json.dumps({"instances": digit()})))
        warm, _ = emu.invoke({"warmer": True})
    assert first["statusCode"] == 500 and "model.tflite cannot be read" in first["error"]
    assert again["statusCode"] == 500 and "redeploy" in strict(again["body"])["error"]
    assert warm["warmed"] is False and "model.tflite" in warm["error"]


@pytest.fixture
def azure(built, tmp_path, import_fresh):
    """The generated function app (azure/functionapp), imported fresh; returns (module, call)."""
    import azure.functions as func

    app = tmp_path / "wwwroot"
    shutil.copytree(built / "azure" / "functionapp", app, ignore=shutil.ignore_patterns(".python_packages"))

    def load():
        module = import_fresh(app, "function_app")
        functions = {f.get_function_name(): f.get_user_function() for f in module.app.get_functions()}

        def call(body: bytes, ctype: str = "application/json", function: str = "predict"):
            req = func.HttpRequest(method="POST" if function == "predict" else "GET", url=f"/api/{function}",
                                   body=body, headers={"content-type": ctype})
            resp = functions[function](req)
            return resp.status_code, strict(resp.get_body())

        return module, call

    return app, load


@pytest.mark.slow
def test_generated_azure_app_refuses_hostile_bodies(azure):
    _, load = azure
    _, call = load()
    cases = {
        b'{"instances": [NaN]}': 400,
        '{"instances": "\ud800"}'.encode("utf-8", "surrogatepass"): 400,
        b"\xff\xfe": 400,
        b'{"instances": [' + b",".join([b"[]"] * 300_000) + b"]}": 413,
        b'{"instances": ' + b"[" * 200_000 + b"]" * 200_000 + b"}": 413,
        json.dumps({"instances": digit(1, 1e39)}).encode(): 400,
        json.dumps({"instances": digit(9)}).encode(): 413,
        json.dumps({"instances": digit()}).replace("0.0", '"x"', 1).encode(): 400,
        json.dumps({"inputs": {"image": digit(), "extra": 1}}).encode(): 400,
        json.dumps({"instances": digit(1, 1e38)}).encode(): 500,
    }
    for body, expected in cases.items():
        status, parsed = call(body)
        assert status == expected and "error" in parsed, (body[:60], status, parsed)
    status, parsed = call(json.dumps({"instances": digit(4)}).encode())
    assert status == 200 and len(parsed["predictions"]) == 4


@pytest.mark.slow
def test_generated_azure_app_reports_a_missing_or_tampered_model(azure):
    app, load = azure
    model = app / "model" / "model.tflite"
    saved = model.read_bytes()
    model.unlink()
    module, call = load()
    status, body = call(json.dumps({"instances": digit()}).encode())
    assert status == 500 and "model.tflite cannot be read" in body["error"]
    status, body = call(b"", function="health")
    assert status == 500 and body["status"] == "error"
    model.write_bytes(saved[:-1] + bytes([saved[-1] ^ 0xFF]))
    status, body = call(json.dumps({"instances": digit()}).encode())
    assert status == 500 and "integrity" in body["error"]
    model.write_bytes(saved)
    assert call(json.dumps({"instances": digit()}).encode())[0] == 200 and module.HOLDER.loads == 1


@pytest.mark.slow
def test_generated_azure_app_imports_without_its_config(azure):
    app, load = azure
    (app / "modelpack.json").unlink()
    _, call = load()
    status, body = call(json.dumps({"instances": digit()}).encode())
    assert status == 500 and "could not start" in body["error"] and "FileNotFoundError" in body["error"]


@pytest.mark.slow
def test_lambda_init_load_in_a_fresh_process_never_raises(built, tmp_path):
    """load: init with the model gone, in a process of its own as Lambda's init phase would run it."""
    from modelpack.local.unzip import safe_extract
    from modelpack.targets.handler_check import handler_env

    task, opt = tmp_path / "task", tmp_path / "opt"
    safe_extract(built / "lambda" / "function.zip", task)
    safe_extract(built / "lambda" / "layer.zip", opt)
    config = json.loads((task / "modelpack.json").read_text())
    (task / "modelpack.json").write_text(json.dumps({**config, "load": "init"}))
    (task / "model" / "model.tflite").unlink()
    code = "import json, handler; print(json.dumps(handler.handler({'warmer': True}, None)))"
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=task,
                          env=handler_env(task, opt), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [strict(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert "cannot be read" in lines[0]["init_load_failed"]
    assert lines[-1]["warmed"] is False and "model.tflite" in lines[-1]["error"]
