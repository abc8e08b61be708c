"""The Open Inference Protocol (KServe v2 REST) with its binary tensor extension.

Shipped inside every generated handler; depends only on numpy, the standard library and the other serving
modules; imported by routes.py on the first /v2/ request. Inference goes through the same checks, model and
limits as TensorFlow Serving requests: the JSON header is bounded like a JSON body, every input's declared
shape and datatype are checked against the model's spec and against the bytes or values it carries.
"""

from __future__ import annotations

import math

import numpy as np
import numtext
import serving
from errors import RequestError, decoding
from payload import checked, walk
from replies import JSON, Reply, json_reply, media_type
from tensors import check_shape

DATATYPES = {"BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
             "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "FP16": "float16",
             "FP32": "float32", "FP64": "float64"}
NAMES = {v: k for k, v in DATATYPES.items()}
HEADER_LENGTH = "inference-header-content-length"
BINARY = "application/octet-stream"


def route(holder, method: str, path: str, headers: dict, body, limit: int) -> Reply:
    parts = [p for p in path.split("/") if p][1:]  # after "v2"
    config = holder.config
    if parts in (["health", "live"], []):
        return json_reply(200, {"live": True} if parts else server_metadata())
    if parts == ["health", "ready"]:
        return _ready(holder)
    if len(parts) < 2 or parts[0] != "models":
        raise RequestError(f"no such Open Inference Protocol endpoint: {path[:120]}", status=404)
    if parts[1] != config["name"]:
        raise RequestError(f"no model named '{parts[1][:80]}' here; this one is '{config['name']}'", status=404)
    rest = parts[2:]
    if len(rest) >= 2 and rest[0] == "versions":
        rest = rest[2:]
    if rest == [] and method == "GET":
        return json_reply(200, model_metadata(config))
    if rest == ["ready"] and method == "GET":
        return _ready(holder)
    if rest == ["infer"] and method == "POST":
        return infer(holder, headers, body, limit)
    raise RequestError(f"{method} {path[:120]} is not an Open Inference Protocol endpoint of this model",
                       status=405 if rest in ([], ["ready"], ["infer"]) else 404)


def server_metadata() -> dict:
    return {"name": "modelpack", "version": "1", "extensions": ["binary_tensor_data"]}


def _ready(holder) -> Reply:
    try:
        holder.get()
    except serving.ServeError as exc:
        return json_reply(exc.status, {"ready": False, "error": exc.public()})
    return json_reply(200, {"ready": True})


def _tensor_meta(spec: dict) -> dict:
    return {"name": spec["name"], "datatype": NAMES.get(np.dtype(spec["dtype"]).name, "FP32"),
            "shape": [-1 if d is None else int(d) for d in spec["shape"]]}


def model_metadata(config: dict) -> dict:
    files = [config["model"].get("path", "")] + [part["path"] for part in config.get("parts") or []]  # split: parts
    platform = "onnxruntime_onnx" if any(str(f).endswith(".onnx") for f in files) else "tensorflow_lite"
    return {"name": config["name"], "versions": ["1"], "platform": platform,
            "inputs": [_tensor_meta(s) for s in config["inputs"]],
            "outputs": [_tensor_meta(s) for s in config["outputs"]]}


def infer(holder, headers: dict, body, limit: int) -> Reply:
    if len(body) > limit:
        raise RequestError(f"request body is {len(body)} bytes; the limit is {limit}", status=413)
    header_text, binary = split_body(headers, body)
    if HEADER_LENGTH not in headers and media_type(headers.get("content-type")) not in ("", "application/json"):
        raise RequestError("send an inference request as application/json, or with the binary tensor extension "
                           "(header Inference-Header-Content-Length)", status=415)
    config = holder.config
    max_batch = int(config.get("max_batch", 1024))
    with decoding("the inference request"):
        request = serving.parse_body(header_text, limit, holder.bounds)
        arrays = read_inputs(request, config["inputs"], binary, max_batch)
    outputs, infer_ms = serving.infer(holder, arrays)
    return answer(config, request, outputs, infer_ms)


def split_body(headers: dict, body) -> tuple:
    """The JSON header and the binary section of a request (the binary extension), or the whole JSON body."""
    length = headers.get(HEADER_LENGTH)
    if length is None:
        return body, b""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    # ASCII digits only (str.isdigit takes Arabic-Indic and superscript digits), and no more of them than the
    # body's own length has: int() of thousands of digits is refused by Python itself.
    digits = length.isascii() and length.isdigit() and len(length) <= len(str(len(body)))
    if not digits or int(length) > len(body):
        raise RequestError(f"Inference-Header-Content-Length is {length[:20]!r}, but the body holds {len(body)} "
                           "bytes; it must be the length of the JSON header at the start of the body, in ASCII "
                           "digits")
    view = memoryview(body)
    return bytes(view[:int(length)]), view[int(length):]


