"""Serve one model: load it once per process, check requests, answer in TensorFlow Serving's REST format.

Shipped inside every generated handler (Lambda, Azure, images). Depends only on numpy, the standard
library and model_runtime.py: never on TensorFlow or modelpack.

Requests:  {"instances": [...]}  (row format; an instance is a value, or {input_name: value})
           {"inputs": value | {input_name: value}}  (columnar format)
Responses: {"predictions": [...], "model": {"name": ..., "sha256": ...}} (+ "top_k" if configured);
           with several outputs, "predictions" holds one {output_name: value} object per row, and a
           columnar request gets {"outputs": {output_name: values}} instead, as TensorFlow Serving answers
Errors:    {"error": "..."} with a 4xx status.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time

import model_runtime
import numpy as np

MAX_DEPTH = 64


class RequestError(Exception):
    """A bad request: the client gets `status` and a JSON error naming what was expected."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class IntegrityError(RuntimeError):
    """The model bytes do not match the build manifest: refuse to serve."""


class SourceError(RuntimeError):
    """The model could not be fetched from its source: missing object, no access, or storage unreachable."""


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def warn(message: str, name: str = "") -> None:
    print(json.dumps({"model": name, "level": "WARNING", "message": message}), flush=True)


class ModelHolder:
    """Loads the model on first use, once per process, even when many threads ask at the same time.

    With a model source (config model.source, or MODELPACK_MODEL_SOURCE), the model is downloaded first;
    download and load times are kept apart. A failed download raises and is retried by the next request.
    """

    def __init__(self, config: dict, base_dir: str, warn=warn):
        self.config = config
        model = config["model"]
        self.source = os.environ.get("MODELPACK_MODEL_SOURCE") or model.get("source")
        self.base_dir = base_dir
        self.path = None if self.source or "parts" in config else _model_path(config, base_dir)
        self._lock = threading.Lock()
        self._model = None
        self.loads = 0
        self.load_ms = 0.0
        self.download_ms: float | None = None
        self.cache = None
        if config.get("cache"):  # imported only when configured: every module compiles at cold start
            import result_cache

            self.cache = result_cache.make(config["cache"], model["sha256"], lambda m: warn(m, config["name"]))
            self.cache_key = result_cache.request_key

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def get(self):
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    sha256 = self.config["model"]["sha256"]
                    if self.source:
                        import model_source

                        suffix = os.path.splitext(self.config["model"]["path"])[1]
                        self.path, self.download_ms = model_source.fetch(self.source, sha256, suffix)
                        t = time.perf_counter()
                    elif "parts" in self.config:
                        t = time.perf_counter()
                        self._model = Chain(self.config, self.base_dir)
                    else:
                        t = time.perf_counter()
                        _verify(self.path, sha256)
                    if self._model is None:
                        self._model = model_runtime.load(self.path, int(self.config.get("threads", 1)))
                    self.load_ms = (time.perf_counter() - t) * 1e3
                    self.loads += 1
                model = self._model
        return model


class Chain:
    """A split model: every part verified and loaded together (so the load is counted once, in
    ModelLoadMs), then run in sequence, the output of one part fed to the next as its single input."""

    def __init__(self, config: dict, base_dir: str):
        parts = config["parts"]
        threads = int(config.get("threads", 1))
        self._models = []
        for part in parts:
            path = _model_path({"model": part}, base_dir)
            _verify(path, part["sha256"])
            self._models.append(model_runtime.load(path, threads))
        self._inputs = [part.get("input") for part in parts]

    def predict(self, named: dict) -> list:
        outputs = self._models[0].predict(named)
        for model, name in zip(self._models[1:], self._inputs[1:]):
            outputs = model.predict({name: np.asarray(outputs[0])})
        return outputs


def load_config(base_dir: str) -> dict:
    with open(os.path.join(base_dir, "modelpack.json")) as f:
        return json.load(f)


def _model_path(config: dict, base_dir: str) -> str:
    rel = config["model"]["path"]
    if config["model"].get("in_layer"):
        return os.path.join(os.environ.get("MODELPACK_OPT_DIR", "/opt"), rel)
    return os.path.join(base_dir, rel)


def _verify(path: str, expected: str) -> None:
    digest = sha256_of(path)
    if digest != expected:
        raise IntegrityError(f"model file {path} has sha256 {digest}, the build manifest says {expected}")


