"""Load a Keras model or SavedModel safely and expose one serving function (worker process only: imports TF)."""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelpack.errors import UnservableInputError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class Loaded:
    """A loaded model and the serving function every converter starts from."""

    obj: Any  # Keras model or SavedModel trackable
    keras_model: Any | None  # the Keras model, when there is one
    serve: Any  # tf.function with an explicit input signature, returns a list of tensors
    inputs: list[dict]
    outputs: list[dict]
    params: int
    vocabularies: dict[str, int] = field(default_factory=dict)  # input name -> rows of the Embedding it feeds

    def predict(self, xs: list[np.ndarray], batch: int = 128) -> list[np.ndarray]:
        import tensorflow as tf

        parts: list[list[np.ndarray]] = []
        for start in range(0, len(xs[0]), batch):
            out = self.serve(*[tf.constant(x[start : start + batch]) for x in xs])
            parts.append([np.asarray(t) for t in out])
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def check_servable(model: Any) -> None:
    """Refuse inputs that LiteRT and onnxruntime cannot be fed, before anything is traced or converted."""
    for i, t in enumerate(model.inputs):
        dtype = str(getattr(t.dtype, "name", t.dtype))
        kind = "string" if dtype in ("string", "str", "object") else (
            "ragged" if getattr(t, "ragged", False) else "sparse" if getattr(t, "sparse", False) else None)
        if kind is None:
            continue
        name = getattr(t, "name", f"input_{i}").split(":")[0]
        readers = _readers(model, t)
        by = f", read by layer {readers}" if readers else ""
        fix = ("Move text vectorization out of the model: run it in the handler or before the call, save the "
               "model from the token ids on (a keras.Model whose input is the vectorizer's output), and send token ids"
               if kind == "string" else
               "Pad the input to a fixed length (with a mask if needed) and save the model with a dense input")
        raise UnservableInputError(
            f"model input '{name}' is a {kind} tensor{by}; no runtime a serverless layer ships (LiteRT, "
            f"onnxruntime) takes {kind} inputs. {fix}.")


def _readers(model: Any, tensor: Any) -> str:
    """The layers that consume `tensor`, as "'name' (Class)"; empty when the graph cannot be walked."""
    found = []
    for layer in getattr(model, "layers", []):
        for node in getattr(layer, "_inbound_nodes", []):
            if any(t is tensor for t in getattr(node, "input_tensors", [])):
                found.append(f"'{layer.name}' ({type(layer).__name__})")
                break
    return ", ".join(found)


def embedding_vocabularies(model: Any, names: list[str]) -> dict[str, int]:
    """{input name: vocabulary size} for every model input that an Embedding layer reads directly: an id outside
    [0, size) is a request the model cannot answer (a gather out of bounds), which handlers refuse as a 400.
    An input read by several embeddings gets the smallest; empty when the graph cannot be walked."""
    found: dict[str, int] = {}
    try:
        inputs = list(getattr(model, "inputs", None) or [])
        for layer in getattr(model, "layers", []):
            rows = getattr(layer, "input_dim", None)
            if type(layer).__name__ != "Embedding" or not isinstance(rows, int):
                continue
            for node in getattr(layer, "_inbound_nodes", []):
                tensors = getattr(node, "input_tensors", None)
                for tensor in tensors if isinstance(tensors, (list, tuple)) else [tensors]:
                    at = next((i for i, t in enumerate(inputs) if t is tensor), None)
                    if at is not None and at < len(names):
                        found[names[at]] = min(found.get(names[at], rows), rows)
    except Exception:  # a graph that cannot be walked: no ids are checked, as before
        return {}
    return found


def safe_name(name: str) -> str:
    """Input names become signature keys and ONNX names: keep them identifier-like."""
    name = name.split(":")[0]
    return re.sub(r"\W", "_", name) or "input"


def _custom_objects(module: str | None) -> dict | None:
    if not module:
        return None
    return dict(getattr(importlib.import_module(module), "CUSTOM_OBJECTS", {}))


def load(path: str, fmt: str, trust_code: bool = False, custom_objects: str | None = None) -> Loaded:
    """Open the model the way its format requires; safe mode unless the recipe trusts its code."""
    import tensorflow as tf

    objects = _custom_objects(custom_objects)
    if fmt == "savedmodel":
        return _from_savedmodel(tf.saved_model.load(path))
    if fmt == "keras3":
        import keras

        model = keras.saving.load_model(path, compile=False, safe_mode=not trust_code, custom_objects=objects)
    else:
        import tf_keras

        kwargs = {} if fmt == "tf-keras-h5" else {"safe_mode": not trust_code}
        model = tf_keras.models.load_model(path, compile=False, custom_objects=objects, **kwargs)
    return from_keras(model)


