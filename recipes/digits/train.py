"""Train the example digits CNN on scikit-learn's bundled digits images, reproducibly.

Writes model.keras (Keras 3) and digits.npz next to this file:
x / y hold the held-out test images the model never saw, x_train / y_train the training images.
Run: python recipes/digits/train.py   (needs scikit-learn)
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SEED = 1234
HERE = Path(__file__).resolve().parent


def main() -> None:
    import keras
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()

    digits = load_digits()
    x = (digits.images.astype("float32") / 16.0)[..., None]
    y = digits.target.astype("int64")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)

    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.DepthwiseConv2D(3, padding="same")(h)
    h = keras.layers.Conv2D(32, 1, activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(h)
    model = keras.Model(inputs, outputs, name="digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=30, batch_size=32, verbose=0, shuffle=True)
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy {acc:.4f} on {len(y_test)} held-out images; {model.count_params()} parameters")

    model.save(HERE / "model.keras")
    np.savez_compressed(HERE / "digits.npz", x=x_test, y=y_test, x_train=x_train, y_train=y_train)


if __name__ == "__main__":
    main()
