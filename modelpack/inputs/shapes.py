"""Free input dimensions: which inputs have them, what the recipe fixes them to (`data.shapes`), and the refusal
of synthetic data for a model whose served size is unknown. Reads a Keras file's declared inputs without
TensorFlow, so `modelpack validate` shows them too."""

from __future__ import annotations

from modelpack.errors import InputError
from modelpack.recipe.models import Recipe


def text(shape: list) -> str:
    """[batch, any, any, 3]: a shape as the messages and `modelpack inspect` write it."""
    return "[" + ", ".join("batch" if i == 0 else ("any" if d is None else str(d)) for i, d in enumerate(shape)) + "]"


def free(inputs: list[dict]) -> list[dict]:
    """The inputs with a free dimension besides the batch."""
    return [t for t in inputs if any(d is None for d in t["shape"][1:])]


def apply(inputs: list[dict], shapes: dict[str, list[int]] | None, origin: str) -> list[dict]:
    """The inputs with data.shapes filled in: each named input must exist, have that rank and agree on every
    dimension the model fixes."""
    if not shapes:
        return inputs
    names = [t["name"] for t in inputs]
    unknown = [n for n in shapes if n not in names]
    if unknown:
        raise InputError(f"{origin}: data.shapes names input '{unknown[0]}', but the model's inputs are "
                         f"{', '.join(names)} (`modelpack inspect MODEL` lists them).")
    out = []
    for t in inputs:
        given = shapes.get(t["name"])
        if given is None:
            out.append(t)
            continue
        want = t["shape"][1:]
        if len(given) != len(want) or any(w is not None and w != g for w, g in zip(want, given)):
            raise InputError(f"{origin}: data.shapes gives input '{t['name']}' the per-sample shape {list(given)}, "
                             f"but the model declares {text(t['shape'])}: give one size per dimension after the "
                             "batch, equal to the model's where it fixes one.")
        out.append({**t, "shape": [t["shape"][0], *given]})
    return out


def check_synthetic(recipe: Recipe, inputs: list[dict], origin: str) -> None:
    """Synthetic data needs a size for every free dimension: the model is measured and served at it, and a guess
    is neither the size the user serves nor one every model can run (a MobileNet at 8x8)."""
    if not recipe.data.synthetic:
        return
    loose = free(inputs)
    if not loose:
        return
    example = ", ".join(f"{t['name']}: [{', '.join('224' if d is None else str(d) for d in t['shape'][1:])}]"
                        for t in loose)
    which = "; ".join(f"'{t['name']}' {text(t['shape'])}" for t in loose)
    raise InputError(
        f"{origin}: the model's input {which} has free dimensions, and with data.synthetic there is no data to "
        f"tell the size it is served at. Set data.shapes to the per-sample shape you serve, e.g. "
        f"data.shapes: {{{example}}} (the variants are then converted, measured and served at it), or give real "
        "samples with data.path.")


def declared_inputs(config: dict | None) -> list[dict] | None:
    """The inputs a saved Keras architecture declares (name, shape with the batch, dtype), read from its
    config without TensorFlow; None when the config does not say (a SavedModel, a subclassed model)."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        return None
    inner = config["config"]
    layers = [layer for layer in inner.get("layers") or [] if isinstance(layer, dict)]
    found = []
    for layer in layers:
        if layer.get("class_name") != "InputLayer" or not isinstance(layer.get("config"), dict):
            continue
        c = layer["config"]
        shape = c.get("batch_shape") or c.get("batch_input_shape")
        if not isinstance(shape, list):
            return None
        dtype = c.get("dtype")
        dtype = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
        found.append({"name": str(c.get("name") or layer.get("name")), "shape": shape, "dtype": str(dtype)})
    if config.get("class_name") == "Sequential" and not found:
        shape = (inner.get("build_input_shape") or (config.get("build_config") or {}).get("input_shape"))
        return [{"name": "input", "shape": shape, "dtype": "float32"}] if isinstance(shape, list) else None
    return found or None
