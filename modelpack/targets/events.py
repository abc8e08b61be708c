"""dist/<name>/events/: ready-made sample requests in every format the handlers take, from the recipe's data.

Written by the build (deterministic bytes: same inputs, same files) so `modelpack invoke`, `modelpack serve`
and curl have something real to send:

  predict.json          TensorFlow Serving JSON ({"instances": ...}): a curl body, an Azure body, and a direct
                        Lambda event for `modelpack invoke`
  predict.npy|npz       the same samples as a binary tensor (.npz when the model has several inputs)
  oip.json              an Open Inference Protocol request body (POST /v2/models/<name>/infer)
  function-url-npy.json a Lambda Function URL event carrying predict.npy|npz base64-encoded (for invoke)
  image.png             with serving.image: the first sample turned back into pixels (the inverse of the
                        recipe's scaling), a PNG body for image/png requests
"""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from modelpack.files.jsonio import dumps_strict
from modelpack.targets.handler_check import request_sample, sample

SAMPLES = 2
OIP_TYPES = {"float16": "FP16", "float32": "FP32", "float64": "FP64", "int8": "INT8", "int16": "INT16",
             "int32": "INT32", "int64": "INT64", "uint8": "UINT8", "uint16": "UINT16", "bool": "BOOL"}


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, np.ascontiguousarray(array), allow_pickle=False)
    return out.getvalue()


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    """Stored members with a fixed timestamp: np.savez would stamp the current time."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), _npy(arrays[name]))
    return out.getvalue()


def requests(inputs: list[dict], name: str, arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """{file name: bytes} of every sample request for `arrays` (one array per model input, batch first)."""
    typed = {spec["name"]: np.asarray(arrays[spec["name"]]).astype(spec["dtype"]) for spec in inputs}
    files: dict[str, bytes] = {}
    if len(inputs) == 1:
        instances = typed[inputs[0]["name"]].tolist()
        binary, kind, ext = _npy(typed[inputs[0]["name"]]), "application/x-npy", "npy"
    else:
        instances = [{n: a[i].tolist() for n, a in typed.items()} for i in range(len(next(iter(typed.values()))))]
        binary, kind, ext = _npz(typed), "application/x-npz", "npz"
    files["predict.json"] = (dumps_strict({"instances": instances}, sort_keys=True) + "\n").encode()
    files[f"predict.{ext}"] = binary
    oip = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": OIP_TYPES.get(a.dtype.name, "FP32"),
                       "data": a.reshape(-1).tolist()} for n, a in typed.items()]}
    files["oip.json"] = (dumps_strict(oip, sort_keys=True) + "\n").encode()
    event = {"version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
             "headers": {"content-type": kind, "accept": "application/json"},
             "requestContext": {"http": {"method": "POST", "path": "/"}}, "isBase64Encoded": True,
             "body": base64.b64encode(binary).decode("ascii")}
    files[f"function-url-{ext}.json"] = (dumps_strict(event, indent=1, sort_keys=True) + "\n").encode()
    return files


def unscaled_png(sample: np.ndarray, image: dict) -> bytes:
    """One sample (the model's layout, scaled as serving.image says) back to 8-bit pixels, as PNG bytes."""
    from PIL import Image

    x = np.asarray(sample, dtype=np.float64)
    channels = 1 if image["channels"] == "grayscale" else 3
    if x.shape[0] == channels and x.shape[-1] != channels:
        x = x.transpose(1, 2, 0)
    mode = image["scale"]
    if mode == "unit":
        x = x * 255.0
    elif mode == "tf":
        x = (x + 1.0) * 127.5
    elif mode == "torch":
        x = (x * np.array([0.229, 0.224, 0.225])[:channels] + np.array([0.485, 0.456, 0.406])[:channels]) * 255.0
    elif mode == "caffe":
        x = (x + np.array([103.939, 116.779, 123.68])[:channels])[..., ::-1]
    if image["channels"] == "bgr" and mode != "caffe":
        x = x[..., ::-1]
    pixels = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(out, format="PNG")
    return out.getvalue()


def write(ctx: Any, out_dir: Path) -> list[Path]:
    """Write the sample requests under out_dir/events/ from the first evaluation samples."""
    arrays = sample(ctx, SAMPLES)
    dest = out_dir / "events"
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    files = requests(ctx.info["inputs"], ctx.recipe.name, arrays)
    if ctx.info.get("text"):  # the JSON request sends the texts themselves; the binary ones their token ids
        texts = next(iter(request_sample(ctx, SAMPLES).values())).tolist()
        files["predict.json"] = (dumps_strict({"instances": texts}, sort_keys=True) + "\n").encode()
    if ctx.recipe.serving.image is not None:
        files["image.png"] = unscaled_png(next(iter(arrays.values()))[0], ctx.recipe.serving.image.model_dump())
    for filename, data in sorted(files.items()):
        (dest / filename).write_bytes(data)
        written.append(dest / filename)
    return written
