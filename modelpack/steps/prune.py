"""Magnitude pruning with tensorflow-model-optimization, fine-tuned on the recipe's training samples.

tfmot wraps tf-keras layers only, so a Keras 3 model is first rebuilt as tf-keras from its config and
weights (and checked to compute the same outputs); a layer with no tf-keras twin stops with its name.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelpack.errors import PruneError
from modelpack.files.jsonio import dumps_strict
from modelpack.steps.base import Step, StepJob

# Keras 3 config keys that tf-keras layers do not take; weights are copied, so initialisers etc. do not matter.
_DROP_KEYS = {"kernel_initializer", "bias_initializer", "depthwise_initializer", "pointwise_initializer",
              "beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
              "embeddings_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer",
              "depthwise_regularizer", "pointwise_regularizer", "beta_regularizer", "gamma_regularizer",
              "embeddings_regularizer", "kernel_constraint", "bias_constraint", "depthwise_constraint",
              "pointwise_constraint", "beta_constraint", "gamma_constraint", "embeddings_constraint",
              "quantization_config", "lora_rank", "lora_alpha", "optional"}


def _layer_config(cfg: dict) -> dict:
    out = {k: v for k, v in cfg.items() if k not in _DROP_KEYS}
    dtype = out.get("dtype")
    if isinstance(dtype, dict):
        out["dtype"] = (dtype.get("config") or {}).get("name", "float32")
    return out


def to_tf_keras(model: Any) -> Any:
    """Rebuild a Keras 3 functional or Sequential model as tf-keras with the same weights."""
    import tf_keras

    config = model.get_config()
    new_layers: dict[str, Any] = {}

    def make(layer_cfg: dict) -> Any:
        cls_name = layer_cfg["class_name"]
        name = layer_cfg["config"].get("name")
        cls = getattr(tf_keras.layers, cls_name, None)
        if cls is None:
            raise PruneError(
                f"layer '{name}' ({cls_name}) has no tf-keras equivalent, and tensorflow-model-optimization "
                "prunes tf-keras models only. Remove optimize.prune, or save the model with tf-keras."
            )
        try:
            return cls.from_config(_layer_config(layer_cfg["config"]))
        except Exception as exc:
            raise PruneError(f"layer '{name}' ({cls_name}) could not be rebuilt as tf-keras: {exc}") from None

    if type(model).__name__ == "Sequential":
        layers_cfg = config["layers"]
        first = layers_cfg[0]
        shape = first["config"]["batch_shape"] if first["class_name"] == "InputLayer" else model.inputs[0].shape
        rebuilt = tf_keras.Sequential(name=config.get("name"))
        rebuilt.add(tf_keras.Input(shape=tuple(shape[1:]), dtype=model.inputs[0].dtype))
        for layer_cfg in layers_cfg[1 if first["class_name"] == "InputLayer" else 0 :]:
            layer = make(layer_cfg)
            rebuilt.add(layer)
            new_layers[layer.name] = layer
    else:
        tensors: dict[tuple, Any] = {}
        for layer_cfg in config["layers"]:
            name = layer_cfg["name"]
            if layer_cfg["class_name"] == "InputLayer":
                c = layer_cfg["config"]
                tensors[(name, 0, 0)] = tf_keras.Input(shape=tuple(c["batch_shape"][1:]), dtype=c.get("dtype"), name=name)
                continue
            layer = make(layer_cfg)
            new_layers[name] = layer
            for node_index, node in enumerate(layer_cfg["inbound_nodes"]):
                args = [_resolve(a, tensors) for a in node["args"]]
                out = layer(*args, **{k: v for k, v in (node.get("kwargs") or {}).items() if k != "mask"})
                for i, t in enumerate(out if isinstance(out, (list, tuple)) else [out]):
                    tensors[(name, node_index, i)] = t
        ins = [tensors[tuple(h)] for h in _histories(config["input_layers"])]
        outs = [tensors[tuple(h)] for h in _histories(config["output_layers"])]
        rebuilt = tf_keras.Model(ins if len(ins) > 1 else ins[0], outs if len(outs) > 1 else outs[0])
    for layer in model.layers:
        if layer.name in new_layers and layer.get_weights():
            new_layers[layer.name].set_weights(layer.get_weights())
    return rebuilt


def _histories(spec: Any) -> list:
    if spec and isinstance(spec[0], str):
        return [spec]
    return list(spec)


def _resolve(arg: Any, tensors: dict) -> Any:
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        return tensors[tuple(arg["config"]["keras_history"])]
    if isinstance(arg, list):
        return [_resolve(a, tensors) for a in arg]
    return arg


def sparsity_by_layer(model: Any) -> dict[str, float]:
    """Fraction of exact zeros in each layer's kernel (dense, convolution or depthwise)."""
    out = {}
    for layer in model.layers:
        kernels = [w for w in layer.weights if w.name.split("/")[-1].split(":")[0].endswith("kernel")]
        if kernels:
            out[layer.name] = round(float(np.mean(np.asarray(kernels[0].numpy()) == 0)), 4)
    return out


