"""Binary tensors (.npy, .npz) and the Open Inference Protocol through the shipped Lambda handler around a tiny
ONNX model: every format gives the JSON path's predictions, and every bad body is a 4xx strict JSON error."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest

from tests.redteam.test_hostile_events import check_strict, fresh_import, function_dir, log_lines, strict

X = np.array([[0.1, 0.2, 0.3, 0.4], [1.0, -2.0, 0.5, 3.0]], dtype=np.float32)


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def npz(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def event(body: bytes | str, ctype: str, path: str = "/predict", method: str = "POST", **headers) -> dict:
    binary = isinstance(body, bytes)
    return {"version": "2.0", "rawPath": path, "requestContext": {"http": {"method": method}},
            "headers": {"content-type": ctype, **headers}, "isBase64Encoded": binary,
            "body": base64.b64encode(body).decode() if binary else body}


def answer_bytes(result: dict) -> bytes:
    assert result["isBase64Encoded"] is True
    return base64.b64decode(result["body"])


@pytest.fixture
def tiny(tmp_path):
    return fresh_import(function_dir(tmp_path / "fn"), "handler")


@pytest.fixture
def reference(tiny):
    status, body = check_strict(tiny.handler(event(json.dumps({"instances": X.tolist()}), "application/json"), None))
    assert status == 200
    return np.array(body["predictions"], dtype=np.float32)


def test_npy_and_npz_requests_predict_as_json_does(tiny, reference, capsys):
    for body, ctype in ((npy(X), "application/x-npy"), (npy(X.astype(np.float64)), "application/x-npy"),
                        (npy(np.asfortranarray(X)), "application/x-npy"), (npz(x=X), "application/x-npz")):
        status, got = check_strict(tiny.handler(event(body, ctype), None))
        assert status == 200, got
        np.testing.assert_allclose(np.array(got["predictions"]), reference, rtol=1e-6)
    log_lines(capsys.readouterr().out)


def test_accept_npy_and_npz_answers_binary(tiny, reference):
    result = tiny.handler(event(npy(X), "application/x-npy", accept="application/x-npy"), None)
    assert result["statusCode"] == 200 and result["headers"]["Content-Type"] == "application/x-npy"
    np.testing.assert_allclose(np.load(io.BytesIO(answer_bytes(result)), allow_pickle=False), reference, rtol=1e-6)
    result = tiny.handler(event(json.dumps({"instances": X.tolist()}), "application/json",
                                accept="application/x-npz"), None)
    with np.load(io.BytesIO(answer_bytes(result)), allow_pickle=False) as archive:
        np.testing.assert_allclose(archive["y"], reference, rtol=1e-6)


def oip_json(array: np.ndarray, **extra) -> str:
    return json.dumps({"inputs": [{"name": "x", "shape": list(array.shape), "datatype": "FP32",
                                   "data": array.reshape(-1).tolist()}], **extra})


def oip_binary(array: np.ndarray, size: int | None = None, header_extra: int = 0) -> tuple[bytes, str]:
    data = array.astype("<f4").tobytes()
    header = json.dumps({"inputs": [{"name": "x", "shape": list(array.shape), "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(data) if size is None else size}}],
                         "parameters": {"binary_data_output": True}}).encode()
    return header + data, str(len(header) + header_extra)


def test_open_inference_protocol_json_binary_and_metadata(tiny, reference):
    status, got = check_strict(tiny.handler(event(oip_json(X), "application/json", "/v2/models/tiny/infer"), None))
    assert status == 200 and got["model_name"] == "tiny", got
    out = got["outputs"][0]
    assert out["name"] == "y" and out["datatype"] == "FP32" and out["shape"] == [2, 3]
    np.testing.assert_allclose(np.array(out["data"]).reshape(2, 3), reference, rtol=1e-6)
    body, length = oip_binary(X)
    result = tiny.handler(event(body, "application/octet-stream", "/v2/models/tiny/infer",
                                **{"Inference-Header-Content-Length": length}), None)
    raw = answer_bytes(result)
    head = int(result["headers"]["Inference-Header-Content-Length"])
    header = strict(raw[:head])
    assert header["outputs"][0]["parameters"]["binary_data_size"] == len(raw) - head
    np.testing.assert_allclose(np.frombuffer(raw[head:], "<f4").reshape(2, 3), reference, rtol=1e-6)
    status, meta = check_strict(tiny.handler(event("", "application/json", "/v2/models/tiny", "GET"), None))
    assert status == 200 and meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    status, ready = check_strict(tiny.handler(event("", "", "/prod/v2/health/ready", "GET"), None))
    assert status == 200 and ready == {"ready": True}


def _truncated() -> bytes:
    return npy(X)[:-5]


def _object_npy() -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1, 4), }"
    return b"\x93NUMPY\x01\x00" + len(header + "\n").to_bytes(2, "little") + (header + "\n").encode() + b"\0" * 32


def _bomb_npz() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", npy(np.zeros((100_000, 4), np.float32)))
    return out.getvalue()


HOSTILE = {
    "truncated npy": (_truncated(), "application/x-npy", {}),
    "object dtype npy": (_object_npy(), "application/x-npy", {}),
    "string dtype npy": (npy(np.array([["a", "b", "c", "d"]])), "application/x-npy", {}),
    "wrong shape npy": (npy(np.zeros((2, 5), np.float32)), "application/x-npy", {}),
    "missing batch dimension": (npy(np.zeros(4, np.float32)), "application/x-npy", {}),
    "empty batch": (npy(np.zeros((0, 4), np.float32)), "application/x-npy", {}),
    "oversize batch": (npy(np.zeros((9, 4), np.float32)), "application/x-npy", {}),
    "complex dtype": (npy(np.zeros((1, 4), np.complex64)), "application/x-npy", {}),
    "NaN in npy": (npy(np.full((1, 4), np.nan, np.float32)), "application/x-npy", {}),
    "float64 beyond float32": (npy(np.full((1, 4), 1e300)), "application/x-npy", {}),
    "not npy at all": (b"hello world", "application/x-npy", {}),
    "npy as a text body": ("abc", "application/x-npy", {}),
    "npz with a wrong name": (npz(z=X), "application/x-npz", {}),
    "npz bomb": (_bomb_npz(), "application/x-npz", {}),
    "corrupt npz": (npz(x=X)[:-30], "application/x-npz", {}),
    "accept npy with a bad body": (b"\x93NUMPY", "application/x-npy", {"accept": "application/x-npy"}),
    "oip header length past the body": (*oip_binary(X, header_extra=10_000)[:1], "application/octet-stream",
                                        {"inference-header-content-length": "99999"}),
    "oip header length not a number": (oip_binary(X)[0], "", {"inference-header-content-length": "-3"}),
    "oip binary size past the body": (oip_binary(X, size=10_000)[0], "",
                                      {"inference-header-content-length": oip_binary(X, size=10_000)[1]}),
    "oip wrong datatype": (oip_json(X).replace("FP32", "BYTES"), "application/json", {}),
    "oip wrong shape": (oip_json(X).replace("[2, 4]", "[4, 2]"), "application/json", {}),
    "oip data too short": (json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                                   "data": [1, 2]}]}), "application/json", {}),
    "oip string data": (json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                                "data": ["a", "b", "c", "d"]}]}), "application/json", {}),
    "oip unknown input": (oip_json(X).replace('"x"', '"q"'), "application/json", {}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_bad_binary_and_protocol_bodies_are_4xx_json(tiny, capsys, case):
    body, ctype, headers = HOSTILE[case]
    path = "/v2/models/tiny/infer" if case.startswith("oip") else "/predict"
    result = tiny.handler(event(body, ctype, path, **headers), None)
    status, answer = check_strict(result)
    assert 400 <= status < 500 and answer["error"], (case, answer)
    log_lines(capsys.readouterr().out)


@pytest.mark.parametrize("path,method,status", [("/v2/models/other/infer", "POST", 404),
                                                ("/v2/models/tiny/infer", "GET", 405), ("/v2/nothing", "GET", 404)])
def test_unknown_protocol_routes(tiny, path, method, status):
    got, body = check_strict(tiny.handler(event(oip_json(X), "application/json", path, method), None))
    assert got == status and body["error"]


@pytest.fixture
def azure_app(tmp_path):
    """The shipped Azure app around the tiny model: (call(method, route, body, headers)) through its functions."""
    import azure.functions as func

    from modelpack.targets.handler_files import copy_code

    app = function_dir(tmp_path / "fn", azure={"route": "predict", "auth_level": "function"})
    copy_code(app, ("azure", "function_app.py"))
    module = fresh_import(app, "function_app")
    functions = {f.get_function_name(): f.get_user_function() for f in module.app.get_functions()}

    def call(method: str, route: str, body: bytes, **headers):
        name, params = ("inference_protocol", {"path": route[3:]}) if route.startswith("v2/") else ("predict", {})
        req = func.HttpRequest(method=method, url=f"http://localhost/api/{route}", body=body, headers=headers,
                               route_params=params)
        resp = functions[name](req)
        return resp.status_code, dict(resp.headers), resp.get_body(), resp.mimetype

    return call


def test_azure_app_routes_every_format(azure_app):
    # One app per test: a second fresh import in this process would give the lazily imported decoders
    # another copy of the shared modules than the app holds.
    status, _, body, _ = azure_app("POST", "predict", json.dumps({"instances": X.tolist()}).encode(),
                                   **{"content-type": "application/json"})
    reference = np.array(strict(body)["predictions"])
    status, _, body, _ = azure_app("POST", "predict", npy(X), **{"content-type": "application/x-npy"})
    assert status == 200, body
    np.testing.assert_allclose(strict(body)["predictions"], reference, rtol=1e-6)
    status, _, body, mimetype = azure_app("POST", "predict", npz(x=X), **{"content-type": "application/x-npz",
                                                                          "accept": "application/x-npy"})
    assert status == 200 and mimetype == "application/x-npy"
    np.testing.assert_allclose(np.load(io.BytesIO(body)), reference, rtol=1e-6)
    data, length = oip_binary(X)
    status, headers, body, _ = azure_app("POST", "v2/models/tiny/infer", data,
                                         **{"inference-header-content-length": length})
    head = int(headers["Inference-Header-Content-Length"])
    np.testing.assert_allclose(np.frombuffer(body[head:], "<f4").reshape(2, 3), reference, rtol=1e-6)
    status, _, body, _ = azure_app("GET", "v2/models/tiny", b"")
    assert status == 200 and strict(body)["outputs"][0]["name"] == "y"
    status, _, body, _ = azure_app("POST", "predict", _truncated(), **{"content-type": "application/x-npy"})
    assert status == 400 and strict(body)["error"]
    status, _, body, _ = azure_app("POST", "predict", b"{}", **{"content-type": "text/plain"})
    assert status == 415
