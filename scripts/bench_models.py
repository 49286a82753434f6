"""User model functions of the benchmark suite (``scripts/bench_search.py --suite``): networks other
than the shipped ones, named in a study as ``bench_models:NAME`` the way a user names their own
(``[train] model = "module:function"``), each called as ``function(input_shape, num_classes)``."""

from __future__ import annotations

from typing import Any


def wide_cnn(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """No pooling and a wide dense layer (the tutorials' Fashion-MNIST network with a hidden
    layer): two 3x3 convolutions feed their whole 28x28x16 feature map to 256 units. Under plain
    SGD, cosine from 0.3 stays at chance on the MNIST subset, 0.2 barely learns in its first
    epoch and 0.1 learns, where the pooled ``mnist-cnn`` learns best near 0.3."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="wide_cnn")


def mlp(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """A two-layer perceptron on the flattened image (no convolution at all)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Flatten()(inputs)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="mlp")
