"""Layer splitting (worker side): where a Keras 3 model can be cut, and the parts themselves.

A cut after layer L is legal when exactly one tensor crosses from the layers up to L (in the model's
topological order) to the layers after it, and that tensor is L's output. A skip connection keeps its source
tensor alive across every position inside its span, so those positions have two crossing tensors and are
not cut points. Each part is a Keras sub-model with its own input, sharing the original layers (and weights).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from modelpack.errors import PortError, SplitError
from modelpack.files.jsonio import dumps_strict
from modelpack.steps.base import Step, StepJob


def _graph(model: Any) -> tuple[list, dict]:
    """Layers in topological order and, per layer, (input tensor ids, output tensors)."""
    import keras

    if not isinstance(model, keras.Model) or not hasattr(model, "_inbound_nodes") or len(model.inputs) != 1 \
            or len(model.outputs) != 1:
        raise SplitError("splitting needs a Keras 3 functional or Sequential model with one input and one output")
    layers = list(model.layers)
    if not layers or not isinstance(layers[0], keras.layers.InputLayer):
        layers = [model.inputs[0]._keras_history.operation, *layers]  # Sequential models omit their input layer
    members = {id(n) for depth in getattr(model, "_nodes_by_depth", {}).values() for n in depth}
    nodes = {}
    for layer in layers:
        own = [n for n in layer._inbound_nodes if not members or id(n) in members]
        if len(own) != 1:
            raise SplitError(f"layer '{layer.name}' is called {len(own)} times in the model (a shared layer); "
                             "split points around shared layers are not supported")
        node = own[0]
        nodes[layer.name] = ([id(t) for t in node.input_tensors], list(node.output_tensors), node)
    return layers, nodes


def cut_points(model: Any) -> list[dict]:
    """Every position in topological order, with whether a cut after it is legal and what would cross."""
    layers, nodes = _graph(model)
    out_id = id(model.outputs[0])
    consumers: dict[int, list[int]] = {}
    for i, layer in enumerate(layers):
        for t in nodes[layer.name][0]:
            consumers.setdefault(t, []).append(i)
    weights = [int(sum(np.prod(w.shape) * np.dtype(w.dtype).itemsize for w in layer.weights)) for layer in layers]
    total = sum(weights)
    points, before, live = [], 0, {}
    for i, layer in enumerate(layers):
        before += weights[i]
        for t in nodes[layer.name][1]:
            live[id(t)] = t
        crossing = [t for tid, t in live.items() if tid == out_id or any(c > i for c in consumers.get(tid, []))]
        if i == 0 or i == len(layers) - 1:
            continue
        outs = nodes[layer.name][1]
        legal = len(crossing) == 1 and len(outs) == 1 and crossing[0] is outs[0]
        t = outs[0] if len(outs) == 1 else None
        shape = None if t is None else [None if d is None else int(d) for d in t.shape]
        nbytes = None
        if shape is not None and all(d is not None for d in shape[1:]):
            nbytes = int(np.prod(shape[1:])) * np.dtype(t.dtype).itemsize
        points.append({
            "after": layer.name, "index": i, "legal": legal, "crossing_tensors": len(crossing),
            "bytes_before": before, "bytes_after": total - before, "tensor_shape": shape,
            "tensor_dtype": None if t is None else str(t.dtype), "tensor_bytes": nbytes,
            "why": "" if legal else (f"{len(crossing)} tensors cross here (a skip connection spans this point)"
                                     if len(crossing) > 1 else "the layer has several outputs"),
        })
    return points


def part_models(model: Any, cuts: list[str]) -> list[Any]:
    """Sub-models between consecutive cuts; part k > 1 gets a new input named part{k}_input."""
    import keras

    layers, nodes = _graph(model)
    order = [layer.name for layer in layers]
    bounds = [0] + [order.index(c) for c in cuts] + [len(layers) - 1]
    parts = []
    for k in range(len(bounds) - 1):
        end = nodes[order[bounds[k + 1]]][1][0] if k < len(bounds) - 2 else model.outputs[0]
        if k == 0:
            parts.append(keras.Model(model.inputs, end, name="part1"))
            continue
        start = nodes[order[bounds[k]]][1][0]
        new_input = keras.Input(shape=tuple(start.shape[1:]), dtype=start.dtype, name=f"part{k + 1}_input")
        memo = {id(start): new_input}
        for layer in layers[bounds[k] + 1 : bounds[k + 1] + 1]:
            _, outs, node = nodes[layer.name]
            args, kwargs = node.arguments.fill_in(memo)
            result = layer(*args, **kwargs)
            results = result if isinstance(result, (list, tuple)) else [result]
            for t, r in zip(outs, results):
                memo[id(t)] = r
        parts.append(keras.Model(new_input, memo[id(end)], name=f"part{k + 1}"))
    return parts


class CutsStep(Step):
    """List the positions where the model can be cut into parts (single-tensor cuts)."""

    NAME = "cuts"
    FILE = "cuts.json"

    def run(self, job: StepJob, ctx: Any) -> dict:
        loaded = ctx.model(job)
        model = loaded.keras_model
        if model is not None and job.model_format in ("tf-keras", "tf-keras-h5"):
            model = _keras3_copy(job, loaded)
        elif loaded.keras_model is None or job.model_format != "keras3":
            raise SplitError("splitting needs a Keras 3 .keras model (tf-keras and SavedModel graphs are not "
                             "walked); load it with Keras 3 and save it with model.save('model.keras')")
        points = cut_points(model)
        (job.out / self.FILE).write_text(dumps_strict(points, indent=1))
        return {"layers": len(model.layers), "legal": sum(p["legal"] for p in points)}


def _keras3_copy(job: StepJob, loaded: Any) -> Any:
    """A tf-keras model's cut points are those of its Keras 3 copy, checked on seeded random inputs (a build
    splits the copy it checked on the evaluation samples instead)."""
    from modelpack.steps.port import checked_copy, sample_inputs

    xs = sample_inputs(loaded.inputs)
    try:
        return checked_copy(job, loaded, xs, loaded.predict(xs))[0]
    except PortError as exc:
        raise SplitError(f"splitting walks Keras 3 graphs and this tf-keras model has no faithful Keras 3 copy: {exc}; "
                         "re-save it with Keras 3 (model.save('model.keras')) after checking its outputs") from None


class SplitStep(Step):
    """Write the parts as Keras models, each part's input samples, and check the chain reproduces the model."""

    NAME = "split"
    USES_CALIBRATION = True
    USES_EVALUATION = True
    USES_BASELINE = True

    def run(self, job: StepJob, ctx: Any) -> dict:
        import tensorflow as tf

        loaded = ctx.model(job)
        model = _keras3_copy(job, loaded) if job.model_format in ("tf-keras", "tf-keras-h5") else loaded.keras_model
        parts = part_models(model, job.options["at"])
        details = {"parts": []}
        feeds = {}
        for split in ("calibration", "evaluation"):
            with np.load(job.data[split]) as npz:
                feeds[split] = npz["in_0"]
        whole = loaded.predict([feeds["evaluation"]])[0]
        for k, part in enumerate(parts, start=1):
            path = job.out / f"part{k}.keras"
            part.save(path)
            info = {"part": k, "file": path.name, "input": part.inputs[0].name, "layers": [layer.name for layer in part.layers[1:]],
                    "input_shape": [None, *map(int, part.inputs[0].shape[1:])],
                    "output_shape": [None, *map(int, part.outputs[0].shape[1:])],
                    "params_bytes": int(sum(np.prod(w.shape) * np.dtype(w.dtype).itemsize for w in part.weights))}
            for split, x in feeds.items():
                np.savez(job.out / f"part{k}-{split}.npz", in_0=x)
                feeds[split] = np.concatenate([np.asarray(part(tf.constant(x[i : i + 64]), training=False))
                                               for i in range(0, len(x), 64)])
            details["parts"].append(info)
        err = float(np.max(np.abs(feeds["evaluation"].astype(np.float64) - whole.astype(np.float64))))
        details["keras_chain_max_abs_err"] = err
        return details


