"""Tiny generated handlers for tests: a Lambda function folder around a small ONNX model (or a two-part split
chain), Function URL events, and strict JSON checks of what a handler answers and logs."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import numpy as np

from modelpack.targets.handler_files import copy_code

HTTP = {"version": "2.0", "rawPath": "/predict", "requestContext": {"http": {"method": "POST"}},
        "headers": {"content-type": "application/json"}}


def _refuse_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def strict(text: str | bytes):
    """RFC 8259 only: NaN, Infinity and -Infinity are refused, as JavaScript's JSON.parse refuses them."""
    return json.loads(text, parse_constant=_refuse_constant)


def save_graph(path: Path, nodes: list, inputs: list, outputs: list, weights: dict[str, np.ndarray]) -> Path:
    """An ONNX model (opset 17) from its nodes, (name, elem type, shape) inputs and outputs, and named weights."""
    import onnx
    from onnx import helper, numpy_helper

    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs],
                              [numpy_helper.from_array(w, name) for name, w in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def onnx_model(path: Path, in_dtype: str = "float32", n_in: int = 4, n_out: int = 3, scale: float = 10.0) -> Path:
    """x @ W (+ a cast from an integer input): large inputs overflow float32 to infinity."""
    import onnx
    from onnx import TensorProto, helper

    weights = (np.arange(n_in * n_out, dtype=np.float32).reshape(n_in, n_out) % 5 + 1) * scale
    elem = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32}[in_dtype]
    nodes, source = [], "x"
    if in_dtype != "float32":
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        source = "xf"
    nodes.append(helper.make_node("MatMul", [source, "w"], ["y"]))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", elem, [None, n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n_out])],
                              [helper.make_tensor("w", TensorProto.FLOAT, weights.shape, weights.flatten())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def function_dir(dest: Path, in_dtype: str = "float32", **options) -> Path:
    """A Lambda function folder as the build writes it (shipped handler files, modelpack.json, the model)."""
    copy_code(dest, ("lambda", "handler.py"))
    model = onnx_model(dest / "model" / "model.onnx", in_dtype)
    config = {"name": "tiny", "variant": "onnx-fp32", "task": "classification", "threads": 1, "top_k": 2,
              "max_batch": 8, "load": "lazy", "payload_limit_bytes": 200_000, "cache": None,
              "model": {"path": "model/model.onnx", "sha256": sha256(model), "in_layer": False},
              "inputs": [{"name": "x", "shape": [None, 4], "dtype": in_dtype}],
              "outputs": [{"name": "y", "shape": [None, 3], "dtype": "float32"}], **options}
    (dest / "modelpack.json").write_text(json.dumps(config))
    return dest


def _config(dest: Path, name: str, inputs: list[dict], outputs: list[dict], **options) -> dict:
    model = dest / "model" / "model.onnx"
    config = {"name": name, "variant": "onnx-fp32", "task": "classification", "threads": 1, "top_k": None,
              "max_batch": 8, "load": "lazy", "payload_limit_bytes": 200_000, "cache": None,
              "model": {"path": "model/model.onnx", "sha256": sha256(model), "in_layer": False},
              "inputs": inputs, "outputs": outputs, **options}
    (dest / "modelpack.json").write_text(json.dumps(config))
    return config


def free_dim_dir(dest: Path, **options) -> Path:
    """A sequence model with a free length: x [N, T, 3] -> y [N, 3], the sum over time."""
    from onnx import TensorProto, helper

    copy_code(dest, ("lambda", "handler.py"))
    save_graph(dest / "model" / "model.onnx", [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
               [("x", TensorProto.FLOAT, [None, None, 3])], [("y", TensorProto.FLOAT, [None, 3])],
               {"axes": np.array([1], np.int64)})
    _config(dest, "seq", [{"name": "x", "shape": [None, None, 3], "dtype": "float32"}],
            [{"name": "y", "shape": [None, 3], "dtype": "float32"}], **options)
    return dest


def embedding_dir(dest: Path, vocabulary: int | None = 50, **options) -> Path:
    """A recommender's core: ids [N, 3] (int32) looked up in a table of `vocabulary` rows, summed: y [N, 2]. The
    config records the vocabulary as the build does for an input that feeds an Embedding layer."""
    from onnx import TensorProto, helper

    copy_code(dest, ("lambda", "handler.py"))
    rows = vocabulary or 50
    table = (np.arange(rows * 2, dtype=np.float32).reshape(rows, 2) % 11) / 10
    save_graph(dest / "model" / "model.onnx",
               [helper.make_node("Gather", ["table", "ids"], ["e"], axis=0),
                helper.make_node("ReduceSum", ["e", "axes"], ["y"], keepdims=0)],
               [("ids", TensorProto.INT32, [None, 3])], [("y", TensorProto.FLOAT, [None, 2])],
               {"table": table, "axes": np.array([1], np.int64)})
    spec = {"name": "ids", "shape": [None, 3], "dtype": "int32"}
    if vocabulary is not None:
        spec["vocabulary"] = vocabulary
    _config(dest, "recommender", [spec], [{"name": "y", "shape": [None, 2], "dtype": "float32"}], **options)
    return dest


def image_dir(dest: Path, channels: str = "rgb", scale: str = "tf", max_pixels: int = 4096, **options) -> Path:
    """A function folder around [N, 8, 8, C] -> [N, 3] (flatten, matmul), configured for 8x8 images."""
    from onnx import TensorProto, helper

    depth = 1 if channels == "grayscale" else 3
    copy_code(dest, ("lambda", "handler.py"), image=True)
    weights = (np.arange(64 * depth * 3, dtype=np.float32).reshape(64 * depth, 3) % 7 - 3) / 10
    save_graph(dest / "model" / "model.onnx",
               [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["y"])],
               [("x", TensorProto.FLOAT, [None, 8, 8, depth])], [("y", TensorProto.FLOAT, [None, 3])], {"w": weights})
    options = {"max_batch": 4, **options}
    _config(dest, "img", [{"name": "x", "shape": [None, 8, 8, depth], "dtype": "float32"}],
            [{"name": "y", "shape": [None, 3], "dtype": "float32"}],
            image={"size": [8, 8], "resize": "bilinear", "channels": channels, "scale": scale,
                   "max_pixels": max_pixels}, **options)
    return dest


def with_azure_app(dest: Path, route: str = "predict", auth_level: str = "function") -> Path:
    """Add the Azure app's entry file to a function folder, configured as the azure-functions target does."""
    config = json.loads((dest / "modelpack.json").read_text())
    config["azure"] = {"route": route, "auth_level": auth_level, "app_name": None}
    (dest / "modelpack.json").write_text(json.dumps(config))
    copy_code(dest, ("azure", "function_app.py"), image=bool(config.get("image")))
    return dest


def azure_caller(module):
    """call(method, path, body, headers) -> (status, headers, body bytes) through an imported function_app's
    registered functions, dispatched on the path as the Functions host does (the /api/ prefix is optional)."""
    import azure.functions as func

    functions = {f.get_function_name(): f.get_user_function() for f in module.app.get_functions()}
    route = module.AZURE.get("route", "predict")

    def call(method: str, path: str, body: bytes | str = b"", headers: dict | None = None):
        path = path.removeprefix("/").removeprefix("api/")
        if path == route:
            name, params = "predict", {}
        elif path == "v2" or path.startswith("v2/"):
            name, params = "inference_protocol", {"path": path[3:]}
        elif path == "health":
            name, params = "health", {}
        else:
            return 404, {}, b""
        data = body.encode() if isinstance(body, str) else body
        resp = functions[name](func.HttpRequest(method=method, url=f"http://localhost/api/{path}", body=data,
                                                headers=headers or {}, route_params=params))
        return resp.status_code, dict(resp.headers), resp.get_body()

    return call


def split_dir(dest: Path) -> Path:
    """A split model's single chaining function: two parts, [N, 4] -> [N, 4] -> [N, 3]."""
    copy_code(dest, ("lambda", "handler.py"))
    first = onnx_model(dest / "model" / "part1.onnx", n_out=4, scale=1.0)
    second = onnx_model(dest / "model" / "part2.onnx")
    parts = [{"path": "model/part1.onnx", "sha256": sha256(first), "in_layer": False, "input": "x"},
             {"path": "model/part2.onnx", "sha256": sha256(second), "in_layer": False, "input": "x"}]
    combined = hashlib.sha256("".join(p["sha256"] for p in parts).encode()).hexdigest()
    config = {"name": "tiny-split", "variant": "onnx-fp32", "task": "classification", "threads": 1, "top_k": None,
              "max_batch": 8, "load": "lazy", "payload_limit_bytes": 200_000, "parts": parts,
              "model": {"path": "", "sha256": combined, "in_layer": False, "split": True},
              "inputs": [{"name": "x", "shape": [None, 4], "dtype": "float32"}],
              "outputs": [{"name": "y", "shape": [None, 3], "dtype": "float32"}]}
    (dest / "modelpack.json").write_text(json.dumps(config))
    return dest


def http(body, **extra) -> dict:
    return {**HTTP, "body": body, **extra}


def check_strict(result: dict) -> tuple[int, dict]:
    """Status and parsed body of a Lambda answer; the body text must be strict JSON."""
    if "body" in result and isinstance(result["body"], str) and "statusCode" in result:
        return result["statusCode"], strict(result["body"])
    return result.get("statusCode", 200), strict(json.dumps(result))


def log_lines(text: str) -> list[dict]:
    """Every line the handler printed must be one strict JSON object."""
    return [strict(line) for line in text.splitlines() if line.strip() and not line.startswith("INFO:")]


GOOD = [[0.1, 0.2, 0.3, 0.4]]

def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def event(body: bytes | str, ctype: str, path: str = "/predict", method: str = "POST", **headers) -> dict:
    binary = isinstance(body, bytes)
    return {"version": "2.0", "rawPath": path, "requestContext": {"http": {"method": method}},
            "headers": {"content-type": ctype, **headers}, "isBase64Encoded": binary,
            "body": base64.b64encode(body).decode() if binary else body}


def oip_json(array: np.ndarray, **extra) -> str:
    return json.dumps({"inputs": [{"name": "x", "shape": list(array.shape), "datatype": "FP32",
                                   "data": array.reshape(-1).tolist()}], **extra})


def hostile_body(make: str, one: str) -> str:
    """About 190 kB (just under the 200 kB limit of these functions) of JSON no request to the model can be."""
    n = 190_000
    return {"empty lists": lambda: '{"instances": [' + ",".join(["[]"] * (n // 3)) + "]}",
            "empty objects": lambda: '{"instances": [' + ",".join(["{}"] * (n // 3)) + "]}",
            "flat numbers": lambda: '{"instances": [' + ",".join(["0"] * (n // 2)) + "]}",
            "short strings": lambda: '{"instances": [' + ",".join(['"ab"'] * (n // 5)) + "]}",
            "oversize batch": lambda: '{"instances": [' + ",".join([one] * (n // len(one))) + "]}",
            "deep nesting": lambda: '{"instances": ' + "[" * (n // 2) + "]" * (n // 2) + "}",
            "flat floats": lambda: '{"instances": [' + ",".join(["0.5"] * (n // 4)) + "]}",
            "one-number rows": lambda: '{"instances": [[' + ",".join(["[0]"] * (n // 4)) + "]]}",
            "empty rows": lambda: '{"instances": [[' + ",".join(["[]"] * (n // 3)) + "]]}"}[make]()
