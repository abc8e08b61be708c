"""Binary tensors (.npy, .npz) and the Open Inference Protocol through the shipped Lambda handler around a tiny
ONNX model: every format gives the JSON path's predictions, and every bad body is a 4xx strict JSON error."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest

from tests.helpers.handlers import (
    check_strict,
    event,
    function_dir,
    log_lines,
    npy,
    oip_json,
    split_dir,
    strict,
)

X = np.array([[0.1, 0.2, 0.3, 0.4], [1.0, -2.0, 0.5, 3.0]], dtype=np.float32)


def npz(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def answer_bytes(result: dict) -> bytes:
    assert result["isBase64Encoded"] is True
    return base64.b64decode(result["body"])


@pytest.fixture
def tiny(tmp_path, import_fresh):
    return import_fresh(function_dir(tmp_path / "fn"), "handler")


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
def azure_app(tmp_path, import_fresh):
    """The shipped Azure app around the tiny model: (call(method, route, body, headers)) through its functions."""
    import azure.functions as func

    from modelpack.targets.handler_files import copy_code

    app = function_dir(tmp_path / "fn", azure={"route": "predict", "auth_level": "function"})
    copy_code(app, ("azure", "function_app.py"))
    module = import_fresh(app, "function_app")
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
    # curl -d without -H sends JSON labelled as a form, as TensorFlow Serving users do: read as JSON
    request = json.dumps({"instances": X.tolist()}).encode()
    status, _, body, _ = azure_app("POST", "predict", request, **{"content-type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    np.testing.assert_allclose(strict(body)["predictions"], reference, rtol=1e-6)
    status, _, body, _ = azure_app("POST", "predict", b"a=1&b=2", **{"content-type": "application/x-www-form-urlencoded"})
    assert status == 400 and "JSON" in strict(body)["error"]


def image_model(dest):
    """A function folder around [N, 8, 8, 3] -> [N, 3] (flatten, matmul), configured for 8x8 RGB images."""
    import onnx
    from onnx import TensorProto, helper

    from modelpack.targets.handler_files import IMAGE_FILE, copy_code
    from tests.helpers.handlers import sha256

    copy_code(dest, ("lambda", "handler.py"), image=True)
    assert (dest / IMAGE_FILE).exists()
    weights = (np.arange(192 * 3, dtype=np.float32).reshape(192, 3) % 7 - 3) / 10
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["y"])], "img",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8, 8, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, weights.shape, weights.flatten())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (dest / "model").mkdir(exist_ok=True)
    onnx.save(model, str(dest / "model" / "model.onnx"))
    config = {"name": "img", "variant": "onnx-fp32", "task": "classification", "threads": 1, "max_batch": 4,
              "load": "lazy", "payload_limit_bytes": 200_000, "cache": None,
              "image": {"size": [8, 8], "resize": "bilinear", "channels": "rgb", "scale": "tf", "max_pixels": 4096},
              "model": {"path": "model/model.onnx", "sha256": sha256(dest / "model" / "model.onnx"), "in_layer": False},
              "inputs": [{"name": "x", "shape": [None, 8, 8, 3], "dtype": "float32"}],
              "outputs": [{"name": "y", "shape": [None, 3], "dtype": "float32"}]}
    (dest / "modelpack.json").write_text(json.dumps(config))
    return dest


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims 10^10 pixels: refused from the header, before anything is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + \
        chunk(b"IEND", b"")


def test_images_predict_as_their_pixels_do(tmp_path, capsys, import_fresh):
    from PIL import Image

    handler = import_fresh(image_model(tmp_path / "img"), "handler")
    pixels = (np.arange(8 * 8 * 3).reshape(8, 8, 3) * 5 % 256).astype(np.uint8)
    for fmt, ctype in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
        data = encoded(pixels, fmt)
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
        status, want = check_strict(handler.handler(event(json.dumps(
            {"instances": [(decoded / 127.5 - 1).tolist()]}), "application/json"), None))
        assert status == 200
        status, got = check_strict(handler.handler(event(data, ctype), None))
        assert status == 200, got
        np.testing.assert_allclose(got["predictions"], want["predictions"], rtol=1e-5, atol=1e-5)
        b64 = json.dumps({"instances": [{"b64": base64.b64encode(data).decode()}] * 2})
        status, got = check_strict(handler.handler(event(b64, "application/json"), None))
        assert status == 200 and len(got["predictions"]) == 2
        np.testing.assert_allclose(got["predictions"][1], want["predictions"][0], rtol=1e-5, atol=1e-5)
    big = encoded(np.zeros((32, 32, 3), np.uint8), "PNG")  # resized to 8x8 on the way in
    status, got = check_strict(handler.handler(event(big, "image/png"), None))
    assert status == 200 and len(got["predictions"]) == 1
    jpeg = encoded(pixels, "JPEG")
    for name, body, ctype in (("corrupt JPEG", jpeg[:40] + b"\0" * 50, "image/jpeg"),
                              ("PNG sent as JPEG bytes garbage", b"not an image", "image/png"),
                              ("decompression bomb", png_bomb(), "image/png"),
                              ("over max_pixels", encoded(np.zeros((80, 80, 3), np.uint8), "PNG"), "image/png"),
                              ("gif", b"GIF89a" + b"\0" * 20, "image/gif"),
                              ("bad b64", json.dumps({"instances": [{"b64": "!!"}]}), "application/json")):
        status, answer = check_strict(handler.handler(event(body, ctype), None))
        assert 400 <= status < 500 and answer["error"], (name, answer)
    log_lines(capsys.readouterr().out)


def test_json_traffic_loads_no_decoder(tmp_path, import_fresh):
    """Cold start stays as it was: .npy, protocol and image code load with the first request that needs them."""
    import sys

    handler = import_fresh(function_dir(tmp_path / "fn"), "handler")
    status, _ = check_strict(handler.handler(event(json.dumps({"instances": X.tolist()}), "application/json"), None))
    assert status == 200
    assert not {"tensors", "oip", "images"} & set(sys.modules)
    handler.handler(event(npy(X), "application/x-npy"), None)
    assert "tensors" in sys.modules and "oip" not in sys.modules


def test_rest_api_events_dispatch_on_their_path(tiny):
    """API Gateway REST (v1) events carry `httpMethod` and `path` instead of HTTP API's rawPath."""
    rest = {"resource": "/{proxy+}", "httpMethod": "GET", "path": "/v2/models/tiny", "headers": {"Accept": "*/*"},
            "requestContext": {"stage": "prod"}, "body": None, "isBase64Encoded": False}
    status, meta = check_strict(tiny.handler(rest, None))
    assert status == 200 and meta["name"] == "tiny"
    body, length = oip_binary(X)
    infer = {**rest, "httpMethod": "POST", "path": "/v2/models/tiny/infer", "isBase64Encoded": True,
             "headers": {"Inference-Header-Content-Length": length}, "body": base64.b64encode(body).decode()}
    result = tiny.handler(infer, None)
    assert result["statusCode"] == 200 and result["isBase64Encoded"] is True