def from_keras(model: Any) -> Loaded:
    """Wrap a Keras 3 or tf-keras model in a serving function with named, batch-free input specs."""
    import tensorflow as tf

    check_servable(model)
    specs = [
        tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=safe_name(getattr(t, "name", f"input_{i}")))
        for i, t in enumerate(model.inputs)
    ]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        specs = [tf.TensorSpec(s.shape, s.dtype, name=f"input_{i}") for i, s in enumerate(specs)]

    @tf.function(input_signature=specs)
    def serve(*args):
        return call_keras(model, args)

    outs = serve.get_concrete_function().structured_outputs
    # The converters freeze variables they can find through this object; Keras 3 variables wrap tf.Variables
    # that the model itself does not expose as trackables, so collect them explicitly.
    holder = tf.Module()
    holder.weights = [v if isinstance(v, tf.Variable) else v.value for v in model.variables]
    holder.serve = serve
    return Loaded(
        obj=holder,
        keras_model=model,
        serve=serve,
        inputs=[_spec_json(s) for s in specs],
        outputs=[{"name": f"output_{i}", "shape": _shape(o.shape), "dtype": o.dtype.name} for i, o in enumerate(outs)],
        params=int(model.count_params()),
        vocabularies=embedding_vocabularies(model, [s.name for s in specs]),
    )


def _from_savedmodel(obj: Any) -> Loaded:
    import tensorflow as tf

    if "serving_default" not in getattr(obj, "signatures", {}):
        raise ValueError("the SavedModel has no 'serving_default' signature; export it with model.export(path)")
    sig = obj.signatures["serving_default"]
    given = sig.structured_input_signature[1]
    order = sorted(given)
    for k in order:
        if not isinstance(given[k], tf.TensorSpec) or given[k].dtype == tf.string:
            kind = "string" if getattr(given[k], "dtype", None) == tf.string else type(given[k]).__name__
            raise UnservableInputError(
                f"signature input '{k}' is a {kind} input; no runtime a serverless layer ships (LiteRT, onnxruntime) "
                "takes it. Move text vectorization (or whatever builds it) into the handler or before the call, "
                "export the model from the numeric tensors on, and send those")
    specs = [tf.TensorSpec([None, *given[k].shape[1:]], given[k].dtype, name=safe_name(k)) for k in order]

    @tf.function(input_signature=specs)
    def serve(*args):
        return _as_list(sig(**dict(zip(order, args))))

    outs = serve.get_concrete_function().structured_outputs
    params = int(sum(np.prod(v.shape) for v in getattr(obj, "variables", [])))
    return Loaded(
        obj=obj,
        keras_model=None,
        serve=serve,
        inputs=[_spec_json(s) for s in specs],
        outputs=[{"name": f"output_{i}", "shape": _shape(o.shape), "dtype": o.dtype.name} for i, o in enumerate(outs)],
        params=params,
    )


def call_keras(model: Any, args: tuple | list) -> list:
    """Call a Keras model on tensors in `model.inputs` order; return its outputs as a list.

    A Keras 3 functional model built from a dict (or nested structure) of inputs refuses a flat list, while
    `model.inputs` is that structure flattened: pack the tensors back into it. tf-keras and single- or list-input
    models take the flat form.
    """
    args = list(args)
    struct = getattr(model, "_inputs_struct", None)
    if isinstance(struct, dict) or (isinstance(struct, (list, tuple)) and any(isinstance(s, (dict, list, tuple))
                                                                               for s in struct)):
        import keras

        feed = keras.tree.pack_sequence_as(struct, args)
    else:
        feed = args[0] if len(args) == 1 else args
    return _as_list(model(feed, training=False))


def _as_list(out: Any) -> list:
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    if isinstance(out, (list, tuple)):
        return list(out)
    return [out]


def _shape(shape: Any) -> list:
    return [None if d is None else int(d) for d in shape]


def _spec_json(s: Any) -> dict:
    return {"name": s.name, "shape": _shape(s.shape), "dtype": s.dtype.name}
