"""`modelpack serve` in front of a built digits package, driven by clients modelpack did not write: NVIDIA's
tritonclient (Open Inference Protocol, JSON and binary) and plain urllib for TF Serving JSON, .npy and .npz.
Every format must give the JSON path's predictions; bad bodies get a 4xx JSON error through the server too.
One build serves the whole module (Lambda layer + function and the Azure app)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from tests.helpers.paths import DIGITS
from tests.helpers.processes import free_port, wait_for_port

pytestmark = pytest.mark.slow
SAMPLES = np.load(DIGITS / "digits.npz")["x"][:3].astype(np.float32)
BIG_BATCH = 600  # 600 digits: 0.8 MB of JSON, a 200 kB base64 .npy body


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from modelpack.cli.main import cli
    from modelpack.host.interpreters import host_arch, host_python

    tmp = tmp_path_factory.mktemp("serve-build")
    data = yaml.safe_load((DIGITS / "recipe.yaml").read_text())
    data["model"]["path"] = str(DIGITS / "model.keras")
    data["data"]["path"] = str(DIGITS / "digits.npz")
    data["measure"] = {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1}}
    data["optimize"] = {"variants": ["tflite-fp32"]}
    data["targets"] = [{"kind": "lambda-layer", "python": host_python(), "arch": host_arch()},
                       {"kind": "lambda-function", "max_batch": BIG_BATCH},
                       {"kind": "azure-functions", "python": host_python(), "max_batch": BIG_BATCH,
                        "auth_level": "anonymous"}]  # the function key is test_serve_cli.py's
    data["serving"] = {"image": {"size": [8, 8], "channels": "grayscale", "scale": "unit", "max_pixels": 100_000}}
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp / "out"), "--cache-dir", str(tmp / "c")])
    assert result.exit_code == 0, result.output
    return tmp / "out"


@pytest.fixture(scope="module", params=["lambda", "azure"])
def server(request, built, tmp_path_factory):
    """`modelpack serve` as a user runs it; its log (the handler's JSON lines) goes to a file."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "modelpack", "serve", str(built), "--target", request.param,
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 120)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode in (130, 143), log.read_text()[-2000:]  # stopped by a signal, cleaned up