def test_a_split_chain_takes_every_format(tmp_path, import_fresh, capsys):
    """The single chaining function of a split model answers every format as JSON, through both parts."""
    chain = import_fresh(split_dir(tmp_path / "split"), "handler")
    status, body = check_strict(chain.handler(event(json.dumps({"instances": X.tolist()}), "application/json"), None))
    assert status == 200
    want = np.array(body["predictions"], dtype=np.float32)
    infer = "/v2/models/tiny-split/infer"
    binary, length = oip_binary(X)
    for ev in (event(npy(X), "application/x-npy"), event(npz(x=X), "application/x-npz")):
        status, got = check_strict(chain.handler(ev, None))
        assert status == 200 and np.allclose(got["predictions"], want, rtol=1e-6), got
    status, got = check_strict(chain.handler(event(oip_json(X), "application/json", infer), None))
    assert status == 200 and np.allclose(np.reshape(got["outputs"][0]["data"], want.shape), want, rtol=1e-6)
    raw = answer_bytes(chain.handler(event(binary, "application/octet-stream", infer,
                                           **{"Inference-Header-Content-Length": length}), None))
    head = len(raw) - want.size * 4
    assert np.allclose(np.frombuffer(raw[head:], "<f4").reshape(want.shape), want, rtol=1e-6)
    status, meta = check_strict(chain.handler(event("", "", "/v2/models/tiny-split", "GET"), None))
    assert status == 200 and meta["platform"] == "onnxruntime_onnx"  # from the parts: the chain has no one model
    log_lines(capsys.readouterr().out)
