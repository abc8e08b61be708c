"""No wrong answer with status 200, and no 5xx for the client's mistake: ids beyond an Embedding's vocabulary
are a 4xx naming the input and the range; 16-bit greyscale PNGs are scaled, not clipped; base64 images are
found wherever they sit in the body, the same on Lambda and Azure; a batch of base64 images is as large as
max_batch allows; the pixel budget holds for the whole request; images arrive as multipart/form-data uploads.

The shipped Lambda handler and Azure app run around tiny ONNX models built in code (tests/helpers/handlers.py).
"""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest

from tests.helpers.handlers import (
    azure_caller,
    check_strict,
    embedding_dir,
    event,
    image_dir,
    log_lines,
    npy,
    strict,
    with_azure_app,
)

IDS = np.array([[1, 2, 3], [49, 0, 7]], dtype=np.int32)


def png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels, mode).save(out, format="PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(params=["lambda", "azure"])
def platform(request, tmp_path, import_fresh):
    """make(folder) -> call(method, path, body, headers) -> (status, body bytes): the Lambda handler or the Azure app."""
    def make(folder):
        if request.param == "azure":
            call = azure_caller(import_fresh(with_azure_app(folder), "function_app"))
            return lambda path, body, ctype: call("POST", path, body, {"content-type": ctype})[::2]
        handler = import_fresh(folder, "handler")

        def lambda_call(path, body, ctype):
            result = handler.handler(event(body, ctype, path), None)
            status, answer = check_strict(result)
            return status, json.dumps(answer).encode()
        return lambda_call
    return make


def test_ids_beyond_the_vocabulary_are_a_4xx_naming_input_and_range(platform, tmp_path, capsys):
    call = platform(embedding_dir(tmp_path / "rec", vocabulary=50))
    status, body = call("/predict", json.dumps({"instances": IDS.tolist()}), "application/json")
    assert status == 200, body
    bad = IDS.copy()
    bad[1, 2] = 7000
    oip = json.dumps({"inputs": [{"name": "ids", "shape": [2, 3], "datatype": "INT32", "data": bad.ravel().tolist()}]})
    for path, data, ctype in (("/predict", json.dumps({"instances": bad.tolist()}), "application/json"),
                              ("/predict", json.dumps({"instances": (-IDS).tolist()}), "application/json"),
                              ("/predict", npy(bad), "application/x-npy"),
                              ("/v2/models/recommender/infer", oip, "application/json")):
        status, body = call(path, data, ctype)
        error = strict(body)["error"]
        assert status == 400 and "'ids'" in error and "0 to 49" in error, (path, status, body)
    capsys.readouterr()


def test_without_a_recorded_vocabulary_the_gather_is_still_no_4xx_lie(tmp_path, import_fresh, capsys):
    """Control: the same model without `vocabulary` in its config fails inside the runtime (a 500, as before);
    the 400 above comes from the check, not from the model."""
    handler = import_fresh(embedding_dir(tmp_path / "rec", vocabulary=None), "handler")
    status, _ = check_strict(handler.handler(event(json.dumps({"instances": [[1, 2, 7000]]}), "application/json"),
                                             None))
    assert status == 500
    capsys.readouterr()


def test_16_bit_greyscale_png_is_scaled_not_clipped(platform, tmp_path):
    call = platform(image_dir(tmp_path / "img", channels="grayscale", scale="unit"))
    grey = np.full((8, 8), 0.61, dtype=np.float32)
    wide = png(np.round(grey * 65535).astype(np.uint16))  # a 16-bit greyscale PNG, 61 % grey
    narrow = png(np.round(grey * 255).astype(np.uint8))
    status, want = call("/predict", json.dumps({"instances": [grey[:, :, None].tolist()]}), "application/json")
    assert status == 200
    for data in (narrow, wide):
        status, got = call("/predict", data, "image/png")
        assert status == 200, got
        np.testing.assert_allclose(strict(got)["predictions"], strict(want)["predictions"], atol=2e-2)


def test_b64_images_are_found_anywhere_in_the_body(platform, tmp_path):
    call = platform(image_dir(tmp_path / "img"))
    image = b64(png(np.full((8, 8, 3), 90, np.uint8)))
    direct = json.dumps({"instances": [{"b64": image}]})
    padded = json.dumps({"signature_name": "serving_default" + " " * 5000, "instances": [{"b64": image}]})
    answers = [call("/predict", body, "application/json") for body in (direct, padded)]
    assert [status for status, _ in answers] == [200, 200], answers
    assert strict(answers[0][1])["predictions"] == strict(answers[1][1])["predictions"]


def test_a_batch_of_b64_images_is_as_large_as_max_batch(platform, tmp_path):
    call = platform(image_dir(tmp_path / "img", max_batch=64, max_pixels=1_000_000))
    image = b64(png(np.full((8, 8, 3), 30, np.uint8)))
    status, body = call("/predict", json.dumps({"instances": [{"b64": image}] * 64}), "application/json")
    assert status == 200 and len(strict(body)["predictions"]) == 64, body[:300]
    status, body = call("/predict", json.dumps({"instances": [{"b64": image}] * 65}), "application/json")
    assert status == 413, body[:300]


def test_the_pixel_budget_holds_for_the_whole_request(platform, tmp_path):
    """Each image is under max_pixels, together they are not: refused from their headers, nothing decoded."""
    call = platform(image_dir(tmp_path / "img", max_batch=64, max_pixels=4_000_000, payload_limit_bytes=6_000_000))
    big = b64(png(np.zeros((1990, 2000), np.uint8)))  # 3.98 Mpx of zeros: about 4 kB of PNG
    start = time.perf_counter()
    status, body = call("/predict", json.dumps({"instances": [{"b64": big}] * 40}), "application/json")
    assert status == 413 and "4000000" in strict(body)["error"], body[:300]
    assert time.perf_counter() - start < 2.0  # 40 decodes of 4 Mpx would take several seconds
    status, body = call("/predict", json.dumps({"instances": [{"b64": big}]}), "application/json")
    assert status == 200, body[:300]


def multipart(files: list[tuple[str, bytes, str]], fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser's form sends it."""
    boundary = "----formboundary7MA4YWxkTrZu0gW"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in (fields or {}).items()]
    for name, data, ctype in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
                     f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_multipart_form_uploads_predict_as_the_raw_image_does(platform, tmp_path, capsys):
    call = platform(image_dir(tmp_path / "img"))
    first, second = png(np.full((8, 8, 3), 200, np.uint8)), png(np.full((8, 8, 3), 10, np.uint8))
    status, want = call("/predict", first, "image/png")
    assert status == 200
    body, ctype = multipart([("image", first, "image/png"), ("other", second, "image/png")], {"submit": "Send"})
    status, got = call("/predict", body, ctype)
    assert status == 200, got
    assert strict(got)["predictions"][0] == strict(want)["predictions"][0] and len(strict(got)["predictions"]) == 2
    for bad_body, bad_type in ((multipart([], {"submit": "Send"})[0], ctype), (body, "multipart/form-data")):
        status, answer = call("/predict", bad_body, bad_type)
        assert status == 400 and strict(answer)["error"], answer
    capsys.readouterr()


def test_multipart_to_a_tensor_model_is_a_415_naming_the_formats(tmp_path, import_fresh, capsys):
    handler = import_fresh(embedding_dir(tmp_path / "rec"), "handler")
    body, ctype = multipart([("image", png(np.zeros((8, 8, 3), np.uint8)), "image/png")])
    status, answer = check_strict(handler.handler(event(body, ctype), None))
    assert status == 415 and "application/x-npy" in answer["error"]
    log_lines(capsys.readouterr().out)