def read_inputs(request: dict, inputs: list[dict], binary, max_batch: int) -> dict:
    given = request.get("inputs")
    names = [s["name"] for s in inputs]
    if not isinstance(given, list) or not all(isinstance(t, dict) for t in given):
        raise RequestError('"inputs" must be a list of tensors {"name", "shape", "datatype", "data"}')
    if not all(isinstance(t.get("name"), str) for t in given):
        raise RequestError(f'every tensor of "inputs" needs a "name" string, one of {names}; got '
                           f"{[str(t.get('name'))[:40] for t in given][:8]}")
    by_name = {t.get("name"): t for t in given}
    if sorted(map(str, by_name)) != sorted(names) or len(given) != len(names):
        raise RequestError(f"send exactly the inputs {names}; got {[str(t.get('name'))[:40] for t in given][:8]}")
    arrays, offset = {}, 0
    for tensor in given:  # binary sections follow the header in the order the inputs are listed
        spec = inputs[names.index(tensor["name"])]
        arrays[spec["name"]], offset = _tensor(tensor, spec, binary, offset, max_batch)
    if offset != len(binary):
        raise RequestError(f"the body carries {len(binary) - offset} bytes after the last binary input")
    return arrays


def _tensor(tensor: dict, spec: dict, binary, offset: int, max_batch: int) -> tuple[np.ndarray, int]:
    name, shape, datatype = spec["name"], tensor.get("shape"), tensor.get("datatype")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise RequestError(f"input '{name}': shape must be a list of non-negative integers")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise RequestError(f"input '{name}': datatype {str(datatype)[:20]!r} is not one this model takes; send "
                           f"{_tensor_meta(spec)['datatype']}")
    check_shape(shape, spec, max_batch)
    dtype = np.dtype(DATATYPES[datatype])
    count = math.prod(shape)  # Python integers: numpy's product wraps silently past 64 bits
    params = tensor.get("parameters") or {}
    if not isinstance(params, dict):
        raise RequestError(f"input '{name}': parameters must be an object")
    size = params.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size != count * dtype.itemsize:
            raise RequestError(f"input '{name}': binary_data_size must be {count * dtype.itemsize} for shape "
                               f"{shape} of {datatype}")
        if offset + size > len(binary):
            raise RequestError(f"input '{name}': its {size} binary bytes run past the end of the body")
        arr = np.frombuffer(binary, dtype=dtype.newbyteorder("<"), count=count, offset=offset).reshape(shape)
        return checked(arr, spec), offset + size
    data = tensor.get("data")
    if not isinstance(data, list):
        raise RequestError(f"input '{name}': give its values in \"data\" (a flat list) or as binary data")
    flat = {"name": name, "shape": [None], "dtype": spec["dtype"]}
    if data and type(data[0]) is list:  # nested as the shape says: flatten it checked
        leaves, got = walk(data, {**flat, "shape": [None] + shape[1:]}, max_batch)
        data = leaves if list(got) == shape else None
    if data is None or len(data) != count:
        raise RequestError(f"input '{name}': data must hold {count} values for shape {shape}")
    leaves, _ = walk(data, flat, max(count, 1))
    arr = np.array(leaves).reshape(shape)
    if dtype.kind == "b" and arr.dtype != bool:
        raise RequestError(f"input '{name}': BOOL data must be true or false")
    return checked(arr, spec), offset


def answer(config: dict, request: dict, outputs: list, infer_ms: float) -> Reply:
    names = [o["name"] for o in config["outputs"]]
    wanted = request.get("outputs")
    params = request.get("parameters") if isinstance(request.get("parameters"), dict) else {}
    all_binary = params.get("binary_data_output") is True
    chosen = [(n, all_binary) for n in names]
    if wanted is not None:
        if not isinstance(wanted, list) or not all(isinstance(w, dict) and w.get("name") in names for w in wanted):
            raise RequestError(f'"outputs" must list outputs of this model by name: {names}')
        chosen = [(w["name"], isinstance(w.get("parameters"), dict) and w["parameters"].get("binary_data") is True)
                  for w in wanted]
    described, sections = [], []
    for name, binary in chosen:
        value = np.asarray(outputs[names.index(name)])
        entry = {"name": name, "datatype": NAMES.get(value.dtype.name, "FP32"), "shape": list(value.shape)}
        if binary:
            data = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            sections.append(data)
        else:
            entry["data"] = numtext.shortest(value).reshape(-1).tolist()
        described.append(entry)
    body = {"model_name": config["name"], "model_version": "1", "outputs": described}
    if isinstance(request.get("id"), str):
        body["id"] = request["id"]
    header = serving.dumps(body)
    if not sections:
        return Reply(200, header, JSON, infer_ms=infer_ms)
    head = header.encode()
    return Reply(200, b"".join([head, *sections]), BINARY, {"Inference-Header-Content-Length": str(len(head))},
                 infer_ms=infer_ms)