def post(url: str, body: bytes, ctype: str, **headers):
    """Status, headers (case-insensitive) and body of one POST."""
    req = urllib.request.Request(url, data=body, method="POST", headers={"content-type": ctype, **headers})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def test_every_format_predicts_as_json_does(server):
    import tritonclient.http as triton

    url = f"http://{server}/predict"
    status, _, body = post(url, json.dumps({"instances": SAMPLES.tolist()}).encode(), "application/json")
    assert status == 200, body
    reference = np.array(json.loads(body)["predictions"], dtype=np.float32)
    assert reference.shape == (3, 10)

    status, _, body = post(url, npy(SAMPLES), "application/x-npy")
    np.testing.assert_allclose(json.loads(body)["predictions"], reference, rtol=1e-5)
    archive = io.BytesIO()
    np.savez(archive, image=SAMPLES)
    status, _, body = post(url, archive.getvalue(), "application/x-npz")
    assert status == 200, body
    np.testing.assert_allclose(json.loads(body)["predictions"], reference, rtol=1e-5)
    status, headers, body = post(url, npy(SAMPLES), "application/x-npy", accept="application/x-npy")
    assert status == 200 and headers["Content-Type"] == "application/x-npy"
    np.testing.assert_allclose(np.load(io.BytesIO(body), allow_pickle=False), reference, rtol=1e-5)

    client = triton.InferenceServerClient(url=server)
    assert client.is_server_ready()
    meta = client.get_model_metadata("digits")
    assert meta["inputs"][0]["shape"] == [-1, 8, 8, 1] and meta["inputs"][0]["datatype"] == "FP32"
    out_name = meta["outputs"][0]["name"]
    for binary in (False, True):
        tensor = triton.InferInput(meta["inputs"][0]["name"], list(SAMPLES.shape), "FP32")
        tensor.set_data_from_numpy(SAMPLES, binary_data=binary)
        result = client.infer("digits", [tensor], outputs=[triton.InferRequestedOutput(out_name, binary_data=binary)])
        np.testing.assert_allclose(result.as_numpy(out_name), reference, rtol=1e-5)
    tensor = triton.InferInput(meta["inputs"][0]["name"], list(SAMPLES.shape), "FP32")
    tensor.set_data_from_numpy(SAMPLES, binary_data=True)
    np.testing.assert_allclose(client.infer("digits", [tensor]).as_numpy(out_name), reference, rtol=1e-5)
    client.close()
    # The Azure app's own paths carry its /api/ prefix; serve takes them with and without it.
    for path in ("/api/v2/health/ready", "/api/v2/models/digits", "/v2/health/ready"):
        with urllib.request.urlopen(f"http://{server}{path}", timeout=60) as resp:
            assert resp.status == 200, path
    status, _, body = post(f"http://{server}/api/v2/models/digits/infer", json.dumps({"inputs": [
        {"name": meta["inputs"][0]["name"], "shape": list(SAMPLES.shape), "datatype": "FP32",
         "data": SAMPLES.ravel().tolist()}]}).encode(), "application/json")
    assert status == 200, body
    np.testing.assert_allclose(np.reshape(json.loads(body)["outputs"][0]["data"], reference.shape), reference,
                               rtol=1e-5)


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def test_images_and_sample_events_predict_as_json_does(server, built):
    from PIL import Image

    url = f"http://{server}/predict"
    report = json.loads((built / "report.json").read_text())
    decoders = {}  # a target may write several artifacts (function.zip and template.yaml): any of them says it
    for art in report["artifacts"]:
        size = (art.get("details") or {}).get("image_decoder_bytes")
        decoders[art["target"]] = decoders.get(art["target"]) or size
    assert decoders["lambda-function"] > 1_000_000 and decoders["azure-functions"] > 1_000_000, decoders
    assert decoders["lambda-layer"] is None  # Pillow goes beside the handler, not into the runtime layer
    events = built / "events"
    assert sorted(p.name for p in events.iterdir()) == ["function-url-npy.json", "image.png", "oip.json",
                                                        "predict.json", "predict.npy"]
    status, _, body = post(url, (events / "predict.json").read_bytes(), "application/json")
    assert status == 200, body
    reference = json.loads(body)["predictions"]
    status, _, body = post(url, (events / "predict.npy").read_bytes(), "application/x-npy")
    np.testing.assert_allclose(json.loads(body)["predictions"], reference, rtol=1e-5)
    status, _, body = post(f"http://{server}/v2/models/digits/infer", (events / "oip.json").read_bytes(),
                           "application/json")
    assert status == 200 and np.allclose(np.reshape(json.loads(body)["outputs"][0]["data"], (2, 10)), reference,
                                         rtol=1e-5)
    pixels = np.rint(SAMPLES[1, :, :, 0] * 255).astype(np.uint8)
    for fmt, ctype in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
        data = encoded(pixels, fmt)
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float32)[None, :, :, None] / 255
        status, _, body = post(url, json.dumps({"instances": decoded.tolist()}).encode(), "application/json")
        want = json.loads(body)["predictions"]
        status, _, body = post(url, data, ctype)
        assert status == 200, body
        np.testing.assert_allclose(json.loads(body)["predictions"], want, rtol=1e-5, atol=1e-6)
    # An HTML form's upload, as curl -F sends it, predicts as the PNG body does.
    upload = subprocess.run(["curl", "-s", url, "-F", f"image=@{events / 'image.png'}"], capture_output=True,
                            timeout=60, check=True).stdout
    status, _, body = post(url, (events / "image.png").read_bytes(), "image/png")
    assert json.loads(upload)["predictions"] == json.loads(body)["predictions"], upload[:300]
    for name, body, ctype in (("corrupt JPEG", encoded(pixels, "JPEG")[:30] + b"\0" * 40, "image/jpeg"),
                              ("too many pixels", encoded(np.zeros((400, 400), np.uint8), "PNG"), "image/png")):
        status, _, answer = post(url, body, ctype)
        assert 400 <= status < 500 and json.loads(answer)["error"], (name, status, answer)


