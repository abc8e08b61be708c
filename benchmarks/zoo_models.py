"""The conformance suite's models: small, random weights, each saved with data and the recipe fields it needs.

Run as `python benchmarks/zoo_models.py NAME DIR` (zoo.py does, in a fresh process per model, so TensorFlow's
memory is returned after each). Writes DIR/model.keras (or DIR/saved_model/), DIR/data.npz and DIR/zoo.json:
{"model": path, "data": {recipe data fields}, "task": ... (when not classification)}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

N = 48  # samples: evaluation and calibration draw from these
CLASSES = 3
IMAGE = 32  # the smallest input keras.applications accepts without weights for most architectures


def _apps(k, name: str, size: int = IMAGE):
    app = getattr(k.applications, name)
    return app(weights=None, input_shape=(size, size, 3), classes=CLASSES), (size, size, 3)


def _image(k, name: str, size: int = IMAGE):
    def make():
        model, shape = _apps(k, name, size)
        return model, {"x": _normal((N, *shape))}, {}

    return make


def _normal(shape) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype("float32")


def _labels(classes: int = CLASSES) -> np.ndarray:
    return np.random.default_rng(1).integers(0, classes, N)


def _recurrent(k, kind: str):
    def make():
        inp = k.Input((10, 4), name="series")
        layer = {"lstm": lambda: k.layers.LSTM(8), "gru": lambda: k.layers.GRU(8),
                 "bidirectional": lambda: k.layers.Bidirectional(k.layers.LSTM(8))}[kind]()
        out = k.layers.Dense(CLASSES, activation="softmax")(layer(inp))
        return k.Model(inp, out), {"x": _normal((N, 10, 4))}, {}

    return make


def _conv1d(k):
    def make():
        inp = k.Input((None, 3), name="series")
        x = k.layers.Conv1D(8, 3, activation="relu")(inp)  # valid padding: a length-1 guess cannot run
        x = k.layers.GlobalAveragePooling1D()(x)
        return k.Model(inp, k.layers.Dense(CLASSES, activation="softmax")(x)), {"x": _normal((N, 12, 3))}, {}

    return make


def _attention(k):
    def make():
        inp = k.Input((8, 16), name="tokens")
        x = k.layers.MultiHeadAttention(num_heads=2, key_dim=8)(inp, inp)
        x = k.layers.LayerNormalization()(x + inp)
        x = k.layers.GlobalAveragePooling1D()(x)
        return k.Model(inp, k.layers.Dense(CLASSES, activation="softmax")(x)), {"x": _normal((N, 8, 16))}, {}

    return make


def _embedding(k):
    def make():
        inp = k.Input((12,), dtype="int32", name="ids")
        x = k.layers.GlobalAveragePooling1D()(k.layers.Embedding(50, 8)(inp))
        ids = np.random.default_rng(2).integers(0, 50, (N, 12)).astype("int32")
        return k.Model(inp, k.layers.Dense(CLASSES, activation="softmax")(x)), {"x": ids}, {}

    return make


def _dict_inputs(k):
    def make():
        num = k.Input((4,), name="num")
        cat = k.Input((1,), dtype="int32", name="cat")
        x = k.layers.Concatenate()([num, k.layers.Flatten()(k.layers.Embedding(10, 3)(cat))])
        out = k.layers.Dense(CLASSES, activation="softmax")(k.layers.Dense(8, activation="relu")(x))
        model = k.Model({"num": num, "cat": cat}, out)
        arrays = {"num": _normal((N, 4)), "cat": np.random.default_rng(3).integers(0, 10, (N, 1)).astype("int32")}
        return model, arrays, {"inputs": [_input_name(t) for t in model.inputs]}

    return make


def _input_name(tensor) -> str:
    return getattr(tensor, "name", "").split(":")[0]


def _two_outputs(k):
    def make():
        inp = k.Input((6,), name="features")
        h = k.layers.Dense(16, activation="relu")(inp)
        heads = [k.layers.Dense(CLASSES, activation="softmax", name="cls")(h), k.layers.Dense(1, name="reg")(h)]
        return k.Model(inp, heads), {"x": _normal((N, 6))}, {}

    return make


def _regression(k):
    def make():
        inp = k.Input((6,), name="features")
        out = k.layers.Dense(1)(k.layers.Dense(16, activation="relu")(inp))
        y = np.random.default_rng(4).standard_normal((N, 1)).astype("float32")
        return k.Model(inp, out), {"x": _normal((N, 6)), "y": y}, {"task": "regression"}

    return make


def _strings(k):
    def make():
        import tensorflow as tf

        inp = k.Input((1,), dtype=tf.string, name="text")
        x = k.layers.StringLookup(vocabulary=["a", "b", "c"], output_mode="one_hot")(inp)
        out = k.layers.Dense(CLASSES, activation="softmax")(k.layers.Flatten()(x))
        words = np.random.default_rng(5).choice(["a", "b", "c", "d"], (N, 1))
        return k.Model(inp, out), {"x": words}, {}

    return make


def _mixed_cnn(k):
    """A CNN as trained on a GPU under mixed_float16: half-precision compute, float32 weights and softmax."""
    def make():
        k.mixed_precision.set_global_policy("mixed_float16")
        try:
            inp = k.Input((16, 16, 3), name="image")
            x = k.layers.Conv2D(16, 3, activation="relu")(inp)
            x = k.layers.BatchNormalization()(x)
            x = k.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
            x = k.layers.GlobalAveragePooling2D()(x)
            out = k.layers.Activation("softmax", dtype="float32")(k.layers.Dense(CLASSES)(x))
            model = k.Model(inp, out)
        finally:
            k.mixed_precision.set_global_policy("float32")
        return model, {"x": _normal((N, 16, 16, 3))}, {}

    return make


WORDS = ("good great fine bad awful poor film story actor music plot dull fun slow long short funny sad "
         "brilliant boring the a and but not very").split()


def _text(k):
    """A text classifier with its vocabulary lookup inside: TextVectorization over raw review strings."""
    def make():
        import tensorflow as tf

        rng = np.random.default_rng(7)
        texts = np.asarray([" ".join(rng.choice(WORDS, rng.integers(3, 12))).capitalize() + "!" for _ in range(N)])
        vectorize = k.layers.TextVectorization(max_tokens=40, output_sequence_length=16)
        vectorize.adapt(tf.constant(texts))
        inp = k.Input((1,), dtype="string", name="review")
        x = k.layers.GlobalAveragePooling1D()(k.layers.Embedding(41, 8)(vectorize(inp)))
        return k.Model(inp, k.layers.Dense(CLASSES, activation="softmax")(x)), {"x": texts[:, None]}, {}

    return make


def _keras(framework: str):
    if framework == "keras3":
        import keras

        return keras
    import tf_keras

    return tf_keras


APPS = {"mobilenetv2": "MobileNetV2", "mobilenetv3small": "MobileNetV3Small", "efficientnetb0": "EfficientNetB0",
        "efficientnetv2b0": "EfficientNetV2B0", "resnet50v2": "ResNet50V2", "densenet121": "DenseNet121",
        "convnexttiny": "ConvNeXtTiny", "xception": "Xception"}
APP_SIZE = {"xception": 71}
FAMILIES = {"lstm": lambda k: _recurrent(k, "lstm"), "gru": lambda k: _recurrent(k, "gru"),
            "bidirectional": lambda k: _recurrent(k, "bidirectional"), "conv1d-varlen": _conv1d,
            "attention": _attention, "embedding": _embedding, "dict-inputs": _dict_inputs,
            "two-outputs": _two_outputs, "regression": _regression, "string-input": _strings,
            "mixed-float16": _mixed_cnn, "text-vectorization": _text}
# tf-keras twins of what exists there too (tf-keras has no ConvNeXt/EfficientNetV2 in every release: kept to the
# classic ones), plus a bare tf.Module SavedModel.
TF_KERAS = ("mobilenetv2", "resnet50v2", "lstm", "gru", "conv1d-varlen", "two-outputs", "regression", "dict-inputs")


def catalog() -> dict[str, tuple[str, str]]:
    """{cell name: (framework, architecture)} for every model the suite knows, in table order."""
    names = {f"{a}": ("keras3", a) for a in APPS}
    names.update({f"{f}": ("keras3", f) for f in FAMILIES})
    names.update({f"{a}-tfkeras": ("tf-keras", a) for a in TF_KERAS})
    names["tf-module"] = ("savedmodel", "tf-module")
    return names


def _tf_module(folder: Path) -> dict:
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.random.default_rng(6).standard_normal((5, CLASSES)).astype("float32"))

        @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32, name="x")])
        def serve(self, x):
            return {"probs": tf.nn.softmax(tf.matmul(x, self.w))}

    module = Scale()
    tf.saved_model.save(module, str(folder / "saved_model"), signatures={"serving_default": module.serve})
    np.savez(folder / "data.npz", x=_normal((N, 5)), y=_labels())
    return {"model": "saved_model", "data": {"path": "data.npz"}}


def make(name: str, folder: Path) -> dict:
    """Build and save one model with its data; return the recipe fields the suite needs."""
    framework, arch = catalog()[name]
    folder.mkdir(parents=True, exist_ok=True)
    if framework == "savedmodel":
        spec = _tf_module(folder)
    else:
        k = _keras(framework)
        k.utils.set_random_seed(0)
        maker = _image(k, APPS[arch], APP_SIZE.get(arch, IMAGE)) if arch in APPS else FAMILIES[arch](k)
        model, arrays, extra = maker()
        model.save(folder / "model.keras")
        arrays.setdefault("y", _labels())
        np.savez(folder / "data.npz", **arrays)
        data = {"path": "data.npz", "inputs": extra.get("inputs", "x")}
        spec = {"model": "model.keras", "data": data, **({"task": extra["task"]} if "task" in extra else {})}
    spec.update(framework=framework, architecture=arch)
    (folder / "zoo.json").write_text(json.dumps(spec, indent=1))
    return spec


if __name__ == "__main__":
    print(json.dumps(make(sys.argv[1], Path(sys.argv[2]))))
