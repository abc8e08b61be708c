"""The checks of a recipe's model and data that need no TensorFlow, shared by `validate` and `build`.

`validate` runs exactly these, so a recipe it passes is not refused by the first steps of a build.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from modelpack import limits
from modelpack.errors import InputError
from modelpack.inputs import data, safety, shapes, task
from modelpack.inputs.modelfile import ModelFile, detect
from modelpack.recipe.models import Recipe


def check_model(recipe: Recipe, origin: str) -> ModelFile:
    """Identify the model by content, check its archive is whole, refuse untrusted code and models without
    outputs; return the identified model."""
    model = detect(Path(recipe.model.path))
    if model.format in ("keras3", "tf-keras"):
        _check_archive(model)
    try:
        safety.check(model, recipe.model.trust_code, origin)
        config = safety.model_config(model)
    except OSError as exc:  # h5py's error for a damaged HDF5 file
        raise InputError(f"{model.path}: the HDF5 model cannot be read ({exc}). Copy or save it again.") from None
    if config is not None and _output_count(config) == 0:
        raise InputError(
            f"{model.path}: the saved model has no outputs, so there is nothing to convert or measure. "
            "Save a model built with at least one output (keras.Model(inputs, outputs))."
        )
    _check_onnx_size(recipe, model, origin)
    return model


def _check_onnx_size(recipe: Recipe, model: ModelFile, origin: str) -> None:
    """An ONNX file is one protobuf message, which cannot hold 2 GiB; modelpack does not write ONNX's external
    data format, so a model whose weights alone reach that size is refused ONNX variants before any work."""
    onnx_variants = [v for v in recipe.optimize.variants if v.startswith("onnx")]
    if onnx_variants and model.size_bytes >= limits.PROTOBUF_MAX_BYTES:
        raise InputError(
            f"{origin}: optimize.variants asks for {', '.join(onnx_variants)}, but {model.path} is "
            f"{model.size_bytes / limits.MB:,.0f} MB and an ONNX model file is a single protobuf message, which "
            f"cannot reach {limits.PROTOBUF_MAX_BYTES / limits.MB:,.0f} MB (2 GiB); modelpack does not write "
            "ONNX's external-data format. Use the TFLite variants (tflite-int8 stores weights in a quarter of "
            "the space), or shrink the model first.")


def _check_archive(model: ModelFile) -> None:
    """A .keras archive must hold its architecture and have no damaged member (CRC checked)."""
    try:
        with zipfile.ZipFile(model.path) as zf:
            if "config.json" not in zf.namelist():
                raise InputError(f"{model.path}: this .keras archive has no config.json, so it holds no model. "
                                 "Save the whole model with model.save('model.keras').")
            bad = zf.testzip()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        bad = f"({exc})"
    if bad is not None:
        raise InputError(f"{model.path}: the .keras archive is damaged (member {bad} does not read back). "
                         "Copy or save the model again; it may have been truncated.")


def _output_count(config: dict) -> int | None:
    """How many outputs a saved Keras architecture declares; None when the config does not say."""
    cls, inner = config.get("class_name"), config.get("config")
    if not isinstance(inner, dict):
        return None
    if cls == "Sequential":
        layers = inner.get("layers")
        if isinstance(layers, list):
            return sum(1 for layer in layers if isinstance(layer, dict) and layer.get("class_name") != "InputLayer")
        return None
    outputs = inner.get("output_layers", ...)
    if outputs is ...:
        return None
    if not outputs:
        return 0
    # One output is a flat [name, node, tensor] triple; several are a list of such triples.
    return len(outputs) if isinstance(outputs[0], list) else 1


def check_data(recipe: Recipe, origin: str, *, call_functions: bool) -> dict[str, np.ndarray] | None:
    """Load the sample arrays and check what needs no model: the named arrays exist, have samples and hold
    only finite numbers. Returns the arrays (None for synthetic data, or for a module:function when
    `call_functions` is off: validate never runs the user's code, a build runs it here, in a child process)."""
    spec = recipe.data
    if spec.path is None or not (call_functions or Path(spec.path).is_file()):
        return None
    arrays = data.load_arrays(spec, origin)
    data.check_arrays(arrays, spec, recipe.task, origin)
    data.check_counts(arrays, spec, recipe.optimize.calibrates, origin)
    return arrays


def input_notes(recipe: Recipe, model: ModelFile, origin: str) -> list[str]:
    """What the saved architecture says about the inputs, read without TensorFlow: free dimensions (refused with
    synthetic data unless data.shapes fixes them, as the build refuses them) and text inputs."""
    declared = shapes.declared_inputs(safety.model_config(model)) if model.format != "savedmodel" else None
    if not declared:
        return []
    if recipe.data.shapes is None:  # names in data.shapes are checked by the build, against the loaded model
        shapes.check_synthetic(recipe, declared, origin)
    else:
        given = recipe.data.shapes
        declared = [{**t, "shape": [t["shape"][0], *given[t["name"]]]} if t["name"] in given else t
                    for t in declared]
    notes = [f"input '{t['name']}' {shapes.text(t['shape'])} has free dimensions: the data's samples give their "
             "size" for t in shapes.free(declared)]
    notes += [f"input '{t['name']}' is text: the build moves the vocabulary lookup of the layer that reads it into "
              "the handler" for t in declared if t["dtype"] == "string"]
    return notes


def decide_task(recipe: Recipe, arrays: dict[str, np.ndarray] | None, origin: str) -> task.TaskDecision:
    """The task the build scores (inferred from the labels when the recipe has none), the labels checked
    against it and the budgets checked against the task."""
    spec = recipe.data
    labels = arrays.get(spec.labels) if arrays is not None and spec.labels else None
    decision = task.decide(recipe.task, labels, spec.labels or "y", origin)
    task.check_budgets(decision.task, recipe.budgets, origin, decision.inferred)
    return decision