def test_big_bodies_go_through_the_packaged_fast_decoders(server, built, tmp_path):
    """serving.image ships orjson and pybase64 beside the handler (fast_decoders: auto); big JSON and .npy
    bodies through them predict as small ones do, and the packaged modules import under a bare interpreter."""
    import zipfile

    report = json.loads((built / "report.json").read_text())
    sizes = {a["target"]: a["details"].get("fast_decoder_bytes") for a in report["artifacts"]
             if a["path"].endswith(("function.zip", "functionapp.zip"))}
    assert sizes["lambda-function"] > 200_000 and sizes["azure-functions"] > 200_000, sizes
    with zipfile.ZipFile(built / "lambda" / "function.zip") as zf:
        zf.extractall(tmp_path / "fn")
    app = built / "azure" / "functionapp"
    for code, site in ((tmp_path / "fn", tmp_path / "fn"), (app, app / ".python_packages" / "lib" / "site-packages")):
        probe = subprocess.run([sys.executable, "-S", "-c", "import sys; sys.path[:0] = sys.argv[1:]; import decoders; "
                                "print(decoders.fast('orjson').__file__, decoders.fast('pybase64').__file__)",
                                str(code), str(site)], capture_output=True, text=True, check=True)
        assert all(path.startswith(str(site)) for path in probe.stdout.split()), (site, probe.stdout)

    url = f"http://{server}/predict"
    status, _, body = post(url, json.dumps({"instances": SAMPLES.tolist()}).encode(), "application/json")
    want = np.tile(np.array(json.loads(body)["predictions"], dtype=np.float32), (BIG_BATCH // 3, 1))
    batch = np.tile(SAMPLES, (BIG_BATCH // 3, 1, 1, 1))
    for payload, ctype in ((json.dumps({"instances": batch.tolist()}).encode(), "application/json"),
                           (npy(batch), "application/x-npy")):
        assert len(payload) > 64 * 1024
        status, _, body = post(url, payload, ctype)
        assert status == 200, body[:300]
        np.testing.assert_allclose(json.loads(body)["predictions"], want, rtol=1e-5)


def test_invoke_sends_the_function_url_npy_event(built):
    from modelpack.cli.main import cli

    result = CliRunner().invoke(cli, ["invoke", str(built), "--event", str(built / "events" / "function-url-npy.json")])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output.split("\n", 1)[1])
    assert answer["statusCode"] == 200 and len(json.loads(answer["body"])["predictions"]) == 2


def _object_npy() -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1, 8, 8, 1), }\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64


def test_bad_bodies_are_4xx_json_through_the_server(server):
    url = f"http://{server}/predict"
    header = json.dumps({"inputs": [{"name": "x", "shape": [1, 8, 8, 1], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 256}}]}).encode()
    cases = {
        "truncated npy": (url, npy(SAMPLES)[:-7], "application/x-npy", {}),
        "object dtype": (url, _object_npy(), "application/x-npy", {}),
        "wrong shape": (url, npy(SAMPLES.reshape(3, 64)), "application/x-npy", {}),
        "wrong dtype": (url, npy(SAMPLES.astype(np.complex64)), "application/x-npy", {}),
        "OIP header length past the body": (f"http://{server}/v2/models/digits/infer", header + b"\0" * 256,
                                            "application/octet-stream",
                                            {"Inference-Header-Content-Length": str(len(header) + 9999)}),
    }
    for name, (target, body, ctype, headers) in cases.items():
        status, _, answer = post(target, body, ctype, **headers)
        assert 400 <= status < 500 and json.loads(answer)["error"], (name, status, answer)
