"""TFLite routes for recurrent models whose loop the converter leaves as TensorList ops (worker process only).

With a free batch dimension the converter cannot give a recurrent layer's TensorList a static element shape, so
LSTM / GRU / SimpleRNN layers fail to convert to builtin ops. Two routes avoid Flex ops:

- `frozen_static`: trace the model with a batch of 1 and freeze its variables to constants; the loop becomes a
  builtin `WHILE` that LiteRT runs. The model then takes exactly one sample per call; the serving runtime loops
  over larger batches.
- `unrolled`: rebuild the recurrent layers with `unroll=True` (needs a fixed number of time steps), so there is
  no loop at all and the batch stays free. Used for full-integer INT8, whose calibrator cannot run a `WHILE` loop.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from typing import Any

TENSOR_LIST_MARKERS = ("TensorList", "tensor list ops")


def is_tensor_list_failure(exc: BaseException) -> bool:
    """True when the converter refused the model because of TensorList ops (an unlowered recurrent loop)."""
    text = str(exc)
    return any(marker in text for marker in TENSOR_LIST_MARKERS)


def _call(model: Any, args: tuple) -> list:
    from modelpack.inputs.keras_io import call_keras

    return call_keras(model, args)


@contextmanager
def frozen_static(loaded: Any):
    """Yield (a factory of converters, input names) over a SavedModel of the model with batch 1 and no variables.

    Variables must become constants: a static-batch function that still reads resource variables converts, but
    LiteRT then fails at invoke (READ_VARIABLE finds no variable).
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if loaded.keras_model is None:
        raise ValueError("the recurrent layers could not be converted to builtin ops, and a SavedModel cannot be "
                         "re-traced with a fixed batch; save the Keras model with model.save('model.keras')")
    model = loaded.keras_model
    specs = [tf.TensorSpec([1, *t["shape"][1:]], t["dtype"], name=t["name"]) for t in loaded.inputs]

    @tf.function(input_signature=specs)
    def fixed(*args):
        return _call(model, args)

    frozen = convert_variables_to_constants_v2(fixed.get_concrete_function())

    @tf.function(input_signature=specs)
    def serve(*args):
        return list(frozen(*args))

    holder = tf.Module()
    holder.serve = serve
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(holder, tmp, signatures={"serving_default": serve.get_concrete_function()})
        yield (lambda: tf.lite.TFLiteConverter.from_saved_model(tmp)), [t["name"] for t in loaded.inputs]


def unrolled(loaded: Any) -> Any:
    """A copy of the Keras 3 model with every recurrent layer unrolled (same weights, checked by the caller)."""
    import keras

    model = loaded.keras_model
    if model is None or not isinstance(model, keras.Model) or not hasattr(model, "_inbound_nodes"):
        raise ValueError("full-integer INT8 of a recurrent loop needs a Keras 3 functional or Sequential model "
                         "(the TFLite calibrator cannot run the loop, so the layers are unrolled)")
    for layer in _recurrent_layers(model):
        try:
            steps = layer.input.shape[1]
        except (AttributeError, ValueError, IndexError):  # a shared layer has no single input
            steps = None
        if steps is None:
            raise ValueError(f"layer '{layer.name}' ({type(layer).__name__}) runs over a free number of time steps, "
                             "so it cannot be unrolled for full-integer INT8 (the TFLite calibrator cannot run its "
                             "loop); give the model input a fixed sequence length, or use tflite-dynamic")

    def clone(layer):
        config = layer.get_config()
        if not _recurrent_layers_of(layer):
            return layer.__class__.from_config(config)
        _set_unroll(config)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def has_recurrent_layers(loaded: Any) -> bool:
    """True for a Keras 3 model with an RNN-family layer (LSTM, GRU, SimpleRNN, Bidirectional) at its top level."""
    try:
        import keras
    except ImportError:
        return False
    model = loaded.keras_model
    return isinstance(model, keras.Model) and bool(_recurrent_layers(model))


def _recurrent_layers_of(layer: Any) -> bool:
    import keras

    return isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))


def _recurrent_layers(model: Any) -> list:
    return [layer for layer in model.layers if _recurrent_layers_of(layer)]


def _set_unroll(config: dict) -> None:
    """Set unroll on a recurrent layer's config, including the wrapped layers of a Bidirectional."""
    if "unroll" in config:
        config["unroll"] = True
    for key in ("layer", "backward_layer"):
        inner = config.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
            _set_unroll(inner["config"])
