"""Serve one model: load it once per process, check requests, answer in TensorFlow Serving's REST format.

Shipped inside every generated handler (Lambda, Azure, images). Depends only on numpy, the standard
library and its sibling serving modules (model_runtime.py runs the model, payload.py checks requests): never on
TensorFlow or modelpack.

Requests:  {"instances": [...]}  (row format; an instance is a value, or {input_name: value})
           {"inputs": value | {input_name: value}}  (columnar format)
Responses: {"predictions": [...], "model": {"name": ..., "sha256": ...}} (+ "top_k" if configured);
           with several outputs, "predictions" holds one {output_name: value} object per row, and a
           columnar request gets {"outputs": {output_name: values}} instead, as TensorFlow Serving answers
Errors:    {"error": "..."} with a 4xx status for a bad request, 500/503 when the model cannot answer.
Every body is strict RFC 8259 JSON: NaN and infinity are refused on the way in and never written out.
"""

from __future__ import annotations

import json
import os
import threading
import time

import model_runtime
import model_source
import numpy as np
import numtext
from errors import IntegrityError, LoadError, OutputError, RequestError, ServeError, SourceError
from payload import Bounds, parse_body, shape_text, to_arrays, walk
from replies import dumps

# What the entry files (handler.py, function_app.py) and oip.py use through this module.
__all__ = ["Bounds", "IntegrityError", "LoadError", "OutputError", "RequestError", "ServeError", "SourceError",
           "dumps", "parse_body", "shape_text", "to_arrays"]


def warn(message: str, name: str = "") -> None:
    print(dumps({"model": name, "level": "WARNING", "message": str(message)}), flush=True)


class ModelHolder:
    """Loads the model on first use, once per process, even when many threads ask at the same time.

    With a model source (config model.source, or MODELPACK_MODEL_SOURCE), the model is downloaded first;
    download and load times are kept apart. A failed download or load raises a ServeError naming the cause
    and is retried by the next request, so a fixed model or object is picked up without a restart.
    """

    def __init__(self, config: dict, base_dir: str, warn=warn):
        self.config = config
        model = config["model"]
        self.source = os.environ.get("MODELPACK_MODEL_SOURCE") or model.get("source")
        self.base_dir = base_dir
        self.path = None if self.source or "parts" in config else _model_path(config, base_dir)
        # Text bodies have no structure to bound ahead (a review may hold any number of commas and quotes):
        # their size limit bounds them, and the lookup works string by string.
        self.bounds = None if config.get("text") else Bounds(config["inputs"], int(config.get("max_batch", 1024)),
                                                             image=bool(config.get("image")))
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
                    try:
                        self._load()
                    except ServeError:
                        raise
                    except Exception as exc:  # the runtime refused the file: report it, never crash the process
                        raise LoadError(f"the runtime could not open the model: {type(exc).__name__}: "
                                        f"{str(exc)[:300]}") from None
                model = self._model
        return model

    def _load(self) -> None:
        sha256 = self.config["model"]["sha256"]
        if self.source:
            suffix = os.path.splitext(self.config["model"]["path"])[1]
            self.path, self.download_ms = model_source.fetch(self.source, sha256, suffix)
            t = time.perf_counter()
        elif "parts" in self.config:
            t = time.perf_counter()
            self._model = Chain(self.config, self.base_dir)
        else:
            t = time.perf_counter()
            model_source.verify(self.path, sha256)
        if self._model is None:
            self._model = model_runtime.load(self.path, int(self.config.get("threads", 1)))
        self.load_ms = (time.perf_counter() - t) * 1e3
        self.loads += 1


class Chain:
    """A split model: every part verified and loaded together (so the load is counted once, in
    ModelLoadMs), then run in sequence, the output of one part fed to the next as its single input."""

    def __init__(self, config: dict, base_dir: str):
        parts = config["parts"]
        threads = int(config.get("threads", 1))
        self._models = []
        for part in parts:
            path = _model_path({"model": part}, base_dir)
            model_source.verify(path, part["sha256"])
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


def check_outputs(outputs: list) -> None:
    """Refuse NaN or infinity in any float output: strict JSON cannot carry it, and it is no answer."""
    for out in outputs:
        out = np.asarray(out)
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            raise OutputError("the model produced NaN or infinity for this input, so there is no answer to serve; "
                              "inputs far outside the range the model was trained on can overflow it")