class SplitVerifyStep(Step):
    """Run the converted parts in a chain with the handlers' runtime; compare with the unsplit variant."""

    NAME = "split-verify"
    USES_EVALUATION = True
    USES_BASELINE = True

    def run(self, job: StepJob, ctx: Any) -> dict:
        from modelpack.measure import metrics
        from modelpack.measure.runner import handler_runtime

        runtime = handler_runtime()
        with np.load(job.data["evaluation"]) as npz:
            x = npz["in_0"]
        with np.load(job.data["unsplit"]) as npz:
            unsplit = npz["out_0"]
        names = job.options["parts"]
        models = [(runtime.load(job.data[f"part{k}"], 1), name) for k, name in enumerate(names, start=1)]
        payload = [0] * len(models)
        outputs = []
        for i in range(len(x)):
            value = x[i : i + 1]
            for k, (model, name) in enumerate(models):
                if k:
                    payload[k] = max(payload[k], len(json.dumps({"inputs": np.asarray(value).tolist()})))
                value = model.predict({name: value})[0]
            outputs.append(np.asarray(value))
        chained = np.concatenate(outputs)
        fid = metrics.fidelity([chained], [unsplit], job.options["task"])
        np.savez(job.out / "outputs.npz", out_0=chained)
        return {"vs_unsplit": fid, "payload_json_bytes": payload}


STEPS = (CutsStep, SplitStep, SplitVerifyStep)