def parse_body(body: bytes | str, limit: int) -> dict:
    """Decode a JSON request body, refusing oversize, non-JSON and non-object bodies."""
    if len(body) > limit:
        raise RequestError(f"request body is {len(body)} bytes; the limit is {limit}", status=413)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestError(f"request body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise RequestError('request must be a JSON object such as {"instances": [...]} or {"inputs": ...}')
    return data


def to_arrays(request: dict, inputs: list[dict]) -> dict[str, np.ndarray]:
    """Turn an "instances" or "inputs" request into one checked array per model input."""
    names = [i["name"] for i in inputs]
    if ("instances" in request) == ("inputs" in request):
        raise RequestError('give exactly one of "instances" (row format) or "inputs" (columnar format)')
    if "instances" in request:
        rows = request["instances"]
        if not isinstance(rows, list) or not rows:
            raise RequestError('"instances" must be a non-empty list')
        if len(names) == 1 and not isinstance(rows[0], dict):
            columns = {names[0]: rows}
        else:
            if not all(isinstance(r, dict) for r in rows):
                raise RequestError(f"each instance must be an object with keys {names}")
            columns = {n: [r.get(n) for r in rows] for n in names}
            _check_keys(rows[0], names)
    else:
        value = request["inputs"]
        if isinstance(value, dict):
            _check_keys(value, names)
            columns = value
        elif len(names) == 1:
            columns = {names[0]: value}
        else:
            raise RequestError(f'"inputs" must be an object with keys {names} for this model')
    return {spec["name"]: _array(columns.get(spec["name"]), spec) for spec in inputs}


def _check_keys(obj: dict, names: list[str]) -> None:
    missing = [n for n in names if n not in obj]
    extra = [k for k in obj if k not in names]
    if missing or extra:
        raise RequestError(f"expected inputs {names}; missing {missing}, unknown {extra[:5]}")


def _depth(value, limit: int = MAX_DEPTH) -> int:
    depth = 0
    while isinstance(value, list):
        depth += 1
        if depth > limit or not value:
            break
        value = value[0]
    return depth


def _array(value, spec: dict) -> np.ndarray:
    name, want, dtype = spec["name"], spec["shape"], np.dtype(spec["dtype"])
    if value is None:
        raise RequestError(f"input '{name}' is missing")
    if _depth(value) > len(want):
        raise RequestError(f"input '{name}' is nested deeper than its shape {_shape_text(want)}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, RecursionError):
        raise RequestError(f"input '{name}' is not a rectangular array of shape {_shape_text(want)}") from None
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise RequestError(f"input '{name}' must hold numbers of type {dtype.name}, shape {_shape_text(want)}")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if arr.ndim != len(want) or any(w is not None and w != g for w, g in zip(want[1:], arr.shape[1:])):
        raise RequestError(
            f"input '{name}' has shape {list(arr.shape)}; expected {_shape_text(want)} (first dimension: batch)"
        )
    if np.issubdtype(dtype, np.integer):
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise RequestError(f"input '{name}' must hold integers ({dtype.name})")
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise RequestError(f"input '{name}' has values outside the {dtype.name} range")
    elif arr.size and not np.all(np.isfinite(arr.astype(np.float64))):
        raise RequestError(f"input '{name}' contains NaN or infinity")
    return arr.astype(dtype)


def _shape_text(shape: list) -> str:
    return "[" + ", ".join("batch" if i == 0 else ("any" if d is None else str(d)) for i, d in enumerate(shape)) + "]"


def predict(holder: ModelHolder, request: dict) -> tuple[dict, float | None, str | None]:
    """Run a checked request; return the response body, the inference time in ms (None when the result
    came from the cache) and the cache outcome ("hit", "miss", or None without a cache)."""
    config = holder.config
    arrays = to_arrays(request, config["inputs"])
    batch = {len(a) for a in arrays.values()}
    if len(batch) != 1:
        raise RequestError(f"all inputs must have the same batch size; got {sorted(batch)}")
    if batch.pop() > int(config.get("max_batch", 1024)):
        raise RequestError(f"batch is larger than the limit of {config.get('max_batch', 1024)}", status=413)
    model = holder.get()
    key = None
    if holder.cache is not None:
        key = holder.cache_key(config["model"]["sha256"], arrays)
        cached = holder.cache.get(key)
        if cached is not None:
            return cached, None, "hit"
    t = time.perf_counter()
    outputs = model.predict(arrays)
    infer_ms = (time.perf_counter() - t) * 1e3
    names = [o["name"] for o in config["outputs"]]
    if len(outputs) == 1:
        body = {"predictions": np.asarray(outputs[0]).tolist()}
    elif "inputs" in request:
        body = {"outputs": {n: np.asarray(o).tolist() for n, o in zip(names, outputs)}}
    else:
        body = {"predictions": [{n: np.asarray(o[i]).tolist() for n, o in zip(names, outputs)}
                                for i in range(len(outputs[0]))]}
    body["model"] = {"name": config["name"], "sha256": config["model"]["sha256"]}
    k = config.get("top_k")
    if k and config.get("task") == "classification":
        scored = config.get("task_output")
        scores = np.asarray(outputs[names.index(scored) if scored in names else 0])
        scores = scores.reshape(len(scores), -1)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        body["top_k"] = [[{"class": int(c), "score": float(s[c])} for c in row] for row, s in zip(top, scores)]
    if key is not None:
        holder.cache.put(key, body)
        return body, infer_ms, "miss"
    return body, infer_ms, None
