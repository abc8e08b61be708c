"""The student of a distillation: derived from the model (the same layers, fewer filters and units) or loaded from
the recipe's file and checked against the model's inputs and outputs.

A derived student keeps every layer, its order and its connections; only the layers listed in WIDTH change size,
except the last ones on each path to an output, which keep their units so the student answers in the model's
terms. Layers outside WIDTH and SHAPE_FOLLOWING stop the derivation with their name: what a custom or
stateful layer computes at another width is not known.
"""

from __future__ import annotations

from typing import Any

from modelpack.errors import DistillError

# Layers whose size is a config number: the key scaled by the width.
WIDTH = {"Dense": "units", "Conv1D": "filters", "Conv2D": "filters", "Conv3D": "filters",
         "SeparableConv1D": "filters", "SeparableConv2D": "filters", "Conv1DTranspose": "filters",
         "Conv2DTranspose": "filters"}
# Layers whose size follows their inputs (or that have none): kept as they are.
SHAPE_FOLLOWING = {
    "InputLayer", "DepthwiseConv1D", "DepthwiseConv2D", "BatchNormalization", "LayerNormalization",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "Flatten", "Reshape",
    "Permute", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "ZeroPadding1D", "ZeroPadding2D",
    "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "Add", "Subtract", "Multiply", "Average",
    "Maximum", "Minimum", "Concatenate", "Rescaling",
}
GRAPH_MODELS = ("Sequential", "Functional")
ADVICE = "give optimize.distill.student (a Keras model file) instead of optimize.distill.width"


def scaled(n: int, width: float) -> int:
    """A layer's size at `width`: rounded, at least one."""
    return max(1, round(n * width))


def derive_config(config: dict, kind: str, width: float) -> tuple[dict, list[str]]:
    """The student's config from the model's `get_config()` (`kind`: Sequential or Functional) and the names of the
    layers that keep their size because they produce an output. Refuses (DistillError) a layer it cannot size."""
    if kind not in GRAPH_MODELS:
        raise DistillError(f"the model is a subclassed {kind}, whose layers are wired in Python code, so a student "
                           f"cannot be derived from its config; {ADVICE}")
    layers = config["layers"]
    for layer in layers:
        cls = layer["class_name"]
        if cls not in WIDTH and cls not in SHAPE_FOLLOWING:
            raise DistillError(f"layer '{layer['config'].get('name', '?')}' ({cls}) is not one a student can be "
                               f"derived through (Dense, convolutions, normalisation, pooling, reshaping, "
                               f"activations and merges are); {ADVICE}")
    kept = _output_layers(config, kind)
    out = {**config, "layers": []}
    for layer in layers:
        layer = {**layer, "config": dict(layer["config"])}
        layer.pop("build_config", None)  # built again from the new input sizes
        key = WIDTH.get(layer["class_name"])
        name = layer["config"].get("name")
        if key is not None and name not in kept:
            layer["config"][key] = scaled(int(layer["config"][key]), width)
        out["layers"].append(layer)
    return out, kept


def _output_layers(config: dict, kind: str) -> list[str]:
    """The sized layers nearest each output (only size-following layers between them and the output)."""
    layers = config["layers"]
    if kind == "Sequential":
        sized = [lay["config"]["name"] for lay in layers if lay["class_name"] in WIDTH]
        return sized[-1:]
    by_name = {lay["name"]: lay for lay in layers}
    heads = config["output_layers"]
    stack = [h[0] for h in ([heads] if heads and isinstance(heads[0], str) else heads)]
    kept, seen = [], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        layer = by_name[name]
        if layer["class_name"] in WIDTH:
            kept.append(name)
            continue
        stack.extend(_parents(layer.get("inbound_nodes") or []))
    return sorted(kept)


def _parents(value: Any) -> list[str]:
    """The layer names in a node's serialized arguments (its keras tensors' histories)."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"][0]]
        return [n for v in value.values() for n in _parents(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in _parents(v)]
    return []


def derive(model: Any, width: float) -> Any:
    """A freshly initialised student with the model's layers at `width` (see derive_config)."""
    import keras

    kind = type(model).__name__
    config, _ = derive_config(model.get_config(), kind, width)
    try:
        student = keras.Sequential.from_config(config) if kind == "Sequential" else keras.Model.from_config(config)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DistillError(f"the student at width {width:g} cannot be built ({first}): a layer's fixed size (a "
                           f"Reshape target, a merge with an input) does not follow the width; {ADVICE}") from None
    return student


def load_student(path: str, inputs: list[dict], outputs: list[dict]) -> Any:
    """The recipe's student file, loaded in safe mode and checked to take the model's inputs and give its outputs."""
    import keras

    try:
        student = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        raise DistillError(f"optimize.distill.student {path} does not load as a Keras 3 model in safe mode "
                           f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}); "
                           "save it with model.save('student.keras')") from None
    want_in = [tuple(t["shape"][1:]) for t in inputs]
    want_out = [tuple(t["shape"][1:]) for t in outputs]
    got_in = [tuple(t.shape[1:]) for t in student.inputs]
    got_out = [tuple(t.shape[1:]) for t in student.outputs]
    if got_in != want_in or got_out != want_out:
        raise DistillError(f"optimize.distill.student {path} takes {got_in} and gives {got_out} per sample, but the "
                           f"model takes {want_in} and gives {want_out}; the student must answer the same questions")
    return student