class PruneStep(Step):
    """Magnitude pruning (tfmot) with a schedule that reaches the target, fine-tuned, then stripped."""

    NAME = "prune"
    FILE = "model.keras"
    USES_TRAINING = True

    def options(self, recipe: Any) -> dict:
        return {**recipe.optimize.prune.model_dump(), "task": recipe.task, "seed": recipe.data.seed}

    def run(self, job: StepJob, ctx: Any) -> dict:
        import tensorflow as tf
        import tensorflow_model_optimization as tfmot
        import tf_keras

        opts = job.options
        # Same recipe, same pruned model: seeded shuffling and initialisation, deterministic kernels.
        tf_keras.utils.set_random_seed(opts.get("seed", 0))
        tf.config.experimental.enable_op_determinism()
        loaded = ctx.model(job)
        if loaded.keras_model is None:
            raise PruneError("a SavedModel has no Keras layers to prune; prune the Keras model before exporting it")
        source = loaded.keras_model
        with np.load(job.data["training"]) as npz:
            xs = [npz[f"in_{i}"] for i in range(len(loaded.inputs))]
            ys = npz["labels"]
        feed = xs if len(xs) > 1 else xs[0]
        model = source if job.model_format != "keras3" else to_tf_keras(source)
        if job.model_format == "keras3":
            check = np.max(np.abs(np.asarray(model(feed[:32] if len(xs) == 1 else [x[:32] for x in xs]))
                                  - np.asarray(source(feed[:32] if len(xs) == 1 else [x[:32] for x in xs]))))
            if not check <= 1e-4:
                raise PruneError(f"the tf-keras rebuild of the model differs from it by {check:.2e}; cannot prune safely")

        steps_per_epoch = max(1, math.ceil(len(ys) / opts["batch_size"]))
        total = steps_per_epoch * opts["epochs"]
        # Reach the target by ~70 % of fine-tuning, leaving the rest to recover accuracy at full sparsity.
        frequency = opts["frequency"] or max(1, int(total * 0.7) // 10)
        end_step = max(frequency, (int(total * 0.7) // frequency) * frequency)
        sparsity = tfmot.sparsity.keras
        if opts["schedule"] == "constant":
            schedule = sparsity.ConstantSparsity(opts["final_sparsity"], begin_step=0, frequency=frequency)
        else:
            schedule = sparsity.PolynomialDecay(opts["initial_sparsity"], opts["final_sparsity"], begin_step=0,
                                                end_step=end_step, frequency=frequency)
        extra = {"sparsity_m_by_n": (2, 4)} if opts.get("m_by_n") == "2:4" else {}

        def wrap(layer):
            if isinstance(layer, tf_keras.layers.Conv2D | tf_keras.layers.Dense | tf_keras.layers.DepthwiseConv2D):
                kw = extra if not isinstance(layer, tf_keras.layers.DepthwiseConv2D) else {}
                return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule, **kw)
            return layer

        # clone_function gets the original layers: wrapped or returned as they are, they keep their weights.
        pruned = tf_keras.models.clone_model(model, clone_function=wrap)
        loss = opts.get("loss") or ("sparse_categorical_crossentropy" if opts["task"] == "classification" else "mse")
        pruned.compile(optimizer=tf_keras.optimizers.Adam(1e-3), loss=loss)
        pruned.fit(feed, ys, batch_size=opts["batch_size"], epochs=opts["epochs"], verbose=0, shuffle=True,
                   callbacks=[sparsity.UpdatePruningStep()])
        final = sparsity.strip_pruning(pruned)
        final.save(job.out / self.FILE)
        layers = sparsity_by_layer(final)
        details = {"sparsity_by_layer": layers, "schedule": opts["schedule"], "end_step": end_step,
                   "frequency": frequency, "steps": total, "target": opts["final_sparsity"]}
        (job.out / "prune.json").write_text(dumps_strict(details, indent=1))
        return details


STEPS = (PruneStep,)