def entry_problem(body, config: dict, batch: int, columnar: bool = False) -> str | None:
    """Why a result read back from a shared cache cannot be served for this request, or None.

    It must name this model's sha256 and hold one prediction per instance, nested like the model's output
    (for a columnar request to a model with several outputs: one column of `batch` values per output).
    """
    field = "outputs" if columnar else "predictions"
    if not isinstance(body, dict) or not isinstance(body.get(field), dict if columnar else list):
        return "not a prediction response"
    if body.get("model") != {"name": config["name"], "sha256": config["model"]["sha256"]}:
        return "written for another model"
    outputs = config["outputs"]
    if columnar:
        columns = body["outputs"]
        if set(columns) != {o["name"] for o in outputs}:
            return "outputs do not name the model's outputs"
        try:
            for spec in outputs:
                walk(columns[spec["name"]], spec, batch)
                if len(columns[spec["name"]]) != batch:
                    return f"{len(columns[spec['name']])} values of {spec['name']} for a batch of {batch}"
        except RequestError as exc:
            return f"outputs not shaped like the model's outputs: {exc}"
        return None
    rows = body["predictions"]
    if len(rows) != batch:
        return f"{len(rows)} predictions for a batch of {batch}"
    try:
        if len(outputs) == 1:
            walk(rows, outputs[0], batch)
        else:
            names = {o["name"] for o in outputs}
            if not all(isinstance(r, dict) and set(r) == names for r in rows):
                return "predictions do not name the model's outputs"
            for spec in outputs:
                walk([r[spec["name"]] for r in rows], spec, batch)
        if "top_k" in body and (not isinstance(body["top_k"], list) or len(body["top_k"]) != batch):
            return "top_k does not match the batch"
    except RequestError as exc:
        return f"predictions not shaped like the model's output: {exc}"
    return None


def predict(holder: ModelHolder, request: dict) -> tuple[dict, float | None, str | None]:
    """Run a checked request; return the response body, the inference time in ms (None when the result
    came from the cache) and the cache outcome ("hit", "miss", or None without a cache)."""
    config = holder.config
    arrays = request_arrays(holder, request)
    # A columnar request to a model with several outputs is answered in another shape: it has its own key.
    return predict_arrays(holder, arrays, "inputs" in request and len(config["outputs"]) > 1)


def request_arrays(holder: ModelHolder, request: dict) -> dict:
    """The checked input arrays of a JSON request; a text model's strings become the ids its vocabulary lookup
    gives (text.py, shipped with such a model only), token ids sent as numbers go through as they are."""
    config = holder.config
    max_batch = int(config.get("max_batch", 1024))
    if config.get("text"):
        import text

        if text.holds_text(request, config["text"]["input"]):
            return text.request_arrays(request, text.load(holder.base_dir), max_batch)
    return to_arrays(request, config["inputs"], max_batch)


def batch_size(arrays: dict) -> int:
    batch = {len(a) for a in arrays.values()}
    if len(batch) != 1:
        raise RequestError(f"all inputs must have the same batch size; got {sorted(batch)}")
    return batch.pop()


def infer(holder: ModelHolder, arrays: dict) -> tuple[list, float]:
    """The model's outputs (checked finite) for checked input arrays, and the inference time in ms."""
    batch_size(arrays)
    model = holder.get()
    t = time.perf_counter()
    try:
        outputs = model.predict(arrays)
    except model_runtime.ShapeError as exc:
        raise RequestError(str(exc)) from None
    infer_ms = (time.perf_counter() - t) * 1e3
    check_outputs(outputs)
    return outputs, infer_ms


def predict_arrays(holder: ModelHolder, arrays: dict, columnar: bool = False
                   ) -> tuple[dict, float | None, str | None]:
    """predict() for arrays already checked against the input spec (JSON, .npy, .npz or image requests)."""
    config = holder.config
    size = batch_size(arrays)
    holder.get()
    key = None
    if holder.cache is not None:
        key = holder.cache_key(config["model"]["sha256"] + ("|outputs" if columnar else ""), arrays)
        cached = holder.cache.get(key, lambda body: entry_problem(body, config, size, columnar))
        if cached is not None:
            return cached, None, "hit"
    outputs, infer_ms = infer(holder, arrays)
    names = [o["name"] for o in config["outputs"]]
    # float32 numbers are written in their shortest round-tripping form (numtext.shortest)
    outputs = [numtext.shortest(o) for o in outputs]
    if len(outputs) == 1:
        body = {"predictions": outputs[0].tolist()}
    elif columnar:
        body = {"outputs": {n: o.tolist() for n, o in zip(names, outputs)}}
    else:
        body = {"predictions": [{n: o[i].tolist() for n, o in zip(names, outputs)}
                                for i in range(len(outputs[0]))]}
    body["model"] = {"name": config["name"], "sha256": config["model"]["sha256"]}
    k, labels = config.get("top_k"), config.get("labels")
    if (k or labels) and config.get("task") == "classification":
        scored = config.get("task_output")
        scores = np.asarray(outputs[names.index(scored) if scored in names else 0])
        scores = scores.reshape(len(scores), -1)
        if labels:  # the top class by name: one unit is the probability of class 1
            best = (scores[:, 0] > 0.5).astype(int) if scores.shape[1] == 1 else np.argmax(scores, axis=1)
            body["classes"] = [labels[int(c)] for c in best]
        if k:
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            body["top_k"] = [[{"class": int(c), "score": float(s[c]), **({"label": labels[c]} if labels else {})}
                              for c in row] for row, s in zip(top, scores)]
    if key is not None:
        holder.cache.put(key, body)
        return body, infer_ms, "miss"
    return body, infer_ms, None
