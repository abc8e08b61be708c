"""Refuse models that would run code at load time (Lambda layers, unregistered custom objects) unless trusted."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator

from modelpack.errors import InputError
from modelpack.inputs.modelfile import ModelFile

BUILTIN_MODULES = ("keras", "tf_keras")


def model_config(mf: ModelFile) -> dict | None:
    """The saved architecture, read without TensorFlow; None for SavedModels (graphs, no Python code)."""
    if mf.format in ("keras3", "tf-keras"):
        with zipfile.ZipFile(mf.path) as zf:
            return json.loads(zf.read("config.json"))
    if mf.format == "tf-keras-h5":
        import h5py

        with h5py.File(mf.path, "r") as f:
            raw = f.attrs.get("model_config")
        if raw is None:
            raise InputError(f"{mf.path}: this HDF5 file holds weights only, no model. Save the whole model.")
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return None


def _objects(node: object, layer: str | None = None) -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        name = (node.get("config") or {}).get("name") if isinstance(node.get("config"), dict) else None
        if "class_name" in node:
            layer = name or layer
            yield layer or "?", node
        for value in node.values():
            yield from _objects(value, layer)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value, layer)


def untrusted_objects(config: dict) -> list[tuple[str, str, str]]:
    """(layer name, class name, why) for every object that would run custom code when loaded."""
    found = []
    for layer, obj in _objects(config):
        cls = str(obj.get("class_name"))
        module = obj.get("module")
        if cls == "Lambda":
            found.append((layer, cls, "a Lambda layer, whose Python code runs when the model is loaded"))
        elif module is not None and not str(module).startswith(BUILTIN_MODULES):
            found.append((layer, cls, f"a custom object from module '{module}'"))
        elif obj.get("registered_name") and str(obj["registered_name"]) != cls and ">" in str(obj["registered_name"]):
            found.append((layer, cls, f"a registered custom object '{obj['registered_name']}'"))
    return list(dict.fromkeys(found))


def check(mf: ModelFile, trust_code: bool, origin: str) -> None:
    """Raise InputError naming the first offending layer unless the recipe trusts the model's code."""
    if trust_code:
        return
    config = model_config(mf)
    if config is None:
        return
    bad = untrusted_objects(config)
    if bad:
        layer, cls, why = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(
            f"{mf.path}: layer '{layer}' ({cls}) is {why}{more}. modelpack loads models in safe mode and refuses "
            f"such code by default. If you trust this model, set `model.trust_code: true` in {origin}"
            " (and `model.custom_objects: your.module` exposing CUSTOM_OBJECTS for custom layers)."
        )
